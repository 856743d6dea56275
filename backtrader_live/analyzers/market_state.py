"""MarketStateAnalyzer: trend and volatility regime of a data, bar by bar.

Trend (Wilder's directional movement, ``bt.ind.DMI``): ``up`` when ADX is at
least ``adx_threshold`` and +DI > -DI, ``down`` when ADX is at least the
threshold and -DI > +DI, otherwise ``range``.

Volatility: ATR% (ATR / close) ranked against its own last ``vol_window``
values (mid-rank percentile, 0..1, the current bar included): ``low`` under
``low_percentile``, ``high`` over ``high_percentile``, ``normal`` between.
Relative to its own recent past on purpose: what is "high" for BTC is not
for a stable pair, and a fixed ATR% threshold would need tuning per market.

Both are ``unknown`` until the indicators have enough bars (2 x
``adx_period`` for ADX; ``atr_period`` + ``min_vol_samples`` for the rank).

Regimes describe the data they are computed on: ADX(14) on 1h bars sees
trends of a day or so. For the weekly/monthly trend a 1h strategy usually
means, classify a resampled data (``cerebro.resampledata(data,
timeframe=bt.TimeFrame.Days)``) by passing it as ``data``.

The state is read by the strategy during ``next()`` as
``self.analyzers.<name>.state`` and is computed from the current bar (the
analyzer's own ``next()`` runs after the strategy's).

Adding the analyzer never changes when the strategy's ``next()`` starts, and
a market that stops moving does not crash it (see :class:`WilderDMI`).
"""
import bisect
import collections
import itertools
import math
import operator

import backtrader as bt

# Wilder's indicators live in wilder.py, neutral ground the risk sizer uses too.
from ..wilder import WilderDMI, arrays_in_advance, wilder_atr, wilder_dmi

UP, DOWN, RANGE, UNKNOWN = 'up', 'down', 'range', 'unknown'
LOW, NORMAL, HIGH = 'low', 'normal', 'high'
TRENDS = (UP, DOWN, RANGE, UNKNOWN)
VOLATILITIES = (LOW, NORMAL, HIGH, UNKNOWN)

MarketState = collections.namedtuple(
    'MarketState', 'datetime trend volatility adx plus_di minus_di atr_pct atr_pct_rank')


def classify_trend(adx, plus_di, minus_di, threshold):
    if adx != adx or plus_di != plus_di or minus_di != minus_di:   # NaN
        return UNKNOWN
    if adx < threshold or plus_di == minus_di:
        return RANGE
    return UP if plus_di > minus_di else DOWN


def classify_volatility(rank, low, high):
    if rank is None:
        return UNKNOWN
    if rank < low:
        return LOW
    return HIGH if rank > high else NORMAL


class RollingRank:
    """Mid-rank percentile of the newest value among the last ``window`` values.

    A sorted copy of the window answers by bisection; keeping it sorted
    costs a list insert and delete per bar (C memmoves). backtrader's
    PercentRank instead loops over the window in Python on every bar, which
    over 34k bars and a 500-bar window is seconds.
    """

    def __init__(self, window):
        self.window = window
        self._fifo = collections.deque()
        self._sorted = []

    def __len__(self):
        return len(self._fifo)

    def add(self, value):
        self._fifo.append(value)
        bisect.insort(self._sorted, value)
        if len(self._fifo) > self.window:
            old = self._fifo.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]

    def rank(self, value):
        """(values below + half of the equal ones) / count; None when empty."""
        n = len(self._sorted)
        if not n:
            return None
        below = bisect.bisect_left(self._sorted, value)
        equal = bisect.bisect_right(self._sorted, value) - below
        return (below + 0.5 * equal) / n

    def add_and_rank(self, value, min_samples):
        """Add ``value``; its rank, or None while fewer than ``min_samples``
        values are in the window."""
        self.add(value)
        return self.rank(value) if len(self._sorted) >= min_samples else None


def rolling_ranks(values, window, min_samples):
    """What :class:`RollingRank` tells MarketStateAnalyzer bar by bar, for a
    whole list at once: each value's rank among the last ``window`` non-NaN
    values (NaN values are skipped, as the analyzer skips them, and rank None)."""
    ranker = RollingRank(window)
    return [None if x != x else ranker.add_and_rank(x, min_samples) for x in values]


