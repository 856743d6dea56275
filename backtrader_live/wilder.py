"""Wilder's ATR and directional movement, shared by the risk analyzer and sizer.

Neutral ground: MarketStateAnalyzer (analyzers/market_state.py) classifies
regimes with them and RiskSizer (sizers/risk_sizer.py) sizes by ATR; neither
imports the other. Bar by bar (indicators that never delay a strategy) and,
for preloaded runonce backtests, the same numbers from the data's arrays.
"""
import array
import collections
import itertools
import math

import backtrader as bt


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
        # runonce backtests: the whole series from the arrays in one pass
        # (wilder_dmi: the same float operations as next()); without once()
        # backtrader falls back to once_via_next, ~10x slower per bar.
        series = wilder_dmi(self.data, self.p.period)
        for line, values in zip((self.lines.adx, self.lines.plusDI, self.lines.minusDI,
                                 self.lines.atr), series):
            line.array[start:end] = array.array('d', values[start:end])


# -- runonce backtests: the same numbers from the preloaded arrays, in one pass -----------
#
# backtrader advances every indicator a strategy owns, bar by bar, even in a
# runonce backtest whose values were all computed up front by once(): about
# 3 us a bar per indicator, an empty one included, which is most of what the
# risk kit cost a backtest. When the datas are preloaded the whole run's bars
# are in their arrays before the first next(), so the kit reads its series
# from there instead (computed once, at first use) and adds no indicator. The
# functions below repeat WilderDMI's and bt.ind.ATR's float operations in the
# same order, so every value is identical, not merely close.

def arrays_in_advance(strategy):
    """True when ``strategy`` runs a preloaded runonce backtest.

    Then backtrader has loaded every bar of every data before the strategy's
    first ``next()`` (exactbars, replay and live runs turn both off).
    Cerebro decides this in ``run()`` before it creates the strategy's
    analyzers and sizer, so they can ask while being set up.
    """
    cerebro = getattr(strategy, 'cerebro', None)
    return bool(getattr(cerebro, '_dorunonce', False) and getattr(cerebro, '_dopreload', False))


def wilder_average(values, period, first):
    """backtrader's SmoothedMovingAverage of ``values[first:]``, as a list as
    long as ``values``: NaN until index ``first + period - 1``, there the mean
    of the first ``period`` values (``math.fsum``, as bt's Average), then
    ``prev * (1 - 1/period) + x * (1/period)`` (see :func:`_smooth`)."""
    ready = first + period - 1
    if len(values) <= ready:
        return [math.nan] * len(values)
    alpha = 1.0 / period
    keep = 1.0 - alpha
    average = math.fsum(values[first:ready + 1]) / period
    out = [math.nan] * ready
    out.append(average)
    for x in itertools.islice(values, ready + 1, None):
        average = average * keep + x * alpha
        out.append(average)
    return out


def true_ranges(high, low, close, n):
    """bt.ind.TrueRange of bars ``0..n-1`` (NaN at bar 0: no previous close).

    ``max(high, prev_close) - min(low, prev_close)`` with max and min spelt
    out as the builtins evaluate them (the first argument unless the second
    is strictly greater/smaller, NaN included), which spares two calls a bar.
    """
    first = [math.nan] if n else []
    return first + [(pc if pc > h else h) - (pc if pc < lo else lo)
                    for h, lo, pc in zip(high[1:n], low[1:n], close[:n - 1])]


def _preloaded(data):
    """(high, low, close, bars) of a preloaded data: its arrays and how many
    bars they hold (without the lookahead extension)."""
    return data.high.array, data.low.array, data.close.array, data.buflen()


def wilder_atr(data, period):
    """bt.ind.ATR (Wilder's) of every preloaded bar of ``data``; NaN until ready."""
    high, low, close, n = _preloaded(data)
    return wilder_average(true_ranges(high, low, close, n), period, 1)


def wilder_dmi(data, period):
    """(adx, plus_di, minus_di, atr) lists over every preloaded bar of
    ``data``: what :class:`WilderDMI` computes bar by bar, value for value."""
    high, low, close, n = _preloaded(data)
    atr = wilder_average(true_ranges(high, low, close, n), period, 1)
    plus_dm, minus_dm = [math.nan] * min(n, 1), [math.nan] * min(n, 1)
    for h, lo, ph, pl in zip(high[1:n], low[1:n], high[:n - 1], low[:n - 1]):
        up, down = h - ph, pl - lo
        plus_dm.append(up if up > down and up > 0.0 else 0.0)
        minus_dm.append(down if down > up and down > 0.0 else 0.0)
    plus_av = wilder_average(plus_dm, period, 1)
    minus_av = wilder_average(minus_dm, period, 1)
    ready = min(period, n)               # the first bar with an ATR (and DIs, DX)
    plus_di, minus_di, dx = [math.nan] * ready, [math.nan] * ready, [math.nan] * ready
    for p_av, m_av, tr_av in zip(plus_av[ready:], minus_av[ready:], atr[ready:]):
        pdi, mdi = _directional(p_av, m_av, tr_av)
        plus_di.append(pdi)
        minus_di.append(mdi)
        dx.append(abs(pdi - mdi) / (pdi + mdi) if pdi + mdi else 0.0)
    adx = [100.0 * v for v in wilder_average(dx, period, ready)]
    return adx, plus_di, minus_di, atr


class PreloadedATR:
    """bt.ind.ATR of a preloaded data, read like an indicator (``len()``,
    ``[0]``) but computed from the data's arrays at first use, so backtrader
    has nothing to advance each bar. Only for :func:`arrays_in_advance` runs."""

    def __init__(self, data, period):
        self.data, self.period = data, period
        self._values = None

    def __len__(self):
        return len(self.data)

    def __getitem__(self, ago):
        if self._values is None:
            self._values = wilder_atr(self.data, self.period)
        return self._values[len(self.data) - 1 + ago]
