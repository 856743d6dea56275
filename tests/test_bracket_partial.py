"""A bracket's children follow the parent's fills while the parent works
(issue 14; backtrader_live/orderlinks.py, bracketsize.py), on all six venues.

A resting limit buy at 4190 fills in parts: the simulator's resting orders
share ``liquidity`` x the bar's volume, so a small share makes the parent
fill over bars 7 and 8 (both trade below 4190; bar 9 does not). The
children go out at the first part and grow at the second.
"""
import pytest

import backtrader_live as btl
from helpers import eventually
from test_order_links import RefRecording, _by_ref
from venues import ALL, DERIVATIVES, VENUES, live_run, sim_orders, sim_position, unit, venue_sim

# a share of a bar's volume (the book's units: coins, or contracts) that
# fills about a third of the parent on bar 7 and the rest on bar 8
LIQUIDITY = {'binance-spot': 0.001, 'binance-usdm': 0.001, 'binance-coinm': 0.0035,
             'bybit-spot': 0.001, 'bybit-linear': 0.001, 'bybit-inverse': 0.003}


def _spot(venue):
    return VENUES[venue][4] == 'spot'


def _resting_sells(sim, venue):
    return [o for o in sim_orders(sim, venue) if o.side.upper() == 'SELL' and o.is_open]


def _expected(s, parent, kid):
    """What a child must cover: the parent's fills (on spot, the coin held)."""
    filled = abs(parent.executed.size)
    if not s.broker.market_rules(s.data).contract:
        filled = min(filled, abs(kid.executed.size) + abs(s.position.size))
    return float(s.broker.store.exchange.amount_to_precision(s.data.p.dataname, filled))


def _bracket(venue, limitprice=4450.0, stopprice=4000.0):
    u = unit(venue)

    def place(s):
        s.bracket = s.buy_bracket(size=3 * u, price=4190.0, stopprice=stopprice,
                                  limitprice=limitprice)
    return place


def _caught_up(run, sim, venue):
    """The broker has applied every fill the simulator made for the parent
    (a fill's stream message may land after the bar's kline) and the exits
    are what they must be for it."""
    def ok():
        try:
            parent = run.rec.strategy.bracket[0]
            (buy,) = [o for o in sim_orders(sim, venue) if o.side.upper() == 'BUY']
            # spot: the parent holds its fills net of the fee taken in the coin
            fee = 2e-3 if _spot(venue) else 1e-9
            return abs(parent.executed.size) == pytest.approx(float(buy.executed), rel=fee) and \
                run.rec.strategy.broker.settled() and _check_children(run, sim, venue)
        except AssertionError:
            return False
    try:
        eventually(ok, 10)
    except AssertionError:
        s = run.rec.strategy
        raise AssertionError('the broker did not catch up with the exchange: %s %s settled=%s '
                             'sim=%s' % ([(o.getstatusname(), o.executed.size, o.created.size)
                                          for o in s.bracket], run.rec.store_msgs,
                                         s.broker.settled(), sim_orders(sim, venue)))
    return _check_children(run, sim, venue)


def _check_children(run, sim, venue):
    s = run.rec.strategy
    parent, stop, target = s.bracket
    for kid in (stop, target):
        assert abs(kid.created.size) == pytest.approx(_expected(s, parent, kid)), (
            kid.ref, kid.created.size, parent.executed.size)
        assert abs(kid.size) == abs(kid.created.size)
    sells = _resting_sells(sim, venue)
    # never doubled: one exchange order per child (spot: the stop is local)
    assert len(sells) == (1 if _spot(venue) else 2), sells
    assert all(float(o.qty) - float(o.executed) == pytest.approx(abs(target.created.size))
               for o in sells), sells
    if not _spot(venue):
        assert all(o.reduce_only for o in sells), sells
    return parent, stop, target


@pytest.mark.parametrize('venue', ALL)
def test_children_go_out_at_the_first_partial_fill_and_grow_with_each_next(venue):
    with venue_sim(venue, liquidity=LIQUIDITY[venue]) as sim:
        run = live_run(sim, venue, script={6: _bracket(venue)}, max_bars=4,
                       strategy=RefRecording).start()
        run.step(1)         # bar 6: the parent rests; its children are held
        s = run.rec.strategy
        parent, stop, target = s.bracket
        assert parent.executed.size == 0 and not _resting_sells(sim, venue)
        run.step(1)         # bar 7: the first part fills; the exits go out for it
        _caught_up(run, sim, venue)
        assert parent.status == btl.Order.Partial, parent
        first = abs(parent.executed.size)
        assert 0 < first < 3 * unit(venue)
        run.step(1)         # bar 8: more fills; the exits grow to all of it
        assert abs(parent.executed.size) > first
        _caught_up(run, sim, venue)
        run.step(1)
        run.join()
        position = sim_position(sim, venue)
    seen = _by_ref(run.rec)
    # one backtrader order per child, the strategy's own, told once of each state
    assert seen[stop.ref][:2] == seen[target.ref][:2] == ['Submitted', 'Accepted'], seen
    assert 'Partial' in seen[parent.ref], seen
    assert s.position.size == pytest.approx(position)


