"""Shared helpers of the risk tests (tests/test_risk_*.py); no tests here.

Backtests over the real BTC/USDT 1h candles or over synthetic closes, a
strategy that runs a per-bar script and records what it was told, and a
Cerebro with backtrader_live's paper broker (so the risk gate applies).
"""
import datetime
import functools
import gzip
import json
import os

import backtrader as bt

import backtrader_live as btl

HOUR_MS = 3600 * 1000
_HERE = os.path.dirname(os.path.abspath(__file__))
SHARED_BTC = os.path.normpath(os.path.join(_HERE, '..', '..', 'shared', 'data',
                                           'binance_BTCUSDT_1h.json'))
PACKAGED_BTC = os.path.join(_HERE, '..', 'backtrader_live', 'sim', 'data',
                            'binance_BTCUSDT_1h.json.gz')


@functools.lru_cache(maxsize=1)
def btc_rows():
    """The real Binance BTC/USDT 1h candles (shared copy, else the packaged one)."""
    path = SHARED_BTC if os.path.exists(SHARED_BTC) else PACKAGED_BTC
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rt') as fh:
        return tuple(tuple(r) for r in json.load(fh))


def ms(*ymd):
    return int(datetime.datetime(*ymd, tzinfo=datetime.timezone.utc).timestamp() * 1000)


def btc_slice(start, end):
    return [r for r in btc_rows() if ms(*start) <= r[0] < ms(*end)]


def synthetic_rows(closes, start=(2021, 1, 1), spread=0.001):
    """1h candles through ``closes``: each opens at the previous close."""
    t0, rows, prev = ms(*start), [], closes[0]
    for i, close in enumerate(closes):
        high, low = max(prev, close) * (1 + spread), min(prev, close) * (1 - spread)
        rows.append((t0 + i * HOUR_MS, prev, high, low, close, 1.0))
        prev = close
    return rows


class Rows(bt.feed.DataBase):
    """A feed over ``[open_ms, o, h, l, c, v]`` rows (no pandas here)."""
    params = (('rows', None),)

    def start(self):
        super().start()
        self._it = iter(self.p.rows)

    def _load(self):
        row = next(self._it, None)
        if row is None:
            return False
        ts, o, h, l, c, v = row
        self.lines.datetime[0] = bt.date2num(
            datetime.datetime.fromtimestamp(ts / 1000, datetime.timezone.utc).replace(tzinfo=None))
        self.lines.open[0], self.lines.high[0], self.lines.low[0] = o, h, l
        self.lines.close[0], self.lines.volume[0] = c, v
        return True


def feed(rows, **kwargs):
    return Rows(rows=rows, timeframe=bt.TimeFrame.Minutes, compression=60, **kwargs)


class Script(bt.Strategy):
    """Runs ``script[bar_number](strategy)`` (1-based) and records every
    order notification as (bar the order was created at, status, size,
    reason) and every store message."""

    params = (('script', None), ('each', None))

    def __init__(self):
        self.events = []        # (bar, status name, created size, reject reason)
        self.messages = []      # (msg, kwargs) from notify_store
        self.held = []
        self._bar_at = {}       # bar datetime -> bar number

    def notify_order(self, order):
        self.events.append((self._bar_at.get(order.created.dt), order.getstatusname(),
                            order.created.size,
                            order.info.get('reject_reason')))

    def notify_store(self, msg, *args, **kwargs):
        self.messages.append((msg, kwargs))

    def when(self, bar):
        """The datetime of bar number ``bar`` (1-based)."""
        return bt.num2date(self.data.datetime.array[bar - 1])

    def statuses(self, status):
        return [e for e in self.events if e[1] == status]

    def next(self):
        self._bar_at[self.data.datetime[0]] = len(self)
        if self.p.each is not None:
            self.p.each(self)
        action = (self.p.script or {}).get(len(self))
        if action is not None:
            action(self)
        self.held.append(self.position.size)


def cerebro(rows, broker=None, cash=10000.0, commission=0.001, **broker_kwargs):
    """A backtest over ``rows`` with backtrader_live's paper broker (risk gate on)."""
    c = btl.Cerebro(stdstats=False)
    c.adddata(feed(rows))
    c.setbroker(broker if broker is not None else btl.BrokerBase(cash=cash, **broker_kwargs))
    c.broker.setcommission(commission=commission)
    return c


def run_script(rows, script=None, each=None, analyzers=(), sizer=None, **kwargs):
    """Run :class:`Script` over ``rows``; returns the strategy."""
    c = cerebro(rows, **kwargs)
    c.addstrategy(Script, script=script or {}, each=each)
    for cls, akw in analyzers:
        c.addanalyzer(cls, **akw)
    if sizer is not None:
        c.addsizer(sizer[0], **sizer[1])
    return c.run()[0]


# Script actions shared by the risk tests.
def buy(size, **kw):
    return lambda s: s.buy(size=size, **kw)


def sell(size, **kw):
    return lambda s: s.sell(size=size, **kw)


def all_of(*actions):
    def run(s):
        for action in actions:
            action(s)
    return run


def rejections(strat):
    """(bar, size, reason) of every Rejected notification."""
    return [(bar, size, reason) for bar, _, size, reason in strat.statuses('Rejected')]
