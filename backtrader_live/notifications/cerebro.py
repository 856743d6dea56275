"""Notifications on Cerebro: the methods, the automatic triggers, the setup.

``NotificationsMixin`` is one of ``backtrader_live.Cerebro``'s bases. It adds
nothing to a run until a channel is added; then ``run()``:

- adds ``NotificationAnalyzer`` (order fills/rejections and closed trades
  of every strategy, including unchanged upstream ones);
- registers a data callback with ``adddatacb``: backtrader's public hook
  for data notifications, called in Cerebro's thread for every status a
  feed reports, whatever the strategy's ``notify_data`` does (no private
  method overridden, and a user's Cerebro subclass keeps its own
  ``notify_data``);
- reports an exception that ends the run (CRITICAL, kind 'run_error');
- drains and stops the delivery threads when ``run()`` returns, within
  ``drain_timeout`` seconds, so no thread outlives the run.
"""
import logging
import os
import threading

from ..errors import ConfigError, redact
from .analyzer import NotificationAnalyzer
from .channels import CallbackChannel, EmailChannel, LogChannel, WebhookChannel
from .core import DATA_STATUS, RISK_ALERT, RUN_ERROR, level_name, parse_level
from .dispatcher import Notifier
from .formatting import data_name, describe_data_status

log = logging.getLogger(__name__)


class NotificationsMixin:
    """Cerebro methods: channels, ``trigger_notifications`` and the run hooks."""

    # -- configuration -------------------------------------------------------------
    @property
    def notifier(self):
        """This Cerebro's ``Notifier`` (created on first use)."""
        notifier = self.__dict__.get('_btl_notifier')
        if notifier is None:
            notifier = self._btl_notifier = Notifier()
        return notifier

    def set_notifier(self, notifier):
        """Use ``notifier`` (e.g. one with other dedupe/drain settings).

        The previous notifier is drained and stopped; its channels are not
        carried over, so call this before adding channels.
        """
        old = self.__dict__.get('_btl_notifier')
        if old is not None and old is not notifier:
            old.stop()
        self._btl_notifier = notifier
        return notifier

    def add_notification_channel(self, channel):
        """Add a Channel (email, webhook, apprise...) or a callable; returns it."""
        return self.notifier.add_channel(channel)

    def add_notification_callback(self, fn, level='INFO', kinds=None, name=None):
        """Call ``fn(notification)`` for each notification at ``level`` or above.

        The notification is a ``str`` (the text) with ``level``, ``kind``,
        ``data`` and ``time`` attributes. Runs in a background thread.
        """
        return self.notifier.add_channel(CallbackChannel(fn, level=level, kinds=kinds,
                                                         name=name))

    def remove_notification_channel(self, channel):
        self.notifier.remove_channel(channel)

    # -- sending ---------------------------------------------------------------------
    def trigger_notifications(self, message, level='INFO', kind=None, data=None, *,
                              dedupe_key=None):
        """Send ``message`` to every channel that wants it; returns at once.

        Never raises and never blocks: delivery happens in background threads.
        Risk alerts (``kind='risk_alert'``) raised in Cerebro's thread are also
        handed to each running strategy's ``notify_risk_alert(message, level,
        data)`` if it has one (LiveStrategy logs them).
        """
        if kind == RISK_ALERT:
            self._btl_tell_strategies(message, level, data)
        notifier = self.__dict__.get('_btl_notifier')
        if notifier is None:
            return 0
        return notifier.notify(message, level, kind, data, dedupe_key=dedupe_key)

    def _btl_tell_strategies(self, message, level, data):
        # Strategies are only touched from the thread that runs them.
        if self.__dict__.get('_btl_run_thread') != threading.get_ident():
            return
        try:
            name = level_name(parse_level(level))
        except ValueError:
            name = 'WARNING'
        for strategy in list(getattr(self, 'runningstrats', None) or ()):
            hook = getattr(strategy, 'notify_risk_alert', None)
            if hook is None:
                continue
            try:
                hook(message, name, data)
            except Exception:   # a risk alert must not crash the caller (the risk code)
                log.exception('%s.notify_risk_alert failed', type(strategy).__name__)

    def flush_notifications(self, timeout=5.0):
        """Wait (bounded) until queued notifications were handled."""
        notifier = self.__dict__.get('_btl_notifier')
        return True if notifier is None else notifier.flush(timeout)

    def stop_notifications(self, timeout=None):
        """Drain (bounded) and stop the delivery threads; run() does this itself."""
        notifier = self.__dict__.get('_btl_notifier')
        return True if notifier is None else notifier.stop(timeout)

    # -- the run ---------------------------------------------------------------------
    def run(self, **kwargs):
        notifier = self.__dict__.get('_btl_notifier')
        active = notifier is not None and bool(notifier.channels)
        if active:
            self._btl_attach_triggers()
        self._btl_run_thread = threading.get_ident()
        self._btl_data_status = {}
        try:
            result = super().run(**kwargs)
        except BaseException as exc:
            if active:
                why = redact(exc)[:500]
                notifier.notify('run stopped by %s%s' % (type(exc).__name__,
                                                        ': ' + why if why else ''),
                                'CRITICAL', RUN_ERROR)
            raise
        else:
            if active:
                self._btl_final_data_status()
            return result
        finally:
            self._btl_run_thread = None
            if notifier is not None:
                notifier.stop()

    def _btl_attach_triggers(self):
        if self.__dict__.get('_btl_triggers_attached'):
            return
        self._btl_triggers_attached = True
        # A user who added the analyzer by hand must not get every fill twice.
        if not any(issubclass(a[0], NotificationAnalyzer) for a in self.analyzers):
            self.addanalyzer(NotificationAnalyzer, _name='notifications',
                             trigger=self.trigger_notifications)
        self.adddatacb(self._btl_on_data_status)

    def _btl_final_data_status(self):
        # Feeds report DISCONNECTED from stop(), after Cerebro's last delivery:
        # report it anyway (read, not consumed) so a stopped bot is heard of.
        for data in self.datas:
            for item in list(getattr(data, 'notifs', ())):
                if item is not None:        # backtrader's queue marker
                    self._btl_on_data_status(data, item[0], *item[1], **item[2])

    def _btl_on_data_status(self, data, status, *args, **kwargs):
        name = data._getstatusname(status)
        seen = self.__dict__.setdefault('_btl_data_status', {})
        previous = seen.get(id(data))
        seen[id(data)] = name
        event = describe_data_status(data_name(data), name, previous)
        self.trigger_notifications(event.message, event.level, DATA_STATUS, event.data,
                                   dedupe_key=event.key)

    def __getstate__(self):
        # Optimization pickles Cerebro for its worker processes: threads and
        # locks cannot travel, and the workers run backtests without channels.
        state = self.__dict__.copy()
        state.pop('_btl_notifier', None)
        return state


