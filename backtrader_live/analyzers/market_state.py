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
import math

import backtrader as bt

UP, DOWN, RANGE, UNKNOWN = 'up', 'down', 'range', 'unknown'
LOW, NORMAL, HIGH = 'low', 'normal', 'high'
TRENDS = (UP, DOWN, RANGE, UNKNOWN)
VOLATILITIES = (LOW, NORMAL, HIGH, UNKNOWN)

MarketState = collections.namedtuple(
    'MarketState', 'datetime trend volatility adx plus_di minus_di atr_pct atr_pct_rank')


class Patient(bt.Indicator):
    """An inner backtrader indicator's lines, without its minimum period.

    backtrader makes a strategy wait (``prenext``) until *every* indicator
    it owns has its minimum period, recomputed at start. An analyzer or a
    sizer that added a plain ``bt.ind.DMI`` would silently shift an
    unchanged strategy's first ``next()`` by 28 bars. This wrapper copies
    the inner indicator's values (NaN until ready) and keeps a minimum period
    of 1. Subclasses set ``lines`` (names of the inner indicator's lines)
    and build ``self.inner`` in ``__init__``.
    """
    plotinfo = dict(plot=False)

    def _periodrecalc(self):
        pass    # the point: the inner indicator's period does not become ours

    def next(self):
        for name in self.lines.getlinealiases():
            getattr(self.lines, name)[0] = getattr(self.inner.lines, name)[0]

    def once(self, start, end):
        for name in self.lines.getlinealiases():
            mine, theirs = getattr(self.lines, name).array, getattr(self.inner.lines, name).array
            for i in range(start, end):
                mine[i] = theirs[i]


class PatientATR(Patient):
    """``bt.ind.ATR`` (Wilder's) that never delays the strategy."""
    lines = ('atr',)
    params = (('period', 14),)

    def __init__(self):
        self.inner = bt.ind.ATR(self.data, period=self.p.period)


_Dmi = collections.namedtuple('_Dmi', 'prev atr tr pdm_av pdm mdm_av mdm dx_av dx')
_DMI_START = _Dmi(None, None, (), None, (), None, (), None, ())


def _smooth(average, seed, x, period):
    """Wilder's smoothing, as backtrader's SmoothedMovingAverage computes it:
    the plain mean of the first ``period`` values, then
    ``prev * (1 - 1/period) + x / period``. Returns (average or None, seed)."""
    if average is not None:
        alpha = 1.0 / period
        return average * (1.0 - alpha) + x * alpha, seed
    seed += (x,)
    if len(seed) < period:
        return None, seed
    return math.fsum(seed) / period, ()


def _dmi_step(s, high, low, close, period):
    """The directional movement state after one more bar (``s`` is untouched)."""
    if s.prev is None:
        return s._replace(prev=(high, low, close))
    ph, pl, pc = s.prev
    up, down = high - ph, pl - low
    atr, tr = _smooth(s.atr, s.tr, max(high, pc) - min(low, pc), period)
    pdm_av, pdm = _smooth(s.pdm_av, s.pdm, up if up > down and up > 0.0 else 0.0, period)
    mdm_av, mdm = _smooth(s.mdm_av, s.mdm, down if down > up and down > 0.0 else 0.0, period)
    dx_av, dx = s.dx_av, s.dx
    if atr is not None:
        pdi, mdi = _directional(pdm_av, mdm_av, atr)
        # No movement at all: backtrader divides by zero, a flat market is no trend.
        dx_av, dx = _smooth(dx_av, dx, abs(pdi - mdi) / (pdi + mdi) if pdi + mdi else 0.0,
                            period)
    return _Dmi((high, low, close), atr, tr, pdm_av, pdm, mdm_av, mdm, dx_av, dx)


def _directional(pdm_av, mdm_av, atr):
    if not atr:
        return 0.0, 0.0
    return 100.0 * pdm_av / atr, 100.0 * mdm_av / atr


