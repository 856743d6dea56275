"""Order types emulated live on all six venues (issue 14, backtrader_live/
emulated.py): StopTrail following the bar closes then triggering, Close
orders at the session's close, ``valid`` expiry, and fractional
``order_target_*`` sizes in the market's step.

Prices (the simulator's real candles; script bar 6 closes at 4191.53):
bar 7 closes 4198.99 (low 4174.97), bar 8 closes 4260.41 (low 4188.81),
bar 9 closes 4256.02 (low 4250.0), bar 10 low 4221.64.
"""
import datetime

import pytest

import backtrader_live as btl
from backtrader_live.accounts import contract_value
from helpers import eventually
from test_order_links import RefRecording, _by_ref
from venues import ALL, VENUES, live_run, sim_orders, sim_position, unit, venue_sim


def _run(venue, script, steps, start=None, **kwargs):
    with venue_sim(venue, start=start) as sim:
        run = live_run(sim, venue, script=script, max_bars=steps, strategy=RefRecording,
                       **kwargs)
        run.start()
        run.step(steps)
        run.join()
        return run, sim_orders(sim, venue), sim_position(sim, venue)


def _exit_size(venue):
    # spot: the fee is taken from the coin bought
    return unit(venue) * 0.999 if VENUES[venue][4] == 'spot' else unit(venue)


@pytest.mark.parametrize('venue', ALL)
def test_trailing_stop_follows_the_closes_then_triggers(venue):
    trail_seen = []

    def place(s):
        s.buy(size=unit(venue))
        s.trail = s.sell(size=_exit_size(venue), exectype=btl.Order.StopTrail, trailamount=30.0)

    def watch(s):
        trail_seen.append(s.trail.created.price)
    script = {6: place, 7: watch, 8: watch, 9: watch, 10: watch}
    run, orders, position = _run(venue, script, 5)
    # upstream's rule: close - 30, only ever up: 4168.99, 4230.41, stays 4230.41
    assert trail_seen[:3] == pytest.approx([4168.99, 4230.41, 4230.41])
    seen = _by_ref(run.rec)
    assert seen[run.rec.strategy.trail.ref] == ['Submitted', 'Accepted', 'Completed'], seen
    # triggered locally at bar 10 (low 4221.64 <= 4230.41): sent as a market sell
    sells = [o for o in orders if o.side.upper() == 'SELL']
    assert len(sells) == 1 and not sells[0].is_limit and not sells[0].stop_price
    assert position == pytest.approx(0.0, abs=unit(venue) * 0.01)


def _session_end(sim, bar):
    """A data ``sessionend`` that makes script bar ``bar`` the session's last.
    The simulator dates its candles from the wall clock: a time relative to
    bar 6's open (the bar forming now) keeps the tests deterministic."""
    bar6 = sim.now_ms() - sim.now_ms() % 3600000
    return (datetime.datetime(1970, 1, 1)
            + datetime.timedelta(milliseconds=bar6 + (bar - 5) * 3600000 - 1)).time()


@pytest.mark.parametrize('venue', ALL)
def test_close_order_goes_at_the_session_close(venue):
    """Order.Close fills at the close of the session, as upstream's
    BackBroker does (not at the next bar's: on hourly bars that is hours
    early). The session ends with bar 8 here: nothing is sent when bar 7
    closes, a market order when bar 8 does."""
    def place(s):
        s.order = s.buy(size=unit(venue), exectype=btl.Order.Close)
    with venue_sim(venue) as sim:
        run = live_run(sim, venue, script={6: place}, max_bars=3, strategy=RefRecording,
                       data_kwargs={'sessionend': _session_end(sim, 8)})
        run.start()
        run.step(2)     # bars 6, 7: placed; it waits for the session's last bar
        sent_by_bar7 = sim_orders(sim, venue)
        run.step(1)
        run.join()
        orders = sim_orders(sim, venue)
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Completed']
    assert sent_by_bar7 == [] and len(orders) == 1 and not orders[0].is_limit
    assert run.rec.strategy.order.executed.size == pytest.approx(_exit_size(venue))