@pytest.mark.parametrize('venue', ALL)
def test_parent_cancelled_after_a_partial_fill_leaves_the_children_for_what_filled(venue):
    script = {6: _bracket(venue), 7: lambda s: s.cancel(s.bracket[0])}
    with venue_sim(venue, liquidity=LIQUIDITY[venue]) as sim:
        run = live_run(sim, venue, script=script, max_bars=3, strategy=RefRecording).start()
        run.step(2)         # bar 7 fills a part, the strategy cancels the rest
        run.step(1)         # bar 8 would have filled more
        s = run.rec.strategy
        parent, stop, target = _caught_up(run, sim, venue)
        run.join()
    assert parent.status == btl.Order.Canceled
    assert 0 < abs(parent.executed.size) < 3 * unit(venue)
    assert target.status == btl.Order.Accepted
    # spot's local stop ends with the run (said at exit), derivatives' rests
    assert stop.status == (btl.Order.Canceled if _spot(venue) else btl.Order.Accepted)
    assert abs(stop.created.size) == abs(target.created.size) > 0


@pytest.mark.parametrize('venue', ALL)
def test_a_child_filling_while_it_is_grown_ends_the_bracket_whole(venue):
    """The target (4205) sits above bar 8's low (more parent fills) and below
    its high: in the simulator the target fills its first size before our
    growth reaches it. The rest goes out at once, the stop is cancelled, and
    the position ends flat: no exit lost, none doubled."""
    with venue_sim(venue, liquidity=LIQUIDITY[venue]) as sim:
        run = live_run(sim, venue, script={6: _bracket(venue, limitprice=4205.0)},
                       max_bars=4, strategy=RefRecording).start()
        run.step(4)
        run.join()
        position = sim_position(sim, venue)
        orders = sim_orders(sim, venue)
    s = run.rec.strategy
    parent, stop, target = s.bracket
    seen = _by_ref(run.rec)
    assert target.status == btl.Order.Completed and stop.status == btl.Order.Canceled, seen
    assert seen[target.ref][-1] == 'Completed' and seen[target.ref].count('Completed') == 1
    filled = abs(parent.executed.size)
    assert filled > 0
    assert abs(target.executed.size) == pytest.approx(_expected(s, parent, target) or filled), (
        seen, target.info, parent.executed.size, orders)
    assert not [o for o in orders if o.is_open], orders
    step = float(s.broker.market_rules(s.data).amount_step)
    # spot: the fee taken in the coin can leave dust below the step, which
    # the broker counts as flat (fills.py settle_dust)
    assert s.position.size == pytest.approx(position, abs=step if _spot(venue) else 1e-12)
    assert abs(position) < (step + 0.0011 * filled if _spot(venue) else 1e-9), position


@pytest.mark.parametrize('venue', ['bybit-linear', 'binance-usdm', 'bybit-spot'])
def test_an_amend_whose_answer_is_lost_is_settled_by_client_id_not_doubled(venue):
    """Bybit amends both exits in place, Binance USD-M its target (a LIMIT);
    the growth's answer is lost after the exchange applied it."""
    with venue_sim(venue, liquidity=LIQUIDITY[venue]) as sim:
        run = live_run(sim, venue, script={6: _bracket(venue)}, max_bars=4,
                       strategy=RefRecording).start()
        run.step(2)
        lost = sim.faults.rest('amend_order', 'accept_then_reset')
        again = sim.faults.rest('amend_order', 'delay', seconds=0.0, times=None)
        run.step(1)
        eventually(lambda: lost.hits == 1, 10, message='the fault did not fire')
        _caught_up(run, sim, venue)
        run.step(1)
        run.join()
    # the lost one is the first exit's (Bybit linear: the stop, whose sibling
    # is amended next; elsewhere the target, the one exit amended)
    assert again.hits == (1 if venue == 'bybit-linear' else 0), \
        'the amend was sent again though it had landed'


