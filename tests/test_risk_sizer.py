"""RiskBasedSizer: ATR risk sizing that yields valid exchange orders.

Properties (hypothesis) on the sizing itself, then backtests on real and
synthetic candles, then a live run whose sizes the simulator accepts as is."""
import logging
import math
from decimal import Decimal
from types import SimpleNamespace

import backtrader as bt
import pytest
from hypothesis import assume, given, settings, strategies as st

import backtrader_live as btl
from backtrader_live.sizers import risk_sizer
from backtrader_live.sizers.risk_sizer import RiskBasedSizer, round_down
from livekit import LiveRun, Scripted
from test_risk_kit import btc_slice, cerebro, run_script, synthetic_rows

STEPS = [1e-8, 1e-5, 0.00025, 0.001, 0.01, 0.1, 1.0, 10.0]
WAVE = synthetic_rows([100 + 5 * math.sin(i / 3.0) for i in range(60)])


def _is_multiple(size, step):
    return Decimal(repr(size)) % Decimal(repr(step)) == 0


@pytest.mark.parametrize('size,step,expected', [
    (0.123456, 0.00001, 0.12345), (0.3, 0.1, 0.3),    # int(0.3 / 0.1) would give 0.2
    (1.0, 0.1, 1.0), (7.9, 2.5, 7.5), (5.5, None, 5.5), (5.5, 0, 5.5),
    (0.00000999, 0.00001, 0.0), (-1.0, 0.1, 0.0),
])
def test_round_down_table(size, step, expected):
    assert round_down(size, step) == expected


@given(size=st.floats(0, 1e6), step=st.sampled_from(STEPS))
def test_round_down_is_the_largest_multiple_not_above(size, step):
    assume(size / step < 1e14)           # beyond that no float is a multiple of the step
    rounded = round_down(size, step)
    assert rounded <= size and _is_multiple(rounded, step)
    assert size - rounded < step * (1 + 1e-9)


# -- the sizing, driven through light stand-ins for broker, data and comminfo ----------
class _Comm:
    stocklike = True

    def __init__(self, fee, mult):
        self.fee, self.p = fee, SimpleNamespace(mult=mult)

    def getoperationcost(self, size, price):
        return abs(size) * price

    def getcommission(self, size, price):
        return abs(size) * price * self.fee


class _Broker:
    def __init__(self, equity, cash, held, comm):
        self.equity, self.cash, self.held, self.comm = equity, cash, held, comm

    def getvalue(self):
        return self.equity

    def getposition(self, data):
        return SimpleNamespace(size=self.held)

    def getcommissioninfo(self, data):
        return self.comm


def _sizer(broker, atr, strategy=None, **params):
    sizer = RiskBasedSizer(**params)
    sizer.set(strategy, broker)            # not a backtrader strategy: no indicator
    sizer.atr = lambda data: atr
    return sizer


@settings(max_examples=300, deadline=None)
@given(equity=st.floats(100, 1e7), cash_share=st.floats(0, 1), price=st.floats(0.01, 1e5),
       atr_share=st.floats(1e-4, 0.5), risk=st.floats(0.001, 0.1), cap=st.floats(0.01, 1.0),
       atr_mult=st.floats(0.5, 5), mult=st.sampled_from([1.0, 0.1, 5.0]),
       step=st.sampled_from(STEPS), held_share=st.floats(0, 1), isbuy=st.booleans(),
       fee=st.sampled_from([0.0, 0.001]))
