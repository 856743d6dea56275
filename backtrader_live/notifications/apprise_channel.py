"""Every service apprise supports (Telegram, Slack, Discord, ...) by URL.

apprise is an optional extra (``pip install backtrader-live[notify]``): we
hand it one URL per channel, so each service gets its own queue, retries
and failure isolation, and a Telegram outage cannot delay a Slack message.
"""
import logging

from ..errors import ConfigError, RetryableError
from ..secrets import RedactingFilter
from .channels import Channel, url_secrets

log = logging.getLogger(__name__)

# apprise logs request URLs (Telegram's carries the bot token) at DEBUG on
# the single 'apprise' logger: its records pass through this filter.
_APPRISE_FILTER = RedactingFilter()


def _import_apprise():
    try:
        import apprise
    except ImportError:
        raise ConfigError('apprise channels need the apprise package: '
                          'pip install "backtrader-live[notify]"') from None
    return apprise


def _protect_apprise_logs(secrets):
    _APPRISE_FILTER.add(*secrets)
    logger = logging.getLogger('apprise')
    if _APPRISE_FILTER not in logger.filters:
        logger.addFilter(_APPRISE_FILTER)


def _scheme(url):
    """'tgram' for 'tgram://...'; never more of the URL (it holds the token)."""
    scheme, sep, _ = url.partition('://')
    return scheme if sep and scheme.isalnum() and len(scheme) <= 20 else '?'


class AppriseChannel(Channel):
    """Sends through one apprise URL, e.g. ``tgram://BOTTOKEN/CHATID``,
    ``mailtos://user:pass@example.com``, ``discord://id/token``,
    ``slack://T.../B.../X...``; see apprise's documentation for the rest.

    ``timeout`` becomes the service's socket connect and read timeouts.
    The URL is a secret: logs and reprs show apprise's privacy form.
    """

    kind_name = 'apprise'

    # Our levels to apprise's notification types (icons/colours per service).
    _TYPES = ((logging.ERROR, 'failure'), (logging.WARNING, 'warning'), (0, 'info'))

    def __init__(self, url, title_prefix='backtrader_live', **kwargs):
        apprise = _import_apprise()
        if not url or not isinstance(url, str):
            raise ConfigError('an apprise channel needs one URL string')
        self._url = url.strip()
        self._secrets = url_secrets(self._url)
        _protect_apprise_logs(self._secrets)
        self._apprise = apprise.Apprise()
        if not self._apprise.add(self._url) or len(self._apprise) != 1:
            raise ConfigError('apprise does not accept the URL %s://*** (unknown service '
                              'or missing fields)' % _scheme(self._url))
        self.title_prefix = title_prefix
        super().__init__(**kwargs)
        for service in self._apprise:
            service.socket_connect_timeout = self.timeout
            service.socket_read_timeout = self.timeout

    def default_name(self):
        return 'apprise:%s' % _scheme(self._url)

    def secrets(self):
        return self._secrets

    def send(self, notification):
        notify_type = next(t for lvl, t in self._TYPES if notification.level >= lvl)
        ok = self._apprise.notify(body=notification.text,
                                  title=notification.title(self.title_prefix),
                                  notify_type=notify_type)
        if not ok:
            # apprise logged the service's own reason (redacted); retry it.
            raise RetryableError('apprise could not deliver to %s' % self.name)

    def __repr__(self):
        urls = self._apprise.urls(privacy=True)
        return 'AppriseChannel(url=%s, level=%s)' % (
            urls[0] if urls else '***', logging.getLevelName(self.level))