# -- the original design's entry point ----------------------------------------------
METHODS = ('callback', 'email', 'webhook', 'apprise', 'log')

_GENERAL = {'level', 'dedupe_interval', 'drain_timeout', 'timeout', 'retries', 'queue_size'}
_PER_METHOD = {
    'callback': {'callback', 'callbacks', 'callback_level'},
    'email': {'email_host', 'email_port', 'email_user', 'email_password', 'email_from',
              'email_to', 'email_security', 'email_level', 'email_ssl_context',
              'email_subject_prefix'},
    'webhook': {'webhook_url', 'webhook_urls', 'webhook_format', 'webhook_headers',
                'webhook_level'},
    'apprise': {'apprise_urls', 'apprise_level'},
    'log': {'log_level', 'log_logger'},
}


def setup_external_notifications(cerebro, notification_methods=None, **settings):
    """Configure external notifications the way the original design did.

    ``notification_methods``: 'callback', 'email', 'webhook', 'apprise', 'log'
    (a name or a list). None (or omitted): every method whose settings are
    given here or in the environment (``callback(s)``, ``email_host``,
    ``webhook_url(s)``/``BTL_WEBHOOK_URL``, ``apprise_urls``/
    ``BTL_APPRISE_URLS``), plus 'log', so a bot is never silent.
    ``methods=`` is accepted as an older spelling of the same argument.
    ``settings`` (all optional unless the method needs them):

    - general: ``level`` (default 'INFO'), ``dedupe_interval`` (60 s),
      ``drain_timeout`` (5 s), ``timeout`` (10 s), ``retries`` (3), ``queue_size``
    - callback: ``callback``/``callbacks``; more via
      ``cerebro.add_notification_callback(fn)``
    - email: ``email_host``, ``email_to`` (required), ``email_port``,
      ``email_user``, ``email_password`` (or env ``BTL_SMTP_PASSWORD``),
      ``email_from``, ``email_security`` ('starttls', 'ssl', 'none')
    - webhook: ``webhook_url`` (or env ``BTL_WEBHOOK_URL``) or ``webhook_urls``,
      ``webhook_format``, ``webhook_headers``
    - apprise: ``apprise_urls`` (a list, or URLs separated by spaces; or env
      ``BTL_APPRISE_URLS``)
    - ``<method>_level`` overrides ``level`` for that method

    Returns the list of channels added. Orders, trades, data status changes,
    risk alerts and run errors are then sent without any strategy change.
    """
    methods = _chosen_methods(notification_methods, settings)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError('unknown notification method(s) %s; available: %s'
                          % (', '.join(map(repr, unknown)), ', '.join(METHODS)))
    allowed = _GENERAL.union(*(_PER_METHOD[m] for m in methods))
    extra = sorted(set(settings) - allowed)
    if extra:
        raise ConfigError('unknown setting(s) for methods %s: %s'
                          % (', '.join(methods), ', '.join(extra)))
    for key in [k for k in settings if k == 'level' or k.endswith('_level')]:
        parse_level(settings[key])       # a typo fails here, not at the first alert
    notifier = cerebro.notifier
    if 'dedupe_interval' in settings or 'drain_timeout' in settings:
        notifier = cerebro.set_notifier(Notifier(
            notifier.channels, settings.get('dedupe_interval', notifier.dedupe_interval),
            settings.get('drain_timeout', notifier.drain_timeout)))
    added = []
    for method in methods:
        for channel in _BUILDERS[method](settings, _common(settings, method)):
            added.append(notifier.add_channel(channel))
    return added