@pytest.mark.parametrize('venue', ALL)
def test_a_locally_triggered_order_is_awaited_like_the_market_order_it_became(venue):
    """A Close order (a local stop, a trailing stop) goes out as a market
    order when it triggers: until its fills are in, the broker is not settled.
    The end of a run waits on that (else it ends with the order open and its
    fill unreported: the flaky bybit-spot bracket test), and so does the test
    harness's step. The private stream is held back, so the fills are late."""
    def place(s):
        s.order = s.buy(size=unit(venue), exectype=btl.Order.Close)
    with venue_sim(venue) as sim:
        run = live_run(sim, venue, script={6: place}, max_bars=3, strategy=RefRecording,
                       data_kwargs={'sessionend': _session_end(sim, 7)})
        run.start()
        run.step(1)     # bar 6: placed, held until the session's last bar (7) closes
        assert sim.faults.stall_ws('private', seconds=None) == 1
        seen = len(run.rec.bars)
        sim.step()      # bar 7 closes: sent as a market order, filled at once
        eventually(lambda: len(run.rec.bars) > seen, 10)
        eventually(lambda: [o for o in sim_orders(sim, venue) if o.status.upper() == 'FILLED'],
                   10)
        order, broker = run.rec.strategy.order, run.rec.strategy.broker
        settled = broker.settled()
        # read in this order: alive now means alive when settled() was asked
        assert not (settled and order.alive()), 'settled while its fills were outstanding'
        sim.faults.restore_ws('private')
        eventually(run._settled, 10)
        run.step(1)
        run.join()
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Completed']
    assert order.executed.size == pytest.approx(_exit_size(venue))


@pytest.mark.parametrize('venue', ALL)
def test_limit_with_valid_expires(venue):
    def place(s):
        s.order = s.buy(size=unit(venue), price=4000.0, exectype=btl.Order.Limit,
                        valid=datetime.timedelta(hours=2))
    at_bar8 = []
    run, orders, _ = _run(venue, {6: place, 8: lambda s: at_bar8.append(s.order.status)}, 4)
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Expired']
    (order,) = orders
    assert order.status.upper().startswith('CANCEL')     # we cancelled it at its expiry
    # valid until bar 6 + 2 h: still open at bar 8, expired at bar 9 (upstream's rule)
    assert at_bar8 == [btl.Order.Accepted]


@pytest.mark.parametrize('venue', ALL)
def test_order_target_percent_places_a_fractional_size(venue):
    seen = {}

    def place(s):
        seen.update(value=s.broker.getvalue(), price=s.data.close[0],
                    leverage=s.broker.account_leverage(s.data))
        s.order = s.order_target_percent(target=0.05)
    run, orders, position = _run(venue, {6: place}, 1)
    s = run.rec.strategy
    (sent,) = orders
    rules = s.broker.market_rules(s.data)
    size = s.order.created.size
    assert size > 0 and float(sent.qty) == pytest.approx(size)
    steps = size / rules.amount_step
    assert steps == pytest.approx(round(steps))      # a whole number of steps
    if not rules.inverse:
        assert size != int(size)        # upstream's getsize would truncate to 0
    assert run.rec.statuses()[-1] == 'Completed'
    # The target is the position's notional, whatever the account's leverage
    # on the exchange (the simulators' derivatives accounts run at 20x/10x):
    # 5 % of the value, within one amount step, as in a backtest at 1x.
    notional = contract_value(rules, size, seen['price']) if rules.contract else size * seen['price']
    one_step = notional * rules.amount_step / size
    assert abs(notional - 0.05 * seen['value']) <= one_step
    if rules.contract:
        assert seen['leverage'] > 1       # the case this guards


