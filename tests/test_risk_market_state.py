"""MarketStateAnalyzer: trend and volatility regimes on the real BTC/USDT
candles, the state a strategy reads in next(), and the pieces it is built of."""
import collections
import datetime
import math

import backtrader as bt
import pytest
from hypothesis import given, strategies as st

import backtrader_live as btl
from backtrader_live.analyzers import MarketStateAnalyzer
from backtrader_live.analyzers.market_state import (RollingRank, WilderDMI, classify_trend,
                                                    classify_volatility)
from test_risk_kit import btc_slice, feed, synthetic_rows

D = datetime.datetime


class Watch(bt.Strategy):
    """Records the analyzer's state as the strategy sees it in next()."""

    def __init__(self):
        self.seen = []

    def next(self):
        self.seen.append((self.data.datetime.datetime(0), self.analyzers.market.state))


@pytest.fixture(scope='module')
def daily_regimes():
    """1h candles Sep 2017 - Dec 2018, classified on their daily resample."""
    c = bt.Cerebro(stdstats=False)
    hourly = feed(btc_slice((2017, 9, 1), (2019, 1, 1)))
    c.adddata(hourly)
    daily = c.resampledata(hourly, timeframe=bt.TimeFrame.Days)
    c.addstrategy(Watch)
    c.addanalyzer(MarketStateAnalyzer, _name='market', data=daily, vol_window=60)
    strat = c.run()[0]
    return strat.seen, strat.analyzers.market.get_analysis()


def _shares(seen, start, end, field):
    counts = collections.Counter(getattr(s, field) for dt, s in seen if start <= dt < end)
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()}


@pytest.mark.parametrize('start,end,regime,share', [
    (D(2017, 11, 15), D(2017, 12, 17), 'up', 0.9),      # the run to 19k
    (D(2018, 1, 16), D(2018, 2, 6), 'down', 0.9),       # the 2018 decline
    (D(2018, 11, 14), D(2018, 12, 15), 'down', 0.75),   # the November 2018 capitulation
    (D(2018, 9, 1), D(2018, 11, 1), 'range', 0.75),     # the quiet autumn of 2018
])
def test_known_btc_periods_classify_as_their_trend(daily_regimes, start, end, regime, share):
    seen, _ = daily_regimes
    assert _shares(seen, start, end, 'trend').get(regime, 0) >= share


@pytest.mark.parametrize('start,end,regime,share', [
    (D(2018, 9, 1), D(2018, 11, 1), 'low', 0.75),
    (D(2018, 11, 14), D(2018, 12, 15), 'high', 0.75),
])
def test_known_btc_periods_classify_as_their_volatility(daily_regimes, start, end, regime, share):
    seen, _ = daily_regimes
    assert _shares(seen, start, end, 'volatility').get(regime, 0) >= share


def test_analysis_counts_the_classified_datas_bars(daily_regimes):
    seen, analysis = daily_regimes
    days = len({dt.date() for dt, _ in seen})
    assert analysis['bars'] in (days - 1, days)          # daily bars closed so far
    for kind in ('trend', 'volatility'):
        assert sum(v['bars'] for v in analysis[kind].values()) == analysis['bars']
        assert sum(v['share'] for v in analysis[kind].values()) == pytest.approx(1.0)
    assert analysis['trend']['unknown']['bars'] == 2 * 14 - 1        # ADX(14) warm-up
    assert analysis['current'] == seen[-1][1]._asdict() and analysis['changes'] > 10


class Compare(bt.Strategy):
    """Its own DMI/ATR beside what the analyzer reports in the same next()."""

    def __init__(self):
        self.dmi = bt.ind.DMI(period=14)
        self.atr = bt.ind.ATR(period=14)
        self.rows = []

    def prenext(self):
        self.next()

    def next(self):
        self.rows.append((self.analyzers.market.state, self.dmi.adx[0], self.dmi.plusDI[0],
                          self.dmi.minusDI[0], self.atr[0] / self.data.close[0]))