def _market_state(dtnum, trend, volatility, adx, pdi, mdi, atr_pct, rank):
    return MarketState(bt.num2date(dtnum), trend, volatility, adx, pdi, mdi, atr_pct, rank)


class _RegimeTally:
    """How many bars each regime had, and how often the trend changed."""

    def __init__(self):
        self.counts = {'trend': dict.fromkeys(TRENDS, 0),
                       'volatility': dict.fromkeys(VOLATILITIES, 0)}
        self.bars = self.changes = 0
        self.last_trend = None

    def add(self, trend, volatility):
        """One bar."""
        self.bars += 1
        self.counts['trend'][trend] += 1
        self.counts['volatility'][volatility] += 1
        if self.last_trend is not None and trend != self.last_trend:
            self.changes += 1
        self.last_trend = trend

    def add_many(self, trends, volatilities):
        """Consecutive bars (lists, oldest first): what :meth:`add` would
        count one by one, with C loops (Counter, map)."""
        if not trends:
            return
        for kind, regimes in (('trend', trends), ('volatility', volatilities)):
            counts = self.counts[kind]
            for regime, bars in collections.Counter(regimes).items():
                counts[regime] += bars
        previous = self.last_trend
        self.changes += sum(map(operator.ne, trends[1:], trends[:-1]))
        self.changes += previous is not None and trends[0] != previous
        self.last_trend = trends[-1]
        self.bars += len(trends)

    def analysis(self):
        def shares(counts):
            return {k: {'bars': v, 'share': v / self.bars if self.bars else 0.0}
                    for k, v in counts.items()}
        return {'trend': shares(self.counts['trend']),
                'volatility': shares(self.counts['volatility']),
                'bars': self.bars, 'changes': self.changes}


class _BarByBar:
    """The regimes from indicators, folded in bar by bar: live runs,
    ``runonce=False``, ``exactbars``, replay (no arrays in advance).

    Created in the analyzer's ``__init__``, the indicators belong to the
    strategy: Cerebro computes them before the strategy's ``next()``.
    """

    def __init__(self, data, p):
        self.data, self.p = data, p
        self._dmi = WilderDMI(data, period=p.adx_period)
        self._atr = (self._dmi if p.atr_period == p.adx_period
                     else WilderDMI(data, period=p.atr_period))
        self._ranks = RollingRank(p.vol_window)
        self._seen_len = self._counted_len = 0
        self._state = self._raw = None
        self._trend = self._vol = None
        self.tally = _RegimeTally()

    def state(self):
        self._update()
        return self.current()

    def _update(self):
        """Fold in the data's current bar once (by its length, so a resampled
        data counts its own bars, not the strategy's)."""
        n = len(self.data)
        if n == self._seen_len or not n:
            return
        self._seen_len = n
        atr, close = self._atr.atr[0], self.data.close[0]
        atr_pct = atr / close if close and not math.isnan(atr) else math.nan
        rank = None
        if not math.isnan(atr_pct):
            rank = self._ranks.add_and_rank(atr_pct, self.p.min_vol_samples)
        d = self._dmi
        adx, pdi, mdi = d.adx[0], d.plusDI[0], d.minusDI[0]
        # The regimes are counted every bar; the MarketState (and its datetime,
        # the costly part) is built only when someone reads it.
        self._raw = (self.data.datetime[0], adx, pdi, mdi, atr_pct, rank)
        self._trend = classify_trend(adx, pdi, mdi, self.p.adx_threshold)
        self._vol = classify_volatility(rank, self.p.low_percentile, self.p.high_percentile)
        self._state = None

    def current(self):
        """The state of the last bar folded in (None before the first)."""
        if self._state is None and self._raw is not None:
            dtnum, adx, pdi, mdi, atr_pct, rank = self._raw
            self._state = _market_state(dtnum, self._trend, self._vol,
                                        adx, pdi, mdi, atr_pct, rank)
        return self._state

    def next(self):
        # The strategy may have folded this bar in already (reading .state).
        self._update()
        if self._raw is None or self._counted_len == self._seen_len:
            return
        self._counted_len = self._seen_len
        self.tally.add(self._trend, self._vol)

    def counted(self):
        return self.tally


