"""The analyzer that turns order and trade notifications into notifications.

Why an analyzer: backtrader hands every order and trade notification of a
strategy to its analyzers (``Strategy._notify``), in Cerebro's thread, right
after the strategy's own ``notify_order``/``notify_trade``. Adding one
analyzer therefore reports fills and trades of *unchanged* strategies,
without wrapping the broker or patching user classes, and works the same
in backtests and live runs (with ``quicknotify``, as soon as they happen).
"""
import collections

import backtrader as bt

from .core import ORDER, STRATEGY, TRADE
from .formatting import describe_order, describe_trade


class NotificationAnalyzer(bt.Analyzer):
    """Sends each order and trade event to ``trigger`` (Cerebro's
    ``trigger_notifications`` unless given), and is the target of
    ``LiveStrategy.send_simple_notification`` (``add_external_notification``).

    ``get_analysis()`` counts what it triggered, by kind.
    """

    params = (('trigger', None),)

    def start(self):
        trigger = self.p.trigger
        if trigger is None:
            trigger = getattr(self.strategy.env, 'trigger_notifications', None)
        self._trigger = trigger
        self.rets = collections.OrderedDict((k, 0) for k in (ORDER, TRADE, STRATEGY))

    def _send(self, kind, event):
        if event is None or self._trigger is None:
            return
        self.rets[kind] = self.rets.get(kind, 0) + 1
        self._trigger(event.message, event.level, kind, event.data, dedupe_key=event.key)

    def notify_order(self, order):
        self._send(ORDER, describe_order(order))

    def notify_trade(self, trade):
        self._send(TRADE, describe_trade(trade))

    def add_external_notification(self, message, level='INFO', kind=STRATEGY, data=None):
        """What the original design's strategies call to reach external channels."""
        if self._trigger is None:
            return
        self.rets[kind] = self.rets.get(kind, 0) + 1
        self._trigger(message, level, kind, data)