def test_size_respects_cap_step_and_risk(equity, cash_share, price, atr_share, risk, cap,
                                         atr_mult, mult, step, held_share, isbuy, fee):
    unit_value = price * mult
    held = held_share * cap * equity / unit_value * (1 if isbuy else -1)   # same side
    assume(equity / unit_value / step < 1e13)
    broker = _Broker(equity, cash_share * equity, held, _Comm(fee, mult))
    atr = atr_share * price
    sizer = _sizer(broker, atr, risk_per_trade=risk, max_position_pct=cap,
                   atr_multiplier=atr_mult, step=step)
    size = sizer._getsizing(broker.comm, broker.cash, SimpleNamespace(close=[price], _name='X'),
                            isbuy)
    assert size >= 0 and _is_multiple(size, step)
    # the position after the order stays within max_position_pct of equity
    assert (abs(held) + size) * unit_value <= cap * equity * (1 + 1e-9)
    # a stop atr_multiplier x ATR away loses at most risk_per_trade of equity
    # (a long cannot lose more than the price, should the stop lie below zero)
    stop = min(atr * atr_mult, price) if isbuy else atr * atr_mult
    assert size * stop * mult <= risk * equity * (1 + 1e-9)
    if isbuy:   # backtrader charges stock-like instruments price x size (no multiplier)
        assert size * price * (1 + fee) <= broker.cash * (1 + 1e-9)
    if size == 0:
        assert sizer.last.reason is not None


@pytest.mark.parametrize('equity,cash,held,params,reason', [
    (0.0, 0.0, 0.0, {}, risk_sizer.NO_EQUITY),
    (10000.0, 7000.0, 30.0, {}, risk_sizer.POSITION_CAP),          # 30 x 100 = 30%
    (10000.0, 0.0, 0.0, {}, risk_sizer.NO_CASH),
    (10000.0, 9000.0, 0.0, {'step': 1000.0}, risk_sizer.BELOW_STEP),
    (10000.0, 9000.0, 0.0, {'min_amount': 100.0}, risk_sizer.BELOW_MIN_AMOUNT),
    (10000.0, 9000.0, 0.0, {'min_notional': 1e6}, risk_sizer.BELOW_MIN_NOTIONAL),
])
def test_every_zero_size_tells_the_strategy_why(equity, cash, held, params, reason):
    told = []
    strategy = SimpleNamespace(notify_store=lambda msg, **kw: told.append((msg, kw)))
    broker = _Broker(equity, cash, held, _Comm(0.0, 1.0))
    data = SimpleNamespace(close=[100.0], _name='BTC/USDT')
    sizer = _sizer(broker, 2.0, strategy, **params)
    assert sizer._getsizing(broker.comm, cash, data, True) == 0
    (msg, kw), = told
    assert msg.startswith('RiskBasedSizer: no buy of BTC/USDT: ')
    assert kw == {'source': 'RiskBasedSizer', 'reason': reason, 'data': data, 'isbuy': True}
    assert sizer.last.reason == reason and sizer.last.size == 0


def test_cash_base_never_risks_more_than_equity_allows():
    # Short proceeds inflate cash above equity: risk stays a share of equity.
    broker = _Broker(10000.0, 30000.0, 0.0, _Comm(0.0, 1.0))
    data = SimpleNamespace(close=[100.0], _name='X')
    by_cash = _sizer(broker, 10.0, base='cash')._getsizing(broker.comm, 30000.0, data, True)
    by_equity = _sizer(broker, 10.0)._getsizing(broker.comm, 30000.0, data, True)
    assert by_cash == by_equity == pytest.approx(0.02 * 10000 / 20.0)
    broker.cash = 5000.0
    assert _sizer(broker, 10.0, base='cash')._getsizing(broker.comm, 5000.0, data, True) == \
        pytest.approx(0.02 * 5000 / 20.0)
    with pytest.raises(ValueError, match="'equity' or 'cash'"):
        RiskBasedSizer(base='margin')


# -- in backtests ------------------------------------------------------------------------
class AtrProbe(bt.Strategy):
    """Asks the sizer every bar and keeps what it saw beside bt.ind.ATR."""

    def __init__(self):
        self.atr = bt.ind.ATR(period=20)
        self.seen = []

    def prenext(self):
        self.next()

    def next(self):
        sizer = self.getsizer()
        size = sizer.getsizing(self.data, True)
        self.seen.append((sizer.atr(self.data), self.atr[0], size, sizer.last.method,
                          self.broker.getvalue(), self.broker.getcash(), self.data.close[0]))


