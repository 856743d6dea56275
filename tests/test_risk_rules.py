"""The broker's risk gate: each rule, the kill switch and what "reduces
exposure" means, in paper backtests (BackBroker underneath) and in a live run
against the simulator."""
import datetime
import logging
import threading
from types import SimpleNamespace

import pytest

import backtrader_live as btl
from backtrader_live import risk
from livekit import LiveRun
from test_risk_kit import run_script, synthetic_rows
from test_risk_kit import all_of, buy, rejections, sell

FLAT = synthetic_rows([100.0] * 30)        # price 100 throughout, cash 10000
KILL = 'kill switch active'


@pytest.mark.parametrize('position,order,expected', [
    (1.0, -0.5, True), (1.0, -1.0, True), (1.0, -1.0 * (1 + 1e-12), True),
    (1.0, -1.5, False),      # flips to short: opens exposure
    (1.0, 0.5, False), (0.0, 1.0, False), (0.0, -1.0, False),
    (-2.0, 1.0, True), (-2.0, 2.0, True), (-2.0, 3.0, False), (-2.0, -1.0, False),
])
def test_reduces_exposure_means_toward_zero_without_flipping(position, order, expected):
    assert risk.reduces_exposure(position, order) is expected


def test_kill_switch_trips_expires_and_clears(caplog):
    switch = risk.KillSwitch()
    assert not switch.tripped and repr(switch) == 'KillSwitch(clear)'
    midnight = datetime.datetime(2021, 1, 2)
    with caplog.at_level(logging.INFO, logger='backtrader_live.risk'):
        switch.trip('daily_loss', 'lost 6%', until=midnight)
        switch.trip('manual', 'operator halt')
        assert set(switch.active(datetime.datetime(2021, 1, 1, 23))) == {'daily_loss', 'manual'}
        assert set(switch.active(midnight)) == {'manual'}        # expired by bar time
        assert switch.clear('manual') == ['manual'] and switch.clear('manual') == []
    assert not switch.tripped
    assert 'kill switch tripped (daily_loss): lost 6% until 2021-01-02' in caplog.text
    assert 'expired' in caplog.text and 'kill switch cleared (manual)' in caplog.text