@pytest.mark.parametrize('runonce', [True, False])
def test_state_in_next_is_the_current_bar(runonce):
    c = bt.Cerebro(stdstats=False)
    c.adddata(feed(btc_slice((2018, 1, 1), (2018, 1, 15))))
    c.addstrategy(Compare)
    c.addanalyzer(MarketStateAnalyzer, _name='market', vol_window=50)
    rows = c.run(runonce=runonce)[0].rows
    history = []
    for state, adx, plus, minus, atr_pct in rows:
        if math.isnan(adx):
            assert state.trend == 'unknown'
        else:
            assert (state.adx, state.plus_di, state.minus_di) == (adx, plus, minus)
            assert state.trend == classify_trend(adx, plus, minus, 25.0)
        if not math.isnan(atr_pct):
            history.append(atr_pct)
            window = history[-50:]
            assert state.atr_pct == pytest.approx(atr_pct, rel=1e-12)
            if len(history) >= 20:
                below = sum(v < atr_pct for v in window)
                equal = sum(v == atr_pct for v in window)
                assert state.atr_pct_rank == (below + 0.5 * equal) / len(window)
    assert {s.trend for s, *_ in rows} >= {'up', 'down', 'range'}


class FirstNext(bt.Strategy):
    def __init__(self):
        self.first = None

    def next(self):
        if self.first is None:
            self.first = len(self)


def test_attaching_the_analyzer_and_sizer_never_delays_the_strategy():
    c = btl.Cerebro(stdstats=False)
    c.adddata(feed(synthetic_rows([100 + math.sin(i) for i in range(80)])))
    c.addstrategy(FirstNext)
    c.addanalyzer(MarketStateAnalyzer, _name='market')
    c.addanalyzer(btl.analyzers.RiskAnalyzer)
    c.addsizer(btl.sizers.RiskBasedSizer, volatility_period=40)
    strat = c.run()[0]
    assert strat.first == 1
    assert strat.analyzers.market.get_analysis()['trend']['unknown']['bars'] == 27


def test_data_can_be_named_by_index_or_name():
    c = bt.Cerebro(stdstats=False)
    c.adddata(feed(synthetic_rows([100.0] * 40)), name='a')
    c.adddata(feed(synthetic_rows([100 + 10 * math.sin(i / 4) for i in range(40)])), name='b')
    c.addstrategy(bt.Strategy)
    for which in (1, 'b'):
        c.addanalyzer(MarketStateAnalyzer, data=which, _name='m%s' % which)
    c.addanalyzer(MarketStateAnalyzer, _name='first')
    strat = c.run()[0]
    assert strat.analyzers.m1.get_analysis() == strat.analyzers.mb.get_analysis()
    flat = strat.analyzers.first.get_analysis()['current']
    assert flat['atr_pct'] < strat.analyzers.mb.get_analysis()['current']['atr_pct']


@pytest.mark.parametrize('adx,plus,minus,expected', [
    (30, 25, 10, 'up'), (30, 10, 25, 'down'), (20, 25, 10, 'range'), (25, 25, 10, 'up'),
    (30, 20, 20, 'range'), (math.nan, 25, 10, 'unknown'), (30, math.nan, 10, 'unknown'),
])
def test_trend_rule(adx, plus, minus, expected):
    assert classify_trend(adx, plus, minus, 25.0) == expected


@pytest.mark.parametrize('rank,expected', [
    (None, 'unknown'), (0.1, 'low'), (0.25, 'normal'), (0.5, 'normal'), (0.75, 'normal'),
    (0.9, 'high'),
])
def test_volatility_rule(rank, expected):
    assert classify_volatility(rank, 0.25, 0.75) == expected


