"""OCO groups and brackets live, on all six venues (issue 14): backtrader
keeps these links in its BackBroker, the live broker emulates them from the
user stream (backtrader_live/orderlinks.py).

Prices (the simulator's real candles; script bar 6 closes at 4191.53):
bar 7 trades 4174.97-4206.77, bar 8 up to 4307.54, bar 14 down to 4158.84.
"""
import pytest

import backtrader_live as btl
from helpers import eventually
from venues import ALL, DERIVATIVES, VENUES, live_run, sim_orders, sim_position, unit, venue_sim

# a thin book: a market order walks levels and fills in parts
THIN = {'spot': {'depth_qty': 0.004}, 'futures': {'futures_depth_qty': 0.004},
        'delivery': {'futures_depth_qty': 1}, 'linear': {'contract_depth_qty': 0.004},
        'inverse': {'contract_depth_qty': 100}}


def _by_ref(rec):
    """{order ref: [status, ...]} in notification order."""
    out = {}
    for ref, status in rec.refs:
        out.setdefault(ref, []).append(status)
    return out


def _run(venue, script, steps, **sim_kwargs):
    with venue_sim(venue, **sim_kwargs) as sim:
        run = live_run(sim, venue, script=script, max_bars=steps, strategy=RefRecording)
        run.start()
        run.step(steps)
        run.join()
        return run, sim_orders(sim, venue), sim_position(sim, venue)


from livekit import Scripted  # noqa: E402


class RefRecording(Scripted):
    def notify_order(self, order):
        super().notify_order(order)
        self.p.rec.__dict__.setdefault('refs', []).append((order.ref, order.getstatusname()))


@pytest.mark.parametrize('venue', ALL)
def test_oco_breakout_one_fills_the_other_is_cancelled(venue):
    """backtrader's oco sample: whichever fills first cancels the other."""
    u = unit(venue)

    def place(s):
        s.o1 = s.buy(size=u, price=4250.0, exectype=btl.Order.Stop)
        s.o2 = s.buy(size=u, price=4100.0, exectype=btl.Order.Limit, oco=s.o1)
    run, orders, position = _run(venue, {6: place}, 3)
    s = run.rec.strategy
    seen = _by_ref(run.rec)
    assert seen[s.o1.ref][-1] == 'Completed' and seen[s.o2.ref] == [
        'Submitted', 'Accepted', 'Canceled'], seen
    assert position == pytest.approx(u * (0.999 if VENUES[venue][4] == 'spot' else 1))
    assert sorted(o.status.upper()[:6] for o in orders) == ['CANCEL', 'FILLED'], orders


@pytest.mark.parametrize('venue', ALL)
def test_oco_fills_racing_on_the_stream_are_both_applied_and_reported(venue):
    """Both orders fill within one bar, before our cancel can land: the second
    fill is applied (never lost) and the strategy is told of the race."""
    u = unit(venue)

    def place(s):
        s.o1 = s.buy(size=u, price=4180.0, exectype=btl.Order.Limit)
        s.o2 = s.buy(size=u, price=4200.0, exectype=btl.Order.Stop, oco=s.o1)
    run, orders, position = _run(venue, {6: place}, 2)
    s = run.rec.strategy
    seen = _by_ref(run.rec)
    assert seen[s.o1.ref][-1] == 'Completed' and seen[s.o2.ref][-1] == 'Completed', seen
    assert [m for m in run.rec.store_msgs if m[0] == 'oco race'], run.rec.store_msgs
    # nothing lost: our position is both fills, as the exchange's is
    assert s.position.size == pytest.approx(position) and abs(position) > 1.5 * u
    assert [o.status.upper() for o in orders] == ['FILLED', 'FILLED']


