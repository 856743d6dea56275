"""Where notifications go: callables, the log, HTTP webhooks and e-mail.

A channel only knows how to send one notification, synchronously, within
its ``timeout``; the dispatcher calls it from the channel's own thread,
retries what is worth retrying and isolates failures. Errors are reported
in the live layer's own terms (``errors.py``): ``RetryableError`` (network,
5xx, 429 with ``retry_after``) or ``FatalError`` (bad credentials, 4xx,
refused recipients), which the dispatcher does not retry.
"""
import email.message
import email.utils
import json
import logging
import os
import re
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request

from ..backoff import Backoff
from ..errors import ConfigError, FatalError, RateLimitedError, RetryableError
from .core import Notification, parse_level

log = logging.getLogger(__name__)

SMTP_PASSWORD_ENV = 'BTL_SMTP_PASSWORD'


class Channel:
    """Base of every channel: filtering, limits and the secrets to hide.

    - ``level``: the lowest level this channel receives ('INFO' by default)
    - ``kinds``: if given, only these kinds (e.g. ``{'order', 'risk_alert'}``)
    - ``timeout``: seconds one delivery attempt may take (network channels)
    - ``retries``: further attempts after a retryable failure, with backoff
    - ``queue_size``: notifications waiting for this channel; beyond it new
      ones are dropped (and counted) so a dead channel cannot grow memory
    """

    kind_name = 'channel'
    log_traceback = False     # user code (callbacks) benefits from tracebacks

    def __init__(self, level='INFO', kinds=None, name=None, timeout=10.0, retries=3,
                 queue_size=1000, backoff=None):
        self.level = parse_level(level)
        if isinstance(kinds, str):
            kinds = [kinds]
        self.kinds = frozenset(kinds) if kinds else None
        if not timeout or timeout <= 0:
            raise ConfigError('channel timeout must be a positive number of seconds')
        if not isinstance(retries, int) or retries < 0:
            raise ConfigError('channel retries must be an integer >= 0, got %r' % (retries,))
        if not isinstance(queue_size, int) or queue_size < 1:
            raise ConfigError('channel queue_size must be an integer >= 1')
        self.timeout = float(timeout)
        self.retries = retries
        self.queue_size = queue_size
        self.backoff = backoff or Backoff(base=0.5, cap=10.0)
        self.name = name or self.default_name()

    def default_name(self):
        return self.kind_name

    def accepts(self, notification):
        return (notification.level >= self.level
                and (self.kinds is None or notification.kind in self.kinds))

    def send(self, notification):              # pragma: no cover - abstract
        raise NotImplementedError

    def secrets(self):
        """Strings that must never reach a log line (redacted from errors)."""
        return ()

    def __repr__(self):
        return '%s(name=%r, level=%s)' % (type(self).__name__, self.name,
                                          logging.getLevelName(self.level))


class CallbackChannel(Channel):
    """Calls ``fn(notification)``; the notification is a ``str`` (its text).

    A Python call cannot be interrupted, so ``timeout`` does not apply: a
    callback that hangs stalls only its own channel (its queue fills and
    then drops), never the strategy or the other channels.
    """

    kind_name = 'callback'
    log_traceback = True

    def __init__(self, fn, **kwargs):
        if not callable(fn):
            raise ConfigError('a notification callback must be callable, got %r' % (fn,))
        self.fn = fn
        super().__init__(**kwargs)

    def default_name(self):
        return 'callback:%s' % getattr(self.fn, '__qualname__', type(self.fn).__name__)

    def send(self, notification):
        self.fn(notification)


class LogChannel(Channel):
    """Writes each notification to standard logging at its own level."""

    kind_name = 'log'

    def __init__(self, logger='backtrader_live.notifications.log', **kwargs):
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        super().__init__(**kwargs)

    def send(self, notification):
        self.logger.log(notification.level, '[%s] %s', notification.kind or '-',
                        notification.text)


# -- URLs and their secrets --------------------------------------------------------
_HOSTNAME_RE = re.compile(r'^[a-z0-9-]+(\.[a-z0-9-]+)+$')


def mask_url(url):
    """'https://hooks.slack.com/***': enough to recognise, no token."""
    parts = urllib.parse.urlsplit(str(url))
    host = parts.hostname or ''
    if parts.port:
        host = '%s:%d' % (host, parts.port)
    hidden = parts.path.strip('/') or parts.query or parts.username
    return '%s://%s%s' % (parts.scheme, host, '/***' if hidden else '')