@pytest.mark.parametrize('venue', ['binance-usdm', 'binance-coinm', 'binance-spot'])
def test_a_replace_whose_cancel_answer_is_lost_sends_the_rest_once(venue):
    """Binance futures' stop (an algo order, no modify) and Binance spot's
    target are regrown by cancel, then create: the cancel's answer is lost
    after the exchange cancelled; the client id settles it, one new order."""
    with venue_sim(venue, liquidity=LIQUIDITY[venue]) as sim:
        run = live_run(sim, venue, script={6: _bracket(venue)}, max_bars=4,
                       strategy=RefRecording).start()
        run.step(2)
        lost = sim.faults.rest('cancel_order', 'accept_then_reset')
        run.step(1)
        eventually(lambda: lost.hits == 1, 10, message='the fault did not fire')
        _caught_up(run, sim, venue)
        run.step(1)
        run.join()
        creates = [o for o in sim_orders(sim, venue) if o.side.upper() == 'SELL']
    # per child: the first order and one replacement (spot: the target only)
    assert len(creates) == (2 if _spot(venue) else 3), creates


@pytest.mark.parametrize('venue', DERIVATIVES)
def test_the_exits_never_exceed_the_position(venue):
    """Reduce-only exits sized to the parent's fills: at every bar each is at
    most the exchange's position."""
    with venue_sim(venue, liquidity=LIQUIDITY[venue]) as sim:
        run = live_run(sim, venue, script={6: _bracket(venue)}, max_bars=4,
                       strategy=RefRecording).start()
        for _ in range(4):
            run.step(1)
            position = abs(sim_position(sim, venue))
            for o in _resting_sells(sim, venue):
                assert float(o.qty) - float(o.executed) <= position + 1e-9, (o, position)
        run.join()


def test_fills_that_come_together_send_the_exits_once():
    """A market parent walking a thin book fills in many parts in one answer:
    its exits go out once, for the whole (not once per part, then replaced:
    Binance spot's target is regrown by cancel, then create)."""
    venue = 'binance-spot'

    def place(s):
        s.bracket = s.buy_bracket(size=3 * unit(venue), exectype=btl.Order.Market,
                                  stopprice=4000.0, limitprice=4450.0)
    with venue_sim(venue, depth_qty=0.004) as sim:
        run = live_run(sim, venue, script={6: place}, max_bars=2,
                       strategy=RefRecording).start()
        run.step(1)
        s = run.rec.strategy
        parent, stop, target = s.bracket
        assert parent.status == btl.Order.Completed and len(parent.info['trade_ids']) > 2
        _caught_up(run, sim, venue)
        sells = [o for o in sim_orders(sim, venue) if o.side.upper() == 'SELL']
        run.step(1)
        run.join()
    assert len(sells) == 1, sells


@pytest.mark.parametrize('venue', ['bybit-spot', 'binance-usdm'])
def test_an_amend_that_never_arrived_is_sent_again_once_it_cannot_land(venue):
    """The connection dropped before the exchange saw the amend: the look-up
    by client id finds the old amount; once the amend's receive window has
    passed it can no longer land, and only then is it sent once more."""
    fast = {'recv_window': 600, 'timeout': 1.0}
    with venue_sim(venue, liquidity=LIQUIDITY[venue]) as sim:
        run = live_run(sim, venue, script={6: _bracket(venue)}, max_bars=4,
                       strategy=RefRecording, store_kwargs=fast).start()
        run.step(2)
        lost = sim.faults.rest('amend_order', 'reset')
        again = sim.faults.rest('amend_order', 'delay', seconds=0.0, times=None)
        run.step(1)
        eventually(lambda: lost.hits == 1, 10, message='the fault did not fire')
        _caught_up(run, sim, venue)     # the target's exchange order has its new amount
        run.step(1)
        run.join()
    assert again.hits == 1, 'the amend was not sent again exactly once'


@pytest.mark.parametrize('venue', ['bybit-linear', 'binance-spot'])
def test_a_single_exit_that_fills_while_the_parent_works_cancels_the_parent_rest(venue):
    """A bracket with a target only (4205): it fills on bar 8 while the parent
    still works; the parent's rest is cancelled (more entry would have no
    exit) and the exit covers all the parent filled: flat at the end."""
    u = unit(venue)

    def place(s):
        s.bracket = s.buy_bracket(size=6 * u, price=4190.0, limitprice=4205.0,
                                  stopexec=None)
    with venue_sim(venue, liquidity=LIQUIDITY[venue]) as sim:
        run = live_run(sim, venue, script={6: place}, max_bars=4,
                       strategy=RefRecording).start()
        run.step(4)
        run.join()
        position = sim_position(sim, venue)
        orders = sim_orders(sim, venue)
    s = run.rec.strategy
    parent, target = [o for o in s.bracket if o is not None]
    seen = _by_ref(run.rec)
    assert parent.status == btl.Order.Canceled and 0 < abs(parent.executed.size) < 6 * u, seen
    assert target.status == btl.Order.Completed and seen[target.ref][-1] == 'Completed', seen
    assert not [o for o in orders if o.is_open], orders
    step = float(s.broker.market_rules(s.data).amount_step)
    assert abs(position) <= (step + 0.0011 * abs(parent.executed.size) if _spot(venue)
                             else 1e-12), position
