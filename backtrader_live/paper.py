"""Paper trading: backtrader's own broker fills the orders, behind the gate.

:class:`PaperBroker` *is* backtrader's BackBroker (through BrokerBase), so a
paper run fills exactly as a backtest would. It overrides none of the
methods upstream calls every bar (``next``, ``getcash``, ``getvalue``,
``cancel``, ``get_orders_open``): a backtest runs upstream's own code there
and pays nothing for the live layer (issue 12: <= 2 % over plain backtrader;
benchmarks/bench_backtest_overhead.py).
"""
import types

from backtrader.brokers import BackBroker

from . import broker as _broker
from .broker import BrokerBase


class PaperBroker(BrokerBase):
    """Orders never leave this machine; Cerebro's default broker."""

    live = False
    params = (('paper_trading', True),)

    def start(self):
        super().start()
        self.__dict__.pop('getcommissioninfo', None)     # a restart binds again
        if self.store is None:
            # No market rules: upstream's comminfo as is, without our lookup
            # (it is asked every bar per data).
            self.getcommissioninfo = types.MethodType(BackBroker.getcommissioninfo, self)
            return
        self.store.start(broker=self)    # live bars, market rules and fees

    def _submit_accepted(self, order, check):
        return self._submit_paper_order(order, check)

    def _cancel_parent(self, parent):
        # A parent waiting for its children's transmit sits in upstream's
        # BackBroker._pchildren, not in its pending queue (cancel() finds
        # nothing there): taken out, upstream's own rule then rejects the
        # children still to come (_take_children: "parent not there").
        # Guarded by tests/test_exchange_registry.py (paper).
        if self.cancel(parent) or not parent.alive():
            return
        self._pchildren.pop(parent.ref, None)
        parent.cancel()
        self.notify(parent)

    def _submit_paper_order(self, order, check=True):
        """Paper trading: upstream BackBroker queues the order and fills it
        from the bars exactly as in a backtest."""
        return BackBroker.submit(self, order, check)


_broker._MODES[True] = PaperBroker