def test_kill_switch_is_safe_across_threads():
    switch = risk.KillSwitch()

    def churn(kind):
        for i in range(300):
            switch.trip(kind, 'x')
            switch.active()
            switch.clear(kind)
    threads = [threading.Thread(target=churn, args=('k%d' % i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert switch.active() == {}


def test_max_order_notional():
    strat = run_script(FLAT, {2: buy(11), 3: buy(9)}, max_order_notional=1000)
    (rejected,) = rejections(strat)
    assert rejected[:2] == (2, 11)
    assert rejected[2] == 'order notional 1100.00 (11 x 100.0) exceeds max_order_notional 1000'
    assert [e[2] for e in strat.statuses('Completed')] == [9]


def test_max_position_share_counts_pending_orders_and_lets_reductions_through():
    script = {2: buy(20),                         # 20% of equity: fine
              4: buy(15),                         # would make 35%
              5: sell(20),                        # reduces: always fine
              8: all_of(buy(20), buy(15))}         # 20% pending + 15% = 35%
    strat = run_script(FLAT, script, commission=0.0, max_position_pct=0.3)
    assert [(r[0], r[1]) for r in rejections(strat)] == [(4, 15), (8, 15)]
    assert all('max_position_pct is 30.0%' in r[2] for r in rejections(strat))
    assert '35.0% of equity' in rejections(strat)[0][2]
    assert [e[2] for e in strat.statuses('Completed')] == [20, -20, 20]


def test_no_equity_means_no_new_exposure():
    # Upstream's BackBroker cannot even run with no cash (fund value divides by
    # it): the rule is checked on stand-ins for the broker and a market order.
    broker = SimpleNamespace(p=SimpleNamespace(max_position_pct=0.3), live=False,
                             getvalue=lambda: -5.0,
                             getposition=lambda data: SimpleNamespace(size=0.0))
    order = SimpleNamespace(size=1.0, data=None, parent=None, exectype=btl.Order.Market,
                            price=None, pricelimit=None, created=SimpleNamespace(pclose=100.0))
    assert risk.rule_max_position(broker, order) == \
        'equity is -5.00: no order may add exposure'


def test_max_open_orders_counts_resting_orders():
    limit = lambda s: s.buy(size=1, price=90.0, exectype=btl.Order.Limit)   # noqa: E731
    strat = run_script(FLAT, {2: all_of(limit, limit, limit)}, max_open_orders=2)
    (rejected,) = rejections(strat)
    assert rejected[2] == '2 orders already open: max_open_orders is 2'
    assert len(strat.broker.get_orders_open()) == 2


def test_price_deviation_guards_limit_and_stop_prices_not_market_orders():
    script = {2: all_of(buy(1, price=80.0, exectype=btl.Order.Limit),
                      buy(1, price=95.0, exectype=btl.Order.Limit),
                      buy(1, price=105.0, plimit=150.0, exectype=btl.Order.StopLimit),
                      sell(1, price=130.0, exectype=btl.Order.Stop),
                      buy(1, price=1.0))}             # a market order ignores its price
    strat = run_script(FLAT, script, max_price_deviation=0.1)
    reasons = [r[2] for r in rejections(strat)]
    assert reasons == [
        'price 80.0 is 20.0% away from the last price 100.0: max_price_deviation is 10.0%',
        'limit price 150.0 is 50.0% away from the last price 100.0: max_price_deviation is 10.0%',
        'price 130.0 is 30.0% away from the last price 100.0: max_price_deviation is 10.0%']
    accepted = [e for e in strat.events if e[1] == 'Accepted']
    assert len(accepted) == 2


def test_limits_are_off_by_default_and_read_when_an_order_arrives():
    def tighten(s):
        s.broker.p.max_order_notional = 500
    strat = run_script(FLAT, {2: buy(60), 3: tighten, 4: buy(6)})
    assert [e[2] for e in strat.statuses('Completed')] == [60]
    assert 'max_order_notional 500' in rejections(strat)[0][2]


def test_kill_switch_blocks_risk_increasing_orders_only(caplog):
    def trip(s):
        s.broker.kill_switch.trip('manual', 'operator halt')
    script = {2: buy(10),
              4: all_of(trip, buy(1), sell(20), sell(4)),    # add, flip: no; reduce: yes
              6: all_of(lambda s: s.close(), lambda s: s.close()),  # 2nd would open a short
              8: all_of(lambda s: s.broker.kill_switch.clear(), buy(1))}
    with caplog.at_level(logging.WARNING):
        strat = run_script(FLAT, script)
    rejected = rejections(strat)
    assert [(r[0], r[1]) for r in rejected] == [(4, 1), (4, -20), (6, -6)]
    assert all(r[2].startswith(KILL + ' (manual: operator halt): only orders that reduce')
               for r in rejected)
    assert [e[2] for e in strat.statuses('Completed')] == [10, -4, -6, 1]
    assert strat.held[-1] == 1
    assert 'rejected before sending: kill switch active' in caplog.text


def test_bracket_exits_are_protective_not_new_exposure():
    def bracket(s):
        s.orders = s.buy_bracket(size=1, price=99.0, stopprice=95.0, limitprice=105.0)
        s.judged = [risk.increases_exposure(s.broker, o) for o in s.orders]
    strat = run_script(FLAT, {2: bracket})
    assert strat.judged == [True, False, False]
    assert [risk.is_protective_child(o) for o in strat.orders] == [False, True, True]


def test_risk_management_false_bypasses_the_gate():
    def trip_and_buy(s):
        s.broker.kill_switch.trip('manual', 'halt')
        s.buy(size=50)
    strat = run_script(FLAT, {2: trip_and_buy}, risk_management=False, max_order_notional=1)
    assert not rejections(strat) and strat.statuses('Completed')


def test_contract_notional_uses_the_market_contract_value():
    class Rules:            # an inverse contract: 100 USD per contract, valued in BTC
        contract, inverse, contract_size = True, True, 100.0

    class Broker:
        def market_rules(self, data):
            return Rules()
    assert risk.notional(Broker(), None, -3, 50000.0) == pytest.approx(300 / 50000.0)
    assert risk.market_rules(object(), None) is None


def test_a_failing_market_lookup_does_not_break_the_gate(caplog):
    class Broker:
        def market_rules(self, data):
            raise RuntimeError('exchange down')
    assert risk.market_rules(Broker(), None) is None
    assert 'no market rules' in caplog.text


def test_live_gate_rejects_before_sending_with_reasons(sim):
    def orders(s):
        close = s.data.close[0]
        s.buy(size=0.5)                                                  # ~2100 USDT
        s.buy(size=0.0001)                                               # under 5 USDT
        s.buy(size=0.01, price=round(close * 0.5, 2), exectype=btl.Order.Limit)
        s.buy(size=0.01)                                                 # fine
    def resting(s):
        for _ in range(3):
            s.buy(size=0.01, price=round(s.data.close[0] * 0.95, 2), exectype=btl.Order.Limit)
    run = LiveRun(sim, script={6: orders, 7: resting}, max_bars=2,
                  broker_kwargs={'max_order_notional': 1000, 'max_price_deviation': 0.1,
                                 'max_open_orders': 2}).start()
    run.step(2)
    run.join()
    reasons = [o[4] for o in run.rec.orders if o[0] == 'Rejected']
    assert len(reasons) == 4
    assert reasons[0].startswith('order notional') and 'max_order_notional 1000' in reasons[0]
    assert 'below the minimum 5' in reasons[1]
    assert 'max_price_deviation is 10.0%' in reasons[2]
    assert reasons[3] == '2 orders already open: max_open_orders is 2'
    placed = sim.orders()
    assert [(o.type, o.status) for o in placed] == [('MARKET', 'FILLED'), ('LIMIT', 'NEW'),
                                                    ('LIMIT', 'NEW')]