def _chosen_methods(notification_methods, settings):
    """The methods asked for: named, or (None) those the settings and the
    environment configure, plus 'log'."""
    if 'methods' in settings:
        older = settings.pop('methods')
        if notification_methods is not None:
            raise ConfigError('pass notification_methods or methods (its older name), '
                              'not both')
        notification_methods = older
    if notification_methods is None:
        found = [m for m, keys in _CONFIGURED_BY.items()
                 if any(k in settings for k in keys) or any(os.environ.get(e)
                                                            for e in _ENV_OF.get(m, ()))]
        chosen = found + ['log']
        log.info('notifications: methods configured by the settings/environment: %s',
                 ', '.join(chosen))
        return chosen
    if isinstance(notification_methods, str):
        return [notification_methods]
    try:
        return list(notification_methods)
    except TypeError:
        raise ConfigError('notification_methods must be a method name, a list of them or '
                          'None; available: %s; got %r'
                          % (', '.join(METHODS), notification_methods)) from None


# What makes a method "configured" when no method is named.
_CONFIGURED_BY = {'callback': ('callback', 'callbacks'), 'email': ('email_host',),
                  'webhook': ('webhook_url', 'webhook_urls'), 'apprise': ('apprise_urls',)}
_ENV_OF = {'webhook': ('BTL_WEBHOOK_URL',), 'apprise': ('BTL_APPRISE_URLS',)}


def _common(settings, method):
    common = {'level': settings.get(method + '_level', settings.get('level', 'INFO'))}
    for key in ('timeout', 'retries', 'queue_size'):
        if key in settings:
            common[key] = settings[key]
    return common


def _callbacks(settings, common):
    fns = list(settings.get('callbacks') or [])
    if settings.get('callback') is not None:
        fns.insert(0, settings['callback'])
    return [CallbackChannel(fn, **common) for fn in fns]


def _email(settings, common):
    return [EmailChannel(
        settings.get('email_host'), settings.get('email_to'), sender=settings.get('email_from'),
        port=settings.get('email_port'), username=settings.get('email_user'),
        password=settings.get('email_password'),
        security=settings.get('email_security', 'starttls'),
        ssl_context=settings.get('email_ssl_context'),
        subject_prefix=settings.get('email_subject_prefix', '[backtrader_live]'), **common)]


def _webhooks(settings, common):
    urls = list(settings.get('webhook_urls') or [])
    if settings.get('webhook_url') or not urls:
        urls.insert(0, settings.get('webhook_url'))    # None: BTL_WEBHOOK_URL
    return [WebhookChannel(url, fmt=settings.get('webhook_format', 'auto'),
                           headers=settings.get('webhook_headers'), **common) for url in urls]


def _apprise(settings, common):
    from .apprise_channel import AppriseChannel     # apprise is an optional extra
    urls = settings.get('apprise_urls') or os.environ.get('BTL_APPRISE_URLS') or []
    if isinstance(urls, str):
        urls = urls.split()    # whitespace: a comma can be part of an apprise URL
    if not urls:
        raise ConfigError('apprise needs apprise_urls (or BTL_APPRISE_URLS)')
    return [AppriseChannel(url, **common) for url in urls]


def _log(settings, common):
    return [LogChannel(settings.get('log_logger', 'backtrader_live.notifications.log'),
                       **common)]


_BUILDERS = {'callback': _callbacks, 'email': _email, 'webhook': _webhooks,
             'apprise': _apprise, 'log': _log}