class _RegimeSeries:
    """Every preloaded bar's numbers and regimes, as :class:`_BarByBar`
    would fold them in one after the other."""

    def __init__(self, data, p):
        adx, pdi, mdi, atr = wilder_dmi(data, p.adx_period)
        if p.atr_period != p.adx_period:
            atr = wilder_atr(data, p.atr_period)
        atr_pct = [a / c if c and not math.isnan(a) else math.nan
                   for a, c in zip(atr, data.close.array)]
        ranks = rolling_ranks(atr_pct, p.vol_window, p.min_vol_samples)
        self.trend = list(map(classify_trend, adx, pdi, mdi, itertools.repeat(p.adx_threshold)))
        self.volatility = [classify_volatility(r, p.low_percentile, p.high_percentile)
                           for r in ranks]
        self._datetime = data.datetime.array
        self._numbers = (adx, pdi, mdi, atr_pct, ranks)

    def state(self, i):
        return _market_state(self._datetime[i], self.trend[i], self.volatility[i],
                             *(column[i] for column in self._numbers))


class _Preloaded:
    """The regimes of a preloaded runonce backtest (:func:`arrays_in_advance`).

    Each bar ``next()`` only notes how far the data got; the series are
    computed for every bar at first use (a state read, ``get_analysis()``)
    and the bars ``next()`` went through are counted when asked. By the data's
    length, as :class:`_BarByBar` does: a runonce loop advances a data at
    most one bar per step and calls ``next()`` every step, so the bars
    counted are exactly the first ``counted_len``.
    """

    def __init__(self, data, p):
        self.data, self.p = data, p
        # len(data) is the length of its first line: one call instead of three, each bar
        self._first_line = data.lines[0]
        self._series = None
        self._seen_len = self._counted_len = self._tallied_len = 0
        self._cached = (0, None)             # (length, its MarketState)
        self.tally = _RegimeTally()

    def series(self):
        if self._series is None:
            self._series = _RegimeSeries(self.data, self.p)
        return self._series

    def state(self):
        n = len(self.data)
        if n:
            self._seen_len = n
        return self.current()

    def current(self):
        length = max(self._seen_len, self._counted_len)
        if not length:
            return None
        if self._cached[0] != length:
            self._cached = (length, self.series().state(length - 1))
        return self._cached[1]

    def next(self):
        self._counted_len = len(self._first_line)

    def counted(self):
        start, end = self._tallied_len, self._counted_len
        if end > start:
            series = self.series()
            self.tally.add_many(series.trend[start:end], series.volatility[start:end])
            self._tallied_len = end
        return self.tally


class MarketStateAnalyzer(bt.Analyzer):
    """Trend and volatility regimes of ``data`` (default: the strategy's first).

    ``get_analysis()``: ``current`` (the state as a dict), ``trend`` and
    ``volatility`` (per regime: ``bars`` and ``share`` of the bars seen),
    ``bars`` and ``changes`` (how often the trend regime switched).

    In a preloaded runonce backtest the regimes come from the data's arrays
    (:class:`_Preloaded`), otherwise from indicators bar by bar
    (:class:`_BarByBar`); both give the same states and analysis.
    """

    params = (
        ('data', None),             # a data, its index or its name
        ('adx_period', 14),
        ('adx_threshold', 25.0),
        ('atr_period', 14),
        ('vol_window', 100),
        ('low_percentile', 0.25),
        ('high_percentile', 0.75),
        ('min_vol_samples', 20),
    )

    def __init__(self):
        data = self._resolve_data(self.p.data)
        regimes = _Preloaded if arrays_in_advance(self.strategy) else _BarByBar
        self._regimes = regimes(data, self.p)

    def _resolve_data(self, which):
        if which is None:
            return self.strategy.datas[0]
        if isinstance(which, int):
            return self.strategy.datas[which]
        if isinstance(which, str):
            return self.strategy.getdatabyname(which)
        return which

    @property
    def state(self):
        """The :class:`MarketState` of the data's current bar."""
        return self._regimes.state()

    def next(self):
        self._regimes.next()

    def get_analysis(self):
        analysis = self._regimes.counted().analysis()
        state = self._regimes.current()
        return dict(current=state._asdict() if state else None, **analysis)