def url_secrets(url):
    """Every part of a URL that could be a credential.

    Webhook and apprise URLs carry their tokens in the path, the user info,
    the query or (Telegram's bot token) where a host would be. All pieces of
    six characters or more are treated as secret, except lower-case host
    names: hiding too much in a log is harmless, too little is not.
    """
    url = str(url)
    found = {url}
    rest = url.split('://', 1)[-1]
    for piece in re.split(r'[/:@?&=#,]', rest):
        piece = urllib.parse.unquote(piece)
        if len(piece) >= 6 and not _HOSTNAME_RE.match(piece):
            found.add(piece)
    return tuple(sorted(found, key=len, reverse=True))   # longest first for redact()


# -- HTTP webhooks -----------------------------------------------------------------
def _payload_json(n):
    body = n.to_dict()
    body['content'] = n.text[:2000]     # Discord's field (and its limit)
    return body


_FORMATS = {
    'json': _payload_json,
    'slack': lambda n: {'text': n.text},
    'discord': lambda n: {'content': n.text[:2000]},
}


class WebhookChannel(Channel):
    """POSTs each notification as JSON to ``url``.

    ``fmt``: 'json' (every field, plus ``text`` and ``content`` so Slack-
    and Discord-compatible receivers show it), 'slack' (``{"text": ...}``),
    'discord' (``{"content": ...}``), 'auto' (chosen from the URL's host) or
    a callable ``fmt(notification) -> dict``. ``headers`` are added to the
    request (e.g. ``{'Authorization': 'Bearer ...'}``); their values and the
    URL's path are secrets and never logged.
    """

    kind_name = 'webhook'

    def __init__(self, url, fmt='auto', headers=None, method='POST', ssl_context=None,
                 **kwargs):
        url = url or os.environ.get('BTL_WEBHOOK_URL')
        parts = urllib.parse.urlsplit(str(url or ''))
        if parts.scheme not in ('http', 'https') or not parts.hostname:
            raise ConfigError('webhook url must be an http(s) URL, got %s'
                              % (mask_url(url) if url else 'nothing'))
        self.url = url
        self.format = self._resolve_format(fmt, parts.hostname)
        self.headers = dict(headers or {})
        self.method = method
        self.ssl_context = ssl_context
        super().__init__(**kwargs)

    @staticmethod
    def _resolve_format(fmt, host):
        if callable(fmt):
            return fmt
        if fmt == 'auto':
            fmt = ('slack' if host.endswith('slack.com') else
                   'discord' if host.endswith(('discord.com', 'discordapp.com')) else 'json')
        if fmt not in _FORMATS:
            raise ConfigError('unknown webhook format %r; use auto, %s or a callable'
                              % (fmt, ', '.join(_FORMATS)))
        return _FORMATS[fmt]

    def default_name(self):
        return 'webhook:%s' % urllib.parse.urlsplit(self.url).hostname

    def secrets(self):
        return url_secrets(self.url) + tuple(str(v) for v in self.headers.values() if v)

    def send(self, notification):
        body = json.dumps(self.format(notification)).encode('utf-8')
        headers = {'Content-Type': 'application/json', 'User-Agent': 'backtrader_live'}
        headers.update(self.headers)
        request = urllib.request.Request(self.url, data=body, headers=headers,
                                         method=self.method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout,
                                        context=self.ssl_context) as response:
                response.read(65536)    # let the server finish; body unused
        except urllib.error.HTTPError as exc:
            raise _http_error(exc) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise FatalError('webhook TLS certificate rejected: %s' % reason) from None
            raise RetryableError('webhook unreachable: %s' % (reason,)) from None

    def __repr__(self):
        return 'WebhookChannel(url=%s, level=%s)' % (mask_url(self.url),
                                                     logging.getLevelName(self.level))


def _http_error(exc):
    """Our error for an HTTP status: 429 and 5xx are worth retrying."""
    status = exc.code
    if status == 429 or status >= 500:
        retry_after = exc.headers.get('Retry-After') if exc.headers else None
        try:
            retry_after = float(retry_after) if retry_after is not None else None
        except ValueError:
            retry_after = None
        return RateLimitedError('webhook answered HTTP %d' % status, retry_after=retry_after)
    return FatalError('webhook answered HTTP %d (not retried)' % status)


# -- e-mail ------------------------------------------------------------------------
_SECURITY = {'starttls': 587, 'ssl': 465, 'none': 25}