@pytest.mark.parametrize('venue', ALL)
def test_bracket_parent_fills_in_parts_children_follow_stop_fills_target_cancelled(venue):
    u = unit(venue)
    size = 3 * u

    def place(s):
        s.bracket = s.buy_bracket(size=size, exectype=btl.Order.Market,
                                  stopprice=4160.0, limitprice=4450.0)
    market = VENUES[venue][4]
    run, orders, position = _run(venue, {6: place}, 9, **THIN[market])
    s = run.rec.strategy
    parent, stop, target = s.bracket
    seen = _by_ref(run.rec)
    # upstream's order of notifications: the three Submitted, then Accepted
    assert run.rec.refs[:6] == [(parent.ref, 'Submitted'), (stop.ref, 'Submitted'),
                                (target.ref, 'Submitted'), (parent.ref, 'Accepted'),
                                (stop.ref, 'Accepted'), (target.ref, 'Accepted')], run.rec.refs
    assert seen[parent.ref].count('Partial') >= 1 and seen[parent.ref][-1] == 'Completed'
    assert seen[stop.ref][-1] == 'Completed' and seen[target.ref][-1] == 'Canceled', seen
    # sized to what the parent filled (on spot: net of the fee taken in BTC)
    assert abs(stop.executed.size) == pytest.approx(abs(parent.executed.size), rel=1e-9)
    assert position == pytest.approx(0.0, abs=u * 0.01)
    sells = [o for o in orders if o.side.upper() == 'SELL']
    if market != 'spot':
        assert all(o.reduce_only for o in sells), sells
    # the exits grew with each part (bracketsize.py); where no amend keeps an
    # order (Binance's stops, Binance spot) a grown exit replaced its order:
    # the replaced ones are cancelled, the stop filled, the target cancelled
    statuses = [o.status.upper()[:6] for o in sells]
    assert statuses.count('FILLED') == 1 and set(statuses) == {'CANCEL', 'FILLED'}, sells


@pytest.mark.parametrize('venue', ['binance-spot', 'bybit-linear'])
def test_bracket_parent_cancelled_cancels_held_children(venue):
    u = unit(venue)

    def place(s):
        s.bracket = s.buy_bracket(size=u, price=4000.0, stopprice=3900.0, limitprice=4300.0)
    run, orders, _ = _run(venue, {6: place, 7: lambda s: s.cancel(s.bracket[0])}, 2)
    seen = _by_ref(run.rec)
    assert [seen[o.ref] for o in run.rec.strategy.bracket] == [
        ['Submitted', 'Accepted', 'Canceled']] * 3, seen
    assert len(orders) == 1     # the children never went out


def _explicit_chain(s, size):
    # the chain buy_bracket builds, written out: held until transmit=True
    p = s.buy(size=size, transmit=False)
    return [p, s.sell(size=size, price=4300.0, exectype=btl.Order.Limit, parent=p,
                      transmit=True)]


FORMS = {
    'target-only': lambda s, size: s.buy_bracket(size=size, exectype=btl.Order.Market,
                                                 stopexec=None, limitprice=4300.0),
    'explicit-chain': _explicit_chain,
}


@pytest.mark.parametrize('form', sorted(FORMS))
@pytest.mark.parametrize('venue', ALL)
def test_bracket_forms_child_sent_after_the_parent_and_fills(venue, form):
    def place(s):
        s.bracket = [o for o in FORMS[form](s, unit(venue)) if o is not None]
    run, orders, position = _run(venue, {6: place}, 3)
    parent, target = run.rec.strategy.bracket
    seen = _by_ref(run.rec)
    assert seen[parent.ref] == ['Submitted', 'Accepted', 'Completed'], seen
    assert seen[target.ref] == ['Submitted', 'Accepted', 'Completed'], seen
    assert position == pytest.approx(0.0, abs=unit(venue) * 0.01)
    assert [o.side.upper() for o in orders] == ['BUY', 'SELL']
    if VENUES[venue][4] != 'spot':
        assert orders[1].reduce_only


@pytest.mark.parametrize('venue', ALL)
def test_bracket_stop_only_child_rests_on_the_exchange(venue):
    """A lone stop child locks nothing another child needs: native on every venue."""
    def place(s):
        s.bracket = s.buy_bracket(size=unit(venue), exectype=btl.Order.Market,
                                  stopprice=4000.0, limitexec=None)
    run, orders, _ = _run(venue, {6: place}, 2)
    parent, stop, target = run.rec.strategy.bracket
    assert target is None and stop.status == btl.Order.Accepted
    (resting,) = [o for o in orders if o.side.upper() == 'SELL']
    assert resting.stop_price and resting.is_open
    assert resting.reduce_only == (VENUES[venue][4] != 'spot')


