"""The parity corpus (issue 14 part 3): upstream-style strategies that trade
within 8-20 hourly bars of the simulator's candles (rows 600 on).

Each is a plain backtrader strategy over ``paritykit.Parity`` (which only logs
what it places); the same class runs in the backtest, paper and live modes.
``CASES`` says how each runs: its symbols, timeframes, history bars and steps.
"""
import collections
import datetime

import backtrader as bt

from paritykit import Parity


class SmaCross(Parity):
    """Long when SMA(3) crosses above SMA(8), flat when it crosses below."""

    def __init__(self):
        super().__init__()
        self.cross = bt.ind.CrossOver(bt.ind.SMA(period=3), bt.ind.SMA(period=8))

    def trade(self, n):
        if self.cross[0] > 0 and not self.position:
            self.buy(size=self.p.unit)
        elif self.cross[0] < 0 and self.position:
            self.close()


class Bracket(Parity):
    """A limit entry 0.2 % under the close, a stop 1 % under, a target 1 % over."""

    def trade(self, n):
        if n == 1:
            c = self.data.close[0]
            self.buy_bracket(size=self.p.unit, price=round(c * 0.998, 2),
                             stopprice=round(c * 0.99, 2), limitprice=round(c * 1.01, 2))


class OcoBreakout(Parity):
    """Buy the first breakout either way of the close (a stop above, a limit
    below; the first to fill cancels the other), out 5 bars after the entry
    shows: the bar a fill from a bar's path shows in must be the backtest's
    live too (barfills.py)."""

    def trade(self, n):
        if n == 1:
            c = self.data.close[0]
            up = self.buy(size=self.p.unit, price=round(c * 1.004, 2), exectype=bt.Order.Stop)
            self.buy(size=self.p.unit, price=round(c * 0.996, 2), exectype=bt.Order.Limit,
                     oco=up)
        elif n > 1 and self.position and not hasattr(self, 'entered'):
            self.entered = n
        elif getattr(self, 'entered', 0) and n == self.entered + 5:
            self.close()


class TrailingStop(Parity):
    """Enter at market, then a trailing stop 0.5 % under the best close."""

    def trade(self, n):
        if n == 1:
            self.buy(size=self.p.unit)
        elif n == 2 and self.position:
            self.sell(size=self.position.size, exectype=bt.Order.StopTrail, trailpercent=0.005)


class CloseOrders(Parity):
    """In at the session's close (Order.Close: the session ends 3 hours after
    the first live bar, CASES), out at market at bar 6."""

    def trade(self, n):
        if n == 1:
            self.buy(size=self.p.unit, exectype=bt.Order.Close)
        elif n == 6 and self.position:
            self.close()


class ValidLimits(Parity):
    """Two limit buys valid for 3 hours: one near the price (fills), one far
    below (expires); then a sell limit over the price valid 4 hours."""

    def trade(self, n):
        c = self.data.close[0]
        valid = datetime.timedelta(hours=3)
        if n == 1:
            self.buy(size=self.p.unit, price=round(c * 0.999, 2), exectype=bt.Order.Limit,
                     valid=valid)
            self.buy(size=self.p.unit, price=round(c * 0.95, 2), exectype=bt.Order.Limit,
                     valid=valid)
        elif n == 6 and self.position:
            self.sell(size=self.position.size, price=round(c * 1.002, 2),
                      exectype=bt.Order.Limit, valid=datetime.timedelta(hours=4))


class Rebalance(Parity):
    """order_target_percent over three symbols, new weights every 4 bars."""

    WEIGHTS = [(0.06, 0.03, 0.02), (0.02, 0.05, 0.04), (0.04, 0.0, 0.05), (0.0, 0.04, 0.0)]

    def trade(self, n):
        if n % 4 == 1:
            weights = self.WEIGHTS[(n // 4) % len(self.WEIGHTS)]
            # sells first, so that the buys have the cash
            order = sorted(zip(self.datas, weights),
                           key=lambda dw: dw[1] * self.broker.getvalue() / dw[0].close[0]
                           - self.getposition(dw[0]).size)
            for data, weight in order:
                self.order_target_percent(data=data, target=weight)


class FilteredSma(Parity):
    """1h entries under a 4h trend filter: long while the 1h close is over
    the 4h SMA(2) and the 1h SMA(3) is rising, flat otherwise."""

    def __init__(self):
        super().__init__()
        self.trend = bt.ind.SMA(self.data1.close, period=2)
        self.fast = bt.ind.SMA(self.data0.close, period=3)

    def trade(self, n):
        up = self.data0.close[0] > self.trend[0] and self.fast[0] > self.fast[-1]
        if up and not self.position:
            self.buy(size=self.p.unit)
        elif not up and self.position:
            self.close()


class Pairs(Parity):
    """BTC against ETH: when the price ratio strays 0.6 % from its 6-bar
    mean, buy the cheap leg (and, where the market can short, sell the dear
    one); out when the ratio comes back."""

    params = (('short', False),)

    def __init__(self):
        super().__init__()
        self.ratio = self.data0.close / self.data1.close
        self.mean = bt.ind.SMA(self.ratio, period=6)

    def trade(self, n):
        dev = self.ratio[0] / self.mean[0] - 1
        btc, eth = self.getposition(self.data0).size, self.getposition(self.data1).size
        if not btc and not eth and abs(dev) > 0.006:
            cheap, dear = (self.data1, self.data0) if dev > 0 else (self.data0, self.data1)
            units = self.p.unit if cheap is self.data0 else self.p.unit * 15
            self.buy(data=cheap, size=units)
            if self.p.short:
                self.sell(data=dear, size=self.p.unit * 15 if cheap is self.data0
                          else self.p.unit)
        elif (btc or eth) and abs(dev) < 0.002:
            for data in (self.data0, self.data1):
                if self.getposition(data).size:
                    self.close(data=data)


Case = collections.namedtuple('Case', 'strategy symbols timeframes backfill steps params session',
                              defaults=(None,))

# backfill: history bars of a live run (indicator warm-up); the strategy trades
# from the next bar on, in every mode (Parity's ``quiet``).
CASES = {
    'sma-cross': Case(SmaCross, ['BTC/USDT'], '1h', 9, 20, {}),
    'bracket': Case(Bracket, ['BTC/USDT'], '1h', 2, 12, {}),
    'oco-breakout': Case(OcoBreakout, ['BTC/USDT'], '1h', 2, 12, {}),
    'trailing-stop': Case(TrailingStop, ['BTC/USDT'], '1h', 2, 10, {}),
    # session: the data's session ends this many hours after the first live bar opens
    'close-orders': Case(CloseOrders, ['BTC/USDT'], '1h', 2, 8, {}, session=3),
    'valid-limits': Case(ValidLimits, ['BTC/USDT'], '1h', 2, 14, {}),
    'rebalance-3': Case(Rebalance, ['BTC/USDT', 'ETH/USDT', 'SOL/USDT'], '1h', 2, 16, {}),
    'filtered-1h-4h': Case(FilteredSma, ['BTC/USDT'], ['1h', '4h'], 12, 20, {}),
    'pairs': Case(Pairs, ['BTC/USDT', 'ETH/USDT'], '1h', 7, 20, {}),
}