class EmailChannel(Channel):
    """Sends each notification as an e-mail over SMTP.

    - ``security``: 'starttls' (port 587), 'ssl' (implicit TLS, port 465) or
      'none' (port 25; only for a local relay)
    - ``username``/``password``: SMTP login; the password may also come from
      the ``BTL_SMTP_PASSWORD`` environment variable, and never shows in a
      log or repr
    - ``ssl_context``: to trust a private CA (default: the system's CAs)
    """

    kind_name = 'email'

    def __init__(self, host, recipients, sender=None, port=None, username=None, password=None,
                 security='starttls', ssl_context=None, subject_prefix='[backtrader_live]',
                 **kwargs):
        if not host:
            raise ConfigError('email needs an SMTP host')
        if isinstance(recipients, str):
            recipients = [r.strip() for r in recipients.split(',')]
        self.recipients = [r for r in (recipients or []) if r]
        if not self.recipients:
            raise ConfigError('email needs at least one recipient')
        security = (security or 'none').lower()
        if security not in _SECURITY:
            raise ConfigError('email security must be one of %s, got %r'
                              % (', '.join(_SECURITY), security))
        self.host, self.security = host, security
        self.port = int(port or _SECURITY[security])
        self.username = username
        self._password = password or os.environ.get(SMTP_PASSWORD_ENV) or None
        self.sender = sender or username
        if not self.sender or '@' not in self.sender:
            raise ConfigError('email needs a sender address (sender=... or a username '
                              'that is an address)')
        self.ssl_context = ssl_context
        self.subject_prefix = subject_prefix
        super().__init__(**kwargs)

    def default_name(self):
        return 'email:%s' % self.host

    def secrets(self):
        return (self._password,) if self._password else ()

    def build_message(self, n):
        msg = email.message.EmailMessage()
        msg['Subject'] = n.title(self.subject_prefix)
        msg['From'] = self.sender
        msg['To'] = ', '.join(self.recipients)
        msg['Date'] = email.utils.format_datetime(n.time)
        msg['Message-ID'] = email.utils.make_msgid(domain=self.sender.rsplit('@', 1)[-1])
        details = n.to_dict()
        lines = [n.text, '', 'level: %s' % details['level'], 'kind: %s' % details['kind'],
                 'time: %s' % details['time']]
        if details['data'] is not None:
            lines += ['', json.dumps(details['data'], indent=2, sort_keys=True)]
        msg.set_content('\n'.join(lines) + '\n')
        return msg

    def send(self, notification):
        msg = self.build_message(notification)
        try:
            with self._connect() as smtp:
                if self.security == 'starttls':
                    smtp.starttls(context=self._context())
                if self.username:
                    smtp.login(self.username, self._password or '')
                smtp.send_message(msg)
        except smtplib.SMTPException as exc:
            raise _smtp_error(exc) from None
        except ssl.SSLCertVerificationError as exc:
            raise FatalError('SMTP TLS certificate rejected: %s' % exc) from None

    def _context(self):
        return self.ssl_context or ssl.create_default_context()

    def _connect(self):
        if self.security == 'ssl':
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                    context=self._context())
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)

    def __repr__(self):
        return ('EmailChannel(host=%r, port=%d, security=%r, username=%r, password=%s, '
                'recipients=%r)' % (self.host, self.port, self.security, self.username,
                                    '***' if self._password else '<none>',
                                    self.recipients))


def _smtp_error(exc):
    """Login, sender and recipient refusals are final; 4xx and drops are not."""
    if isinstance(exc, (smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError,
                        smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused)):
        return FatalError('SMTP refused: %s' % _smtp_text(exc))
    code = getattr(exc, 'smtp_code', None)
    if isinstance(code, int) and 500 <= code < 600:
        return FatalError('SMTP refused: %s' % _smtp_text(exc))
    return RetryableError('SMTP failed: %s' % _smtp_text(exc))


def _smtp_text(exc):
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return 'recipients refused: %s' % ', '.join(sorted(exc.recipients))
    code, text = getattr(exc, 'smtp_code', None), getattr(exc, 'smtp_error', None)
    if isinstance(text, bytes):
        text = text.decode('utf-8', 'replace')
    return '%s %s' % (code, text) if code else '%s: %s' % (type(exc).__name__, exc)


__all__ = ['Channel', 'CallbackChannel', 'LogChannel', 'WebhookChannel', 'EmailChannel',
           'Notification', 'mask_url', 'url_secrets']