@pytest.mark.parametrize('venue', ALL)
def test_bracket_parent_rejected_rejects_its_children(venue):
    def place(s):
        s.bracket = s.buy_bracket(size=unit(venue) * 10 ** 6, price=4100.0,
                                  stopprice=4000.0, limitprice=4300.0)
    run, orders, _ = _run(venue, {6: place}, 1)
    refs = [o.ref for o in run.rec.strategy.bracket]
    assert run.rec.refs == [(r, 'Submitted') for r in refs] + [(r, 'Rejected') for r in refs]
    assert all(o.status.upper() != 'NEW' for o in orders)


@pytest.mark.parametrize('venue', DERIVATIVES)
def test_sell_bracket_short_stop_above_fills_target_cancelled(venue):
    def place(s):
        s.bracket = s.sell_bracket(size=unit(venue), exectype=btl.Order.Market,
                                   stopprice=4300.0, limitprice=4000.0)
    run, orders, position = _run(venue, {6: place}, 3)
    parent, stop, target = run.rec.strategy.bracket
    seen = _by_ref(run.rec)
    assert [seen[o.ref][-1] for o in (parent, stop, target)] == [
        'Completed', 'Completed', 'Canceled'], seen
    assert position == pytest.approx(0.0)
    buys = [o for o in orders if o.side.upper() == 'BUY']
    assert all(o.reduce_only for o in buys) and len(buys) == 2


def test_held_and_local_orders_are_cancelled_and_reported_at_exit(caplog):
    """A run that ends with a bracket's children held and a trailing stop
    watched: they cannot act without the process, so they are cancelled and
    logged (and put on the store's notifications), never left dangling silently."""
    venue = 'bybit-linear'

    def place(s):
        s.bracket = s.buy_bracket(size=unit(venue), price=4000.0, stopprice=3900.0,
                                  limitprice=4300.0)
        s.trail = s.sell(size=unit(venue), exectype=btl.Order.StopTrail, trailamount=50.0)
    run, orders, _ = _run(venue, {6: place}, 1)
    s = run.rec.strategy
    assert [o.status for o in s.bracket[1:]] + [s.trail.status] == [btl.Order.Canceled] * 3
    (said,) = [r.getMessage() for r in caplog.records if 'stop being watched' in r.getMessage()]
    assert '3 emulated order(s)' in said and '(StopTrail)' in said
    assert s.bracket[0].status == btl.Order.Accepted      # left on the exchange (policy)


@pytest.mark.parametrize('venue', ALL)
def test_bracket_parent_cancelled_after_a_partial_fill_children_protect_the_filled_part(venue):
    """A marketable limit on a thin book fills two levels and rests; cancelled
    then, the children go out for what filled (not the size asked)."""
    u = unit(venue)

    def place(s):
        tick = s.broker.market_rules(s.data).price_tick
        s.bracket = s.buy_bracket(size=3 * u, price=s.data.close[0] + 2 * tick,
                                  stopprice=3900.0, limitprice=4450.0)
        s.cancel(s.bracket[0])
    market = VENUES[venue][4]
    run, orders, position = _run(venue, {6: place}, 1, **THIN[market])
    s = run.rec.strategy
    parent, stop, target = s.bracket
    assert 0 < abs(parent.executed.size) < 3 * u and parent.status == btl.Order.Canceled
    step = s.broker.market_rules(s.data).amount_step
    filled = abs(parent.executed.size)      # spot: net of the fee, then in the step
    for child in (stop, target):
        assert filled - step < abs(child.created.size) <= filled
    assert target.status == btl.Order.Accepted
    # spot's local stop ends with the run (cancelled at exit), derivatives' rests
    assert stop.status == (btl.Order.Canceled if market == 'spot' else btl.Order.Accepted)
    sells = [o for o in orders if o.side.upper() == 'SELL']
    assert len(sells) == (1 if market == 'spot' else 2)     # spot: the stop is local
    assert all(float(o.qty) == pytest.approx(abs(target.created.size)) for o in sells)


@pytest.mark.parametrize('venue', ['binance-usdm', 'bybit-inverse'])
def test_a_rejected_bracket_child_leaves_its_sibling_protecting(venue):
    """The gate refuses the target (too far from the price): the stop still
    goes out and rests; a refused exit never cancels the other exit."""
    def place(s):
        s.bracket = s.buy_bracket(size=unit(venue), exectype=btl.Order.Market,
                                  stopprice=4000.0, limitprice=5000.0)
    with venue_sim(venue) as sim:
        run = live_run(sim, venue, script={6: place}, max_bars=2, strategy=RefRecording,
                       broker_kwargs={'max_price_deviation': 0.1}).start()
        run.step(2)
        run.join()
        orders = sim_orders(sim, venue)
    parent, stop, target = run.rec.strategy.bracket
    assert parent.status == btl.Order.Completed and stop.status == btl.Order.Accepted
    assert target.status == btl.Order.Rejected and 'deviat' in target.info['reject_reason']
    (resting,) = [o for o in orders if o.side.upper() == 'SELL']
    assert resting.stop_price and resting.is_open and resting.reduce_only


