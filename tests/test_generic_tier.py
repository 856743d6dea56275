"""The generic tier (any ccxt exchange) end to end against both simulators.

Binance and Bybit are forced onto it with ``'ccxt:<id>'``: orders go through
ccxt's REST client, bars and user data through ccxt.pro's own WebSocket
clients speaking the simulators' protocols. Same script, same invariants as
the fault matrix (faultkit.check), on spot and a linear perpetual of each.
"""
import threading

import pytest

import backtrader_live as btl
from backtrader_live.generic import profile
from faultkit import saw
from generickit import (GENERIC_VENUES, VENUES, LateClosingUpdates, check_venue, generic_run,
                        generic_scenario, venue_sim)
from helpers import eventually


@pytest.fixture(params=GENERIC_VENUES)
def gsim(request):
    with venue_sim(request.param, seed=6) as sim:
        yield request.param, sim


def _no_loop_thread():
    return not [t.name for t in threading.enumerate() if t.name.endswith('-ccxtpro')]


def test_trades_end_to_end(gsim):
    venue, sim = gsim
    run = generic_scenario(sim, venue)
    check_venue(run, sim, venue)
    assert run.rec.statuses().count('Completed') >= 2
    assert run.rec.data_status[:2] == ['DELAYED', 'LIVE']
    store_msgs = [m[0] for m in run.rec.store_msgs]
    assert not [m for m in store_msgs if str(m).startswith('generic tier')], store_msgs
    assert _no_loop_thread()


def test_market_stream_dropped_is_backfilled(gsim):
    venue, sim = gsim
    run = generic_scenario(sim, venue, {
        2: lambda s, r: s.faults.drop_ws('public', seconds=0.3)})
    check_venue(run, sim, venue)
    assert any(a[0].startswith('ws drop') for a in sim.faults.applied), sim.faults.applied
    assert saw(run, 'LIVE', 'CONNBROKEN', 'DELAYED', 'LIVE')


def test_user_stream_dropped_during_a_fill(gsim):
    venue, sim = gsim
    market = VENUES[venue][4]

    def back(s, r):
        s.wait_user_subscribed(timeout=10, **({} if market == 'spot' else {'market': market}))
        eventually(lambda: r.rec.statuses().count('Completed') >= 2, 10)
    run = generic_scenario(sim, venue, {
        1: lambda s, r: s.faults.drop_ws('private', seconds=0.3), 2: back})
    check_venue(run, sim, venue)
    assert any(a[0].startswith('ws drop') for a in sim.faults.applied), sim.faults.applied
    assert ('user stream live',) in [m[:1] for m in run.rec.store_msgs]


def test_lost_create_answer_resolved_by_client_id(gsim):
    venue, sim = gsim
    rule = sim.faults.rest('create_order', 'accept_then_reset')
    run = generic_scenario(sim, venue)
    check_venue(run, sim, venue)      # no duplicate: the create was never resent
    assert rule.hits == 1


def test_create_accepted_then_times_out(gsim):
    venue, sim = gsim
    rule = sim.faults.rest('create_order', 'accept_then_timeout')
    run = generic_scenario(sim, venue)
    check_venue(run, sim, venue)
    assert rule.hits == 1


def test_create_lost_before_the_exchange(gsim):
    venue, sim = gsim
    rule = sim.faults.rest('create_order', 'reset')
    run = generic_scenario(sim, venue)
    check_venue(run, sim, venue)
    reasons = [o[4] for o in run.rec.orders if o[0] == 'Rejected']
    assert rule.hits == 1 and len(reasons) == 1 and 'nothing was placed' in reasons[0]


def test_duplicated_and_reordered_stream_messages(gsim):
    venue, sim = gsim

    def two_bars_at_once(sim, run):
        sim.advance(7200)       # two bars close in one batch: reordering can swap them
    run = generic_scenario(sim, venue, {0: lambda s, r: s.faults.scramble_ws('all', 0.5, 0.5),
                                        3: two_bars_at_once}, steps=4)
    check_venue(run, sim, venue)
    assert any(a[0] == 'ws scramble' for a in sim.faults.applied)


def test_a_candle_final_update_after_the_next_candle_is_the_bar(gsim):
    """The reorder above, at every bar: candle N+1's first update, then N's
    final one 0.1 s later. Each bar handed out has its candle's final values
    (before the fix, N went out with its forming close the moment N+1 came)."""
    venue, sim = gsim
    late = {}
    run = generic_scenario(sim, venue, {0: lambda s, r: late.setdefault(
        'fault', LateClosingUpdates(s))}, steps=4)
    check_venue(run, sim, venue)
    assert late['fault'].swapped >= 3


def test_connections_hit_their_lifetime(gsim):
    """The 24-hour forced disconnect, at 0.4 s: every socket keeps cycling."""
    venue, sim = gsim
    market = VENUES[venue][4]

    def cycled(sim, run):
        eventually(lambda: sum(1 for a in sim.faults.applied
                               if a[0] == 'ws lifetime reached') >= 4, 10)

    def user_back(sim, run):
        sim.wait_user_subscribed(timeout=10, **({} if market == 'spot' else {'market': market}))
    run = generic_scenario(sim, venue, {
        0: lambda s, r: s.faults.connection_lifetime(0.4), 2: cycled,
        4: lambda s, r: (cycled(s, r), user_back(s, r)),
        5: lambda s, r: s.faults.connection_lifetime(None)})
    check_venue(run, sim, venue)


def test_silent_market_stream_is_reconnected(gsim):
    """A socket that stays open but says nothing (ccxt issue 20946)."""
    venue, sim = gsim
    run = generic_scenario(sim, venue, {
        2: lambda s, r: s.faults.stall_ws('public', seconds=None)},
        store={'stream_timeout': 1.0})
    check_venue(run, sim, venue)
    assert any(a[0] == 'ws stall' for a in sim.faults.applied), sim.faults.applied
    assert saw(run, 'LIVE', 'CONNBROKEN', 'LIVE')