@pytest.mark.parametrize('runonce', [True, False])
def test_atr_is_backtraders_wilder_atr_on_real_candles(runonce):
    c = cerebro(btc_slice((2017, 12, 1), (2017, 12, 8)), commission=0.001)
    c.addstrategy(AtrProbe)
    c.addsizer(RiskBasedSizer)
    strat = c.run(runonce=runonce)[0]
    seen, atrs = strat.seen, strat.getsizer()._atrs
    # runonce reads the preloaded arrays, otherwise an indicator runs: both are bt's ATR
    assert {type(a).__name__ for a in atrs.values()} == \
        {'PreloadedATR' if runonce else 'PatientATR'}
    assert len(seen) == 168
    for i, (atr, theirs, size, method, equity, cash, price) in enumerate(seen):
        if i < 20:               # ATR(20) needs 21 bars: 10% of cash until then
            assert atr is None and math.isnan(theirs) and method == 'fallback'
            assert size == pytest.approx(0.10 * cash / price)
        else:
            assert atr == theirs and method == 'atr'
            expected = min(0.02 * equity / (2.0 * atr), 0.3 * equity / price,
                           cash / (price * 1.001))
            assert size == pytest.approx(expected, rel=1e-12)


def test_orders_long_short_and_closing_in_a_backtest():
    params = {'step': 0.01}
    strat = run_script(WAVE, {25: lambda s: s.buy(), 30: lambda s: s.sell(),
                              35: lambda s: s.sell(), 40: lambda s: s.buy()},
                       sizer=(RiskBasedSizer, params))
    done = [e[2] for e in strat.statuses('Completed')]
    assert len(done) == 4 and all(_is_multiple(abs(s), 0.01) for s in done)
    assert done[0] > 0 and done[1] == -done[0]            # sell while long: closes
    assert done[2] < 0 and done[3] == -done[2]            # sell while flat: short; buy closes
    assert strat.held[-1] == 0


def test_a_market_minimum_means_no_order_and_a_message():
    strat = run_script(WAVE, {25: lambda s: s.buy()},
                       sizer=(RiskBasedSizer, {'min_notional': 1e9}))
    assert strat.events == []
    (msg, kw), = strat.messages
    assert 'is below the minimum 1000000000.0' in msg and kw['reason'] == 'below_min_notional'


def test_attached_after_the_start_it_falls_back(caplog):
    def attach(s):
        s.setsizer(RiskBasedSizer())
        s.buy()
    with caplog.at_level(logging.WARNING):
        strat = run_script(WAVE, {30: attach})
    assert 'attached after the run started' in caplog.text
    assert strat.getsizer().last.method == 'fallback'


# -- live: the sizes are what the exchange accepts -----------------------------------------
class Sized(Scripted):
    def notify_store(self, msg, *args, **kwargs):
        self.p.rec.messages.append((msg, kwargs))


def test_live_sizes_follow_the_market_steps_and_minimums(sim):
    def entry(s):
        s.buy()
        s.p.rec.sizing = s.getsizer().last

    def dust(s):
        s.getsizer().p.max_position_pct = 0.0003      # ~3 USDT: under the 5 USDT minimum
        s.buy()
        s.getsizer().p.max_position_pct = 0.3
    cb = btl.Cerebro()
    cb.addsizer(RiskBasedSizer)
    run = LiveRun(sim, script={26: dust, 27: entry}, backfill_bars=25, max_bars=2,
                  strategy=Sized, cerebro=cb)
    run.rec.messages = []
    run.start().step(2)
    run.join()
    (order,) = sim.orders()                       # the dust buy never reached the exchange
    sizing = run.rec.sizing
    assert sizing.method == 'atr' and sizing.size < sizing.raw   # rounded down
    assert Decimal(order.qty) == Decimal(repr(sizing.size))      # sent as sized
    assert Decimal(order.qty) % Decimal('0.00001') == 0 and order.status == 'FILLED'
    (msg, kw), = [m for m in run.rec.messages if m[1].get('source') == 'RiskBasedSizer']
    assert kw['reason'] == 'below_min_notional' and 'below the minimum 5' in msg
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Completed']
