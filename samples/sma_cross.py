"""A classic SMA crossover, written against upstream backtrader only.

It imports ``backtrader`` (not ``backtrader_live``) on purpose: the same
class backtests with ``backtrader.Cerebro().run()`` and trades live with
``backtrader_live.Cerebro().run_live(...)``, unchanged.

Crypto specifics are plain backtrader too: the size is a fraction of the
cash divided by the price, a float (0.0123 BTC), and exits close whatever the
broker says we hold (net of any fee taken in the coin).
"""
import backtrader as bt


class SmaCross(bt.Strategy):
    """Long when the fast SMA crosses above the slow one; flat when below."""

    params = (
        ('fast', 10),
        ('slow', 30),
        ('fraction', 0.5),      # share of the cash each entry spends
        ('printlog', True),
    )

    def __init__(self):
        fast = bt.ind.SMA(period=self.p.fast)
        slow = bt.ind.SMA(period=self.p.slow)
        self.crossover = bt.ind.CrossOver(fast, slow)
        self.order = None           # at most one order in flight
        # A live feed first replays history (DELAYED) and then streams (LIVE):
        # warm the indicators on the history, trade only on live bars, so no
        # order is ever sent because of a bar that closed hours ago.
        self.data_live = False

    def log(self, text):
        if self.p.printlog:
            print('%s  %s' % (self.data.datetime.datetime(0).strftime('%Y-%m-%d %H:%M'), text))

    # -- notifications ------------------------------------------------------
    def notify_data(self, data, status, *args, **kwargs):
        self.data_live = data._getstatusname(status) == 'LIVE'

    def notify_order(self, order):
        if order.status in (order.Submitted, order.Accepted):
            self.log('ORDER %s %s %.5f %s' % (order.getstatusname(), order.ordtypename(),
                                             abs(order.created.size), order.data._name or ''))
            return
        if order.status in (order.Partial, order.Completed):
            ex = order.executed
            self.log('%s %s %.5f @ %.2f  value %.2f  commission %.4f' % (
                'FILLED' if order.status == order.Completed else 'PARTIAL',
                order.ordtypename(), abs(ex.size), ex.price, abs(ex.size) * ex.price, ex.comm))
        else:   # Canceled, Margin, Rejected, Expired
            reason = order.info.get('reject_reason') or ''
            self.log('ORDER %s %s' % (order.getstatusname(), reason))
        if not order.alive():
            self.order = None

    def notify_trade(self, trade):
        if trade.isclosed:
            self.log('TRADE closed  gross %.2f  net %.2f' % (trade.pnl, trade.pnlcomm))

    # -- the logic ---------------------------------------------------------------
    def next(self):
        if self.order is not None:
            return
        if self.data.islive() and not self.data_live:
            return          # still replaying history
        if not self.position and self.crossover > 0:
            size = self.broker.getcash() * self.p.fraction / self.data.close[0]
            self.order = self.buy(size=size)
        elif self.position and self.crossover < 0:
            self.order = self.close()