@pytest.mark.parametrize('venue', ['binance-usdm', 'bybit-spot'])
def test_trailing_stop_with_valid_expires_locally(venue):
    def place(s):
        s.order = s.buy(size=unit(venue), exectype=btl.Order.StopTrail, trailpercent=0.05,
                        valid=datetime.timedelta(hours=1))
    run, orders, _ = _run(venue, {6: place}, 3)
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Expired']
    assert orders == []     # never on the exchange


@pytest.mark.parametrize('venue', ['binance-spot', 'bybit-inverse'])
def test_day_order_expires_at_the_first_bar_of_the_next_day(venue):
    def place(s):
        s.order = s.buy(size=unit(venue), price=4000.0, exectype=btl.Order.Limit,
                        valid=btl.Order.DAY)
    seen = []

    def watch(s):
        seen.append((s.data.datetime.datetime(0), s.order.status,
                     bool(s.order.info.get('expiring'))))
    script = {6: place}
    # The market clock starts at the last 00:20 UTC (behind the wall clock, as
    # the exchange's never is ahead), so bar 6 is a day's first and midnight
    # falls at bar 30, the latest it can: 26 bars show one bar after it.
    last = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=20, second=0,
                                                                 microsecond=0)
    if last > datetime.datetime.now(datetime.timezone.utc):
        last -= datetime.timedelta(days=1)
    script.update({n: watch for n in range(7, 32)})
    run, orders, _ = _run(venue, script, 26, start=last)
    created = seen[0][0].date()
    next_day = [i for i, (dt, _, _) in enumerate(seen) if dt.date() != created]
    assert next_day == [len(seen) - 2, len(seen) - 1], seen
    for dt, status, expiring in seen:
        if dt.date() == created:
            assert status == btl.Order.Accepted and not expiring, (dt, seen)
        else:   # its cancel went out at this bar (Bybit answers a cancel on the stream)
            assert expiring or status == btl.Order.Expired, (dt, seen)
    assert seen[next_day[0] + 1][1] == btl.Order.Expired
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Expired']


@pytest.mark.parametrize('venue', ['binance-coinm', 'bybit-linear', 'bybit-spot'])
def test_trailing_stop_limit_by_percent(venue):
    levels = []

    def place(s):
        s.buy(size=unit(venue))
        # stop 0.5 % under the best close; the limit 20 under the stop, trailing with it
        s.trail = s.sell(size=_exit_size(venue), exectype=btl.Order.StopTrailLimit,
                         trailpercent=0.005, price=4191.53, plimit=4171.53)

    def watch(s):
        levels.append((s.trail.created.price, s.trail.created.pricelimit))
    run, orders, _ = _run(venue, {6: place, 7: watch, 8: watch}, 5)
    stop7, limit7 = levels[0]
    assert stop7 == pytest.approx(4198.99 * 0.995) and limit7 == pytest.approx(stop7 - 20)
    assert levels[1][0] == pytest.approx(4260.41 * 0.995)
    assert run.rec.strategy.trail.status == btl.Order.Completed
    (sell,) = [o for o in orders if o.side.upper() == 'SELL']
    assert sell.is_limit and float(sell.price) == pytest.approx(levels[1][1], abs=0.1)


@pytest.mark.parametrize('venue', ['binance-usdm', 'bybit-spot'])
def test_expired_bracket_parent_cancels_its_children(venue):
    def place(s):
        s.bracket = s.buy_bracket(size=unit(venue), price=4000.0, stopprice=3900.0,
                                  limitprice=4300.0, valid=datetime.timedelta(hours=1))
    run, orders, _ = _run(venue, {6: place}, 3)
    seen = _by_ref(run.rec)
    assert [seen[o.ref] for o in run.rec.strategy.bracket] == [
        ['Submitted', 'Accepted', 'Expired'], ['Submitted', 'Accepted', 'Canceled'],
        ['Submitted', 'Accepted', 'Canceled']], seen
    assert len(orders) == 1