@given(st.lists(st.integers(0, 20), min_size=1, max_size=60), st.integers(1, 15))
def test_rolling_rank_matches_brute_force(values, window):
    ranks = RollingRank(window)
    for i, v in enumerate(values):
        ranks.add(v)
        recent = values[max(0, i + 1 - window):i + 1]
        below, equal = sum(x < v for x in recent), sum(x == v for x in recent)
        assert len(ranks) == len(recent)
        assert ranks.rank(v) == (below + 0.5 * equal) / len(recent)
    assert RollingRank(3).rank(1.0) is None


@pytest.mark.parametrize('runonce', [True, False])
def test_wilder_dmi_is_backtraders_dmi_and_survives_a_flat_market(runonce):
    class Both(bt.Strategy):
        def __init__(self):
            self.ours = WilderDMI(period=14)
            self.theirs = bt.ind.DMI(period=14)
            self.atr = bt.ind.ATR(period=14)
            self.rows = []

        def next(self):
            self.rows.append(([self.ours.adx[0], self.ours.plusDI[0], self.ours.minusDI[0],
                               self.ours.atr[0]],
                              [self.theirs.adx[0], self.theirs.plusDI[0],
                               self.theirs.minusDI[0], self.atr[0]]))
    c = bt.Cerebro(stdstats=False)
    c.adddata(feed(btc_slice((2018, 1, 1), (2018, 1, 20))))
    c.addstrategy(Both)
    rows = c.run(runonce=runonce)[0].rows
    assert len(rows) > 400
    for ours, theirs in rows:
        assert ours == pytest.approx(theirs, rel=0, abs=0, nan_ok=True)   # same float ops
    # Not one move for 40 bars: backtrader's DMI divides by zero, ours says "range".
    flat = [(i * 3600000, 100.0, 100.0, 100.0, 100.0, 0.0) for i in range(40)]
    c = bt.Cerebro(stdstats=False)
    c.adddata(feed(flat))
    c.addstrategy(Watch)
    c.addanalyzer(MarketStateAnalyzer, _name='market')
    seen = c.run(runonce=runonce)[0].seen
    assert seen[-1][1].trend == 'range' and seen[-1][1].adx == 0.0


@pytest.mark.parametrize('atr_period,which', [(14, 0), (10, 1)])
def test_preloaded_and_bar_by_bar_give_identical_states_and_analysis(atr_period, which):
    """A preloaded runonce backtest computes the regimes from the data's arrays,
    other runs fold them in bar by bar: every state and the analysis must be
    equal, value for value (an ATR period apart from ADX's exercises the
    second series; ``which`` picks the first or second of two datas)."""
    def run(runonce):
        c = bt.Cerebro(stdstats=False)
        c.adddata(feed(btc_slice((2018, 1, 1), (2018, 4, 1))))
        c.adddata(feed(btc_slice((2018, 2, 1), (2018, 5, 1))))
        c.addstrategy(Watch)
        c.addanalyzer(MarketStateAnalyzer, _name='market', data=which, atr_period=atr_period,
                      vol_window=60)
        strat = c.run(runonce=runonce)[0]
        kind = type(strat.analyzers.market._regimes).__name__
        return strat.seen, strat.analyzers.market.get_analysis(), kind

    fast, slow = run(True), run(False)
    assert (fast[2], slow[2]) == ('_Preloaded', '_BarByBar')      # both paths taken
    assert len(fast[0]) == len(slow[0]) > 500

    def same(a, b):          # NaN == NaN here: both say "not ready"
        return a == b or (a != a and b != b)
    for (dt_f, s_f), (dt_s, s_s) in zip(fast[0], slow[0]):
        assert dt_f == dt_s
        assert all(same(x, y) for x, y in zip(s_f, s_s)), (dt_f, s_f, s_s)
    current_f, current_s = fast[1].pop('current'), slow[1].pop('current')
    assert fast[1] == slow[1] and fast[1]['bars'] > 500
    assert all(same(current_f[k], current_s[k]) for k in current_f)