def test_the_upstream_internals_the_emulation_leans_on():
    """backtrader 1.9.78.123 unmodified: buy()/sell() record the OCO link
    through ``_ocoize(order, oco)`` before ``submit``; a trailing order keeps
    its stop in ``created.price`` and moves it with ``trailadjust``; the
    validity check is ``expire()``; a bracket child starts inactive."""
    import inspect
    from backtrader.brokers import BackBroker
    for place in (BackBroker.buy, BackBroker.sell):
        src = inspect.getsource(place)
        assert 'self._ocoize(order, oco)' in src
        assert src.index('self._ocoize(') < src.index('self.submit(')
    assert list(inspect.signature(BackBroker._ocoize).parameters) == ['self', 'order', 'oco']
    assert 'created.price' in inspect.getsource(btl.Order.trailadjust)
    assert 'self.valid' in inspect.getsource(btl.Order.expire)
    assert "kargs['parent'] = o" in inspect.getsource(btl.Strategy.buy_bracket)


@pytest.mark.parametrize('venue', ['binance-spot', 'bybit-spot'])
def test_spot_sell_bracket_children_buy_back_without_reduce_only(venue):
    """Sell held coin, protect with a buy stop above and a buy limit below:
    spot has no reduce-only, the children are plain buys of the amount sold."""
    u = unit(venue)

    def place(s):
        s.buy(size=2 * u)
        s.bracket = s.sell_bracket(size=u, exectype=btl.Order.Market, stopprice=4300.0,
                                   limitprice=4000.0)
    run, orders, _ = _run(venue, {6: place}, 3)
    parent, stop, target = run.rec.strategy.bracket
    seen = _by_ref(run.rec)
    assert [seen[o.ref][-1] for o in (parent, stop, target)] == [
        'Completed', 'Completed', 'Canceled'], seen
    # sized to what was sold (a buy's fill is then net of the fee taken in BTC)
    assert abs(stop.created.size) == pytest.approx(abs(parent.executed.size))
    assert 'reduceOnly' not in stop.info and 'reduceOnly' not in target.info


@pytest.mark.parametrize('venue', [v for v in ALL if VENUES[v][4] == 'spot'])
def test_spot_local_stop_child_skips_the_bar_its_parent_filled_in_as_upstream(venue):
    """Upstream activates a bracket's children on the bar after the one its
    parent executed in: a market parent placed at bar 6 fills at bar 7, so
    bar 7's low (4174.97) never reaches the stop 4180, and bars 8-9 stay
    above it. Live the parent's fill lands between bar 6 and bar 7 (or in bar
    6's own round when the create answer carries it): the local stop child
    must still start at bar 8, whatever the thread timing."""
    import backtrader as bt
    from helpers import load_rows
    from livekit import Recorder
    from test_risk_kit import feed

    def place(s):
        s.bracket = s.buy_bracket(size=unit(venue), exectype=bt.Order.Market,
                                  stopprice=4180.0, limitprice=4450.0)
    rec = Recorder()
    cerebro = bt.Cerebro()
    cerebro.adddata(feed(load_rows()[595:595 + 5 + 4]))      # script bars 1..9
    cerebro.broker.setcash(1e9)
    cerebro.addstrategy(RefRecording, rec=rec, script={6: place})
    cerebro.run()
    backtest = [_by_ref(rec)[o.ref] for o in rec.strategy.bracket]
    run, orders, _ = _run(venue, {6: place}, 4)
    live = [_by_ref(run.rec)[o.ref] for o in run.rec.strategy.bracket]
    assert backtest == [['Submitted', 'Accepted', 'Completed'], ['Submitted', 'Accepted'],
                        ['Submitted', 'Accepted']], backtest
    assert live == backtest
    assert not [o for o in orders if o.side.upper() == 'SELL' and o.status.upper() == 'FILLED']