class WilderDMI(bt.Indicator):
    """ADX, +DI, -DI and ATR as ``bt.ind.DMI``/``bt.ind.ATR`` compute them,
    defined on flat markets and without delaying the strategy.

    backtrader's DMI raises ZeroDivisionError when a market does not move
    for ``period`` bars (an illiquid pair on 1m bars does that); a live run
    must not die of it, so no movement reads as ADX 0 (range). State is
    kept per *completed* bar, so calling ``next()`` again on the same bar
    (a higher-timeframe data under a faster strategy clock, or a replayed
    bar that is still forming) recomputes that bar instead of counting it
    twice. Minimum period 1: values are NaN until ready.
    """
    lines = ('adx', 'plusDI', 'minusDI', 'atr')
    params = (('period', 14),)
    plotinfo = dict(plot=False)

    def __init__(self):
        self._done = self._now = _DMI_START   # after the last completed / this bar
        self._bar = 0                         # len(data) of the bar being computed

    def next(self):
        n = len(self.data)
        if n != self._bar:
            self._done, self._bar = self._now, n
        d = self.data
        self._now = s = _dmi_step(self._done, d.high[0], d.low[0], d.close[0], self.p.period)
        nan = math.nan
        pdi, mdi = (nan, nan) if s.atr is None else _directional(s.pdm_av, s.mdm_av, s.atr)
        self.lines.plusDI[0], self.lines.minusDI[0] = pdi, mdi
        self.lines.atr[0] = nan if s.atr is None else s.atr
        self.lines.adx[0] = nan if s.dx_av is None else 100.0 * s.dx_av

    def once(self, start, end):
        # runonce backtests: the same steps over the arrays. Without once()
        # backtrader falls back to once_via_next, ~10x slower per bar.
        d, lines, period, nan = self.data, self.lines, self.p.period, math.nan
        high, low, close = d.high.array, d.low.array, d.close.array
        adx, pdi_a, mdi_a, atr_a = (lines.adx.array, lines.plusDI.array,
                                    lines.minusDI.array, lines.atr.array)
        s = self._done
        for i in range(start, end):
            s = _dmi_step(s, high[i], low[i], close[i], period)
            if s.atr is None:
                pdi_a[i] = mdi_a[i] = atr_a[i] = nan
            else:
                pdi_a[i], mdi_a[i] = _directional(s.pdm_av, s.mdm_av, s.atr)
                atr_a[i] = s.atr
            adx[i] = nan if s.dx_av is None else 100.0 * s.dx_av
        self._done = self._now = s


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


class MarketStateAnalyzer(bt.Analyzer):
    """Trend and volatility regimes of ``data`` (default: the strategy's first).

    ``get_analysis()``: ``current`` (the state as a dict), ``trend`` and
    ``volatility`` (per regime: ``bars`` and ``share`` of the bars seen),
    ``bars`` and ``changes`` (how often the trend regime switched).
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
        self._data = self._resolve_data(self.p.data)
        # Created here, the indicators belong to the strategy: Cerebro computes
        # them before the strategy's next() (Patient: without delaying it).
        self._dmi = WilderDMI(self._data, period=self.p.adx_period)
        self._atr = (self._dmi if self.p.atr_period == self.p.adx_period
                     else WilderDMI(self._data, period=self.p.atr_period))
        self._ranks = RollingRank(self.p.vol_window)
        self._seen_len = self._counted_len = 0
        self._state = self._raw = None
        self._trend = self._vol = None
        self._counts = {'trend': dict.fromkeys(TRENDS, 0),
                        'volatility': dict.fromkeys(VOLATILITIES, 0)}
        self._bars = self._changes = 0
        self._last_trend = None

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
        self._update()
        return self._build_state()

    def _update(self):
        """Fold in the data's current bar once (by its length, so a resampled
        data counts its own bars, not the strategy's)."""
        n = len(self._data)
        if n == self._seen_len or not n:
            return
        self._seen_len = n
        atr, close = self._atr.atr[0], self._data.close[0]
        atr_pct = atr / close if close and not math.isnan(atr) else math.nan
        rank = None
        if not math.isnan(atr_pct):
            self._ranks.add(atr_pct)
            if len(self._ranks) >= self.p.min_vol_samples:
                rank = self._ranks.rank(atr_pct)
        d = self._dmi
        adx, pdi, mdi = d.adx[0], d.plusDI[0], d.minusDI[0]
        # The regimes are counted every bar; the MarketState (and its datetime,
        # the costly part) is built only when someone reads it.
        self._raw = (self._data.datetime[0], adx, pdi, mdi, atr_pct, rank)
        self._trend = classify_trend(adx, pdi, mdi, self.p.adx_threshold)
        self._vol = classify_volatility(rank, self.p.low_percentile, self.p.high_percentile)
        self._state = None

    def _build_state(self):
        if self._state is None and self._raw is not None:
            dtnum, adx, pdi, mdi, atr_pct, rank = self._raw
            self._state = MarketState(bt.num2date(dtnum), self._trend, self._vol,
                                      adx, pdi, mdi, atr_pct, rank)
        return self._state

    def next(self):
        # The strategy may have folded this bar in already (reading .state).
        self._update()
        if self._raw is None or self._counted_len == self._seen_len:
            return
        self._counted_len = self._seen_len
        trend = self._trend
        self._bars += 1
        self._counts['trend'][trend] += 1
        self._counts['volatility'][self._vol] += 1
        if self._last_trend is not None and trend != self._last_trend:
            self._changes += 1
        self._last_trend = trend

    def get_analysis(self):
        def shares(counts):
            return {k: {'bars': v, 'share': v / self._bars if self._bars else 0.0}
                    for k, v in counts.items()}
        state = self._build_state()
        return {'current': state._asdict() if state else None,
                'trend': shares(self._counts['trend']),
                'volatility': shares(self._counts['volatility']),
                'bars': self._bars, 'changes': self._changes}