def test_silent_user_stream_is_reconnected(gsim):
    """The private socket stays open but silent (pongs held too): ccxt.pro's
    keep-alive, set from stream_heartbeat/stream_timeout, gives it up."""
    venue, sim = gsim
    market = VENUES[venue][4]

    def back(s, r):
        eventually(lambda: [m for m in r.rec.store_msgs if m[0] == 'user stream reconnecting'],
                   10)
        s.wait_user_subscribed(timeout=10, **({} if market == 'spot' else {'market': market}))
        eventually(lambda: r.rec.statuses().count('Completed') >= 2, 10)
    run = generic_scenario(sim, venue, {
        1: lambda s, r: s.faults.stall_ws('private', seconds=None), 2: back})
    check_venue(run, sim, venue)
    assert any(a[0] == 'ws stall' for a in sim.faults.applied)


def test_paper_trading(gsim):
    venue, sim = gsim
    unit = VENUES[venue][5]
    run = generic_run(sim, venue, paper_trading=True, max_bars=3,
                      script={6: lambda s: s.buy(size=unit), 7: lambda s: s.close()})
    run.start()
    run.step(3)
    run.join(30)
    assert run.rec.statuses().count('Completed') == 2
    assert sim.orders(market=VENUES[venue][4]) == []     # nothing reached the exchange
    assert len(run.rec.bars) == 8


def test_rest_polling_where_the_exchange_has_no_stream(monkeypatch, caplog):
    """An exchange without watchOHLCV/watchOrders/...: bars and orders over
    REST, and the start says so, once per missing capability (and does not
    wait for, nor promise, a user stream that cannot come)."""
    venue = 'binance-spot'
    has = profile.describe('binance')['has']
    for cap, _, _ in profile.STREAMS:
        monkeypatch.setitem(has, cap, False)
    with venue_sim(venue, seed=6) as sim:
        run = generic_scenario(sim, venue, store={'poll_interval': 0.1}, streams=False,
                               broker_kwargs={'rest_poll_interval': 0.1})
        check_venue(run, sim, venue)
    said = [m[0] for m in run.rec.store_msgs if str(m[0]).startswith('generic tier')]
    assert len(said) == 4 and all('over REST' in m for m in said), said
    assert 'does not carry the account yet' not in caplog.text


def test_no_leftover_threads_after_a_failed_start():
    with venue_sim('binance-spot') as sim:
        with pytest.raises(btl.ConfigError, match='unknown symbol'):
            btl.Cerebro().run_live('ccxt:binance', 'FOO/BAR', '1h', btl.Strategy,
                                   endpoint=sim.base_url)
    assert _no_loop_thread()


@pytest.mark.parametrize('venue', ['binance-coinm', 'bybit-inverse'])
def test_inverse_contracts_trade_too(venue):
    """Beyond spot and linear: COIN-M / Bybit inverse through the same path."""
    from faultkit import Tracked, check_bars, check_orders
    from venues import sim_position
    unit = VENUES[venue][5]
    with venue_sim(venue, seed=6) as sim:
        run = generic_run(sim, venue, strategy=Tracked, max_bars=4,
                          script={6: lambda s: s.buy(size=unit), 8: lambda s: s.close()})
        run.rec.order_log = []
        run.start()
        run.step(4)
        run.join(30)
        orders, fills = check_orders(run, sim, VENUES[venue][4])
        check_bars(run, sim)
        assert (orders, run.rec.statuses().count('Completed')) == (2, 2) and fills >= 2
        assert run.rec.strategy.position.size == sim_position(sim, venue) == 0


def test_server_clock_off_from_the_start(gsim):
    """Signed calls refused (outside the receive window) until synced: the
    REST client and ccxt.pro's private client both sync with the server."""
    venue, sim = gsim
    sim.faults.clock_offset(-30000)
    run = generic_scenario(sim, venue)
    check_venue(run, sim, venue)
    assert abs(run.rec.strategy.broker.store.time_offset - 30000) < 2000   # synced


def test_clock_jumps_then_the_user_stream_reconnects(gsim):
    """The server clock jumps 15 s, then the private socket drops: its
    re-login is refused until synced. Binance (a listenKey / ws-api
    subscription signed with ccxt's clock offset): synced, subscribed again on
    a fresh ccxt.pro client, LIVE. Bybit: ccxt.pro signs its auth with the
    local clock whatever the offset (``milliseconds() + 10000``), so the login
    stays refused; the stream is not LIVE, the broker polls REST, and the
    fill still arrives once, by reconcile."""
    venue, sim = gsim
    market = VENUES[venue][4]
    seen = {}

    def drift_then_drop(sim, run):
        sim.faults.clock_offset(15000)
        sim.faults.drop_ws('private')

    def back(s, r):
        store = r.rec.strategy.broker.store
        eventually(lambda: r.rec.statuses().count('Completed') >= 2, 15)
        if VENUES[venue][0] == 'binance':
            # (a REST call refused meanwhile resyncs and subscribes again: wait)
            s.wait_user_subscribed(timeout=10, **({} if market == 'spot' else {'market': market}))
            eventually(lambda: store.user_stream_live, 15)
        seen['live'] = store.user_stream_live
    run = generic_scenario(sim, venue, {1: drift_then_drop, 2: back})
    check_venue(run, sim, venue)
    assert abs(run.rec.strategy.broker.store.time_offset + 15000) < 2000
    assert seen['live'] is (VENUES[venue][0] == 'binance')
