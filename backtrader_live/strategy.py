"""LiveStrategy: logging and notifications for strategies, old and new.

Existing strategies stay unchanged: fills, trades and data status changes
reach external channels through Cerebro (see ``notifications``), whatever
the strategy class. ``LiveStrategy`` (or ``LiveStrategyMixin`` in front of
any Strategy subclass) adds what a live trader wants *inside* the strategy:

- ``log(txt, dt=None, level='INFO')``: standard logging, stamped with the
  bar's time, on the logger ``backtrader_live.strategy.<ClassName>``;
- ``send_simple_notification(message, level='INFO')``: logs, then forwards
  to every analyzer that has ``add_external_notification`` (the notifications
  analyzer sends it to every channel);
- default ``notify_order``/``notify_trade``/``notify_data`` that log
  completed, partial, rejected and canceled orders (side, size, price,
  commission, reason), closed trades (PnL with commission) and data status
  changes (LIVE, DISCONNECTED, reconnected), with the same wording as the
  external notifications; ``notify_risk_alert`` logs risk alerts.

Override any of them and call ``super()`` to keep the log line.
"""
import logging

import backtrader as bt

from .notifications.core import parse_level
from .notifications.formatting import (data_name, describe_data_status, describe_order,
                                       describe_trade)

_log = logging.getLogger(__name__)


class LiveStrategyMixin:
    """Logging and notification helpers; put it before ``bt.Strategy``.

    Class attributes (not params, so a strategy's params stay its own):
    ``log_orders``, ``log_trades``, ``log_data_status`` switch the default
    reports off; ``logger_name`` overrides the logger.
    """

    log_orders = True
    log_trades = True
    log_data_status = True
    logger_name = None

    @property
    def logger(self):
        return logging.getLogger(self.logger_name
                                 or 'backtrader_live.strategy.' + type(self).__name__)

    def bar_time(self):
        """The current bar's datetime of the first data (None before any bar)."""
        if not self.datas or not len(self.datas[0]):
            return None
        return self.datas[0].datetime.datetime(0)

    def log(self, txt, dt=None, level='INFO'):
        """Log ``txt`` stamped with ``dt`` (default: the bar's time).

        The record also carries ``bar_time`` for formatters that want it.
        """
        level = _level(level)
        logger = self.logger
        if not logger.isEnabledFor(level):
            return
        dt = dt if dt is not None else self.bar_time()
        stamp = dt.isoformat(sep=' ') if dt is not None else '-'
        logger.log(level, '%s %s', stamp, txt, extra={'bar_time': dt})

    def send_simple_notification(self, message, level='INFO'):
        """Log ``message`` and hand it to analyzers with ``add_external_notification``.

        Returns how many analyzers took it. Never raises: a broken analyzer
        is logged and the strategy goes on.
        """
        self.log(message, level=level)
        taken = 0
        for analyzer in self.analyzers:
            forward = getattr(analyzer, 'add_external_notification', None)
            if not callable(forward):
                continue
            try:
                forward(message, level)
                taken += 1
            except Exception:
                _log.exception('%s.add_external_notification failed',
                               type(analyzer).__name__)
        return taken

    # -- default reports ---------------------------------------------------------
    def notify_order(self, order):
        if self.log_orders:
            event = describe_order(order)
            self.log('%s (order %s)' % (event.message, order.ref), level=event.level)

    def notify_trade(self, trade):
        if self.log_trades:
            event = describe_trade(trade)
            if event is not None:
                self.log('%s (trade %s)' % (event.message, trade.ref), level=event.level)

    def notify_data(self, data, status, *args, **kwargs):
        name = data._getstatusname(status)
        seen = self.__dict__.setdefault('_btl_data_status', {})
        previous = seen.get(id(data))
        seen[id(data)] = name
        if self.log_data_status:
            event = describe_data_status(data_name(data), name, previous)
            self.log(event.message, level=event.level)

    def notify_risk_alert(self, message, level='WARNING', data=None):
        """Called by Cerebro for ``trigger_notifications(kind='risk_alert')``."""
        self.log('risk alert: %s' % message, level=level)


class LiveStrategy(LiveStrategyMixin, bt.Strategy):
    """``bt.Strategy`` with the helpers of :class:`LiveStrategyMixin`."""


def _level(level):
    try:
        return parse_level(level)
    except ValueError:
        _log.error('unknown log level %r; logging at WARNING', level)
        return logging.WARNING


__all__ = ['LiveStrategy', 'LiveStrategyMixin']

# The rest of upstream's strategy module (Strategy, SignalStrategy...):
# ``backtrader_live.strategy`` shadows ``backtrader.strategy``.
import backtrader.strategy as _upstream_strategy  # noqa: E402
from ._namespace import merge_into  # noqa: E402
merge_into(globals(), _upstream_strategy)
