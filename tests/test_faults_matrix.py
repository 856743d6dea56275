"""The fault matrix: one scripted strategy, one injected fault per test, on
Binance and Bybit alike; every test proves the invariants of faultkit.check
(orders == the strategy's, each fill once at the exchange's size and price,
bars once and in order, the run survives). ``tests/fault_matrix.py`` turns
the recorded rows into the table of docs/faults.md."""
import pytest

from faultkit import (EXCHANGES, LIVE_BARS, SCRIPT, check, make_sim, matrix_rows,  # noqa: F401
                      record, saw, scenario)
from helpers import eventually


@pytest.fixture(params=EXCHANGES)
def xsim(request):
    sim = make_sim(request.param)
    yield request.param, sim
    sim.stop()


def completed(n):
    """A hook: wait (bounded) until the strategy has seen ``n`` orders complete."""
    return lambda sim, run: eventually(lambda: run_completed(run) >= n, 10)


def run_completed(run):
    return run.rec.statuses().count('Completed')


def user_back(market='spot'):
    def wait(sim, run):
        sim.wait_user_subscribed(timeout=10, **({} if market == 'spot' else {'market': market}))
    return wait


def chain(*hooks):
    def run(sim, live_run):
        for hook in hooks:
            hook(sim, live_run)
    return run


# -- streams ----------------------------------------------------------------------------
def test_public_stream_dropped(xsim):
    exchange, sim = xsim
    run = scenario(sim, exchange, {2: lambda s, r: s.faults.drop_ws('public', seconds=0.3)})
    outcome = check(run, sim, exchange)
    assert saw(run, 'LIVE', 'CONNBROKEN', 'LIVE')
    record('market stream dropped, refused 0.3 s', exchange,
           outcome + '; CONNBROKEN then LIVE, the gap backfilled over REST')


def test_private_stream_dropped_during_a_fill(xsim):
    exchange, sim = xsim
    run = scenario(sim, exchange, {
        1: lambda s, r: s.faults.drop_ws('private', seconds=0.3),   # the limit fills now
        2: chain(user_back(), completed(2))})
    outcome = check(run, sim, exchange)
    record('user stream dropped while an order fills', exchange,
           outcome + '; the fill recovered by reconcile on reconnect')


def test_public_stream_stalls_silently(xsim):
    exchange, sim = xsim
    run = scenario(sim, exchange, {2: lambda s, r: s.faults.stall_ws('public', seconds=None)})
    outcome = check(run, sim, exchange)
    assert saw(run, 'LIVE', 'CONNBROKEN', 'LIVE')
    record('market stream stalls (open, silent)', exchange,
           outcome + '; stale after stream_timeout, reconnected, gap backfilled')


def test_private_stream_stalls_briefly(xsim):
    exchange, sim = xsim
    run = scenario(sim, exchange, {1: lambda s, r: s.faults.stall_ws('private', seconds=0.5),
                                   2: completed(2)})
    outcome = check(run, sim, exchange)
    record('user stream stalls 0.5 s (events late)', exchange,
           outcome + '; late events applied once')


def test_connections_hit_their_lifetime(xsim):
    """The 24-hour forced disconnect, at 0.4 s: every stream keeps cycling."""
    exchange, sim = xsim

    def cycled(sim, run):
        eventually(lambda: sum(1 for a in sim.faults.applied
                               if a[0] == 'ws lifetime reached') >= 4, 10)
    run = scenario(sim, exchange, {0: lambda s, r: s.faults.connection_lifetime(0.4),
                                   2: cycled, 4: chain(cycled, user_back()),
                                   5: lambda s, r: s.faults.connection_lifetime(None)})
    outcome = check(run, sim, exchange)
    record('forced disconnect (24 h lifetime, here 0.4 s)', exchange,
           outcome + '; reconnect, resubscribe, backfill, reconcile each time')


def test_duplicated_and_reordered_stream_messages(xsim):
    exchange, sim = xsim

    def two_bars_at_once(sim, run):
        sim.advance(7200)       # bars 9 and 10 close in one batch: reordering can swap them
    run = scenario(sim, exchange, {0: lambda s, r: s.faults.scramble_ws('all', 0.5, 0.5),
                                   3: two_bars_at_once}, steps=4)
    outcome = check(run, sim, exchange)
    assert any(a[0] == 'ws scramble' for a in sim.faults.applied)
    record('stream messages duplicated and reordered (p=0.5, seeded)', exchange,
           outcome + '; duplicates dropped by open time / trade id')


# -- orders out ---------------------------------------------------------------------------
def test_create_accepted_then_answer_lost(xsim):
    exchange, sim = xsim
    rule = sim.faults.rest('create_order', 'accept_then_reset')
    run = scenario(sim, exchange)
    outcome = check(run, sim, exchange)
    assert rule.hits == 1
    record('create accepted, answer lost (reset)', exchange,
           outcome + '; resolved by client id, never resent')


def test_create_accepted_then_times_out(xsim):
    exchange, sim = xsim
    sim.faults.rest('create_order', 'accept_then_timeout')
    run = scenario(sim, exchange)
    outcome = check(run, sim, exchange)
    record('create accepted, then the client times out', exchange,
           outcome + '; resolved by client id, never resent')


def test_create_lost_before_the_exchange(xsim):
    exchange, sim = xsim
    sim.faults.rest('create_order', 'reset')
    run = scenario(sim, exchange)
    outcome = check(run, sim, exchange)
    reason = [o[4] for o in run.rec.orders if o[0] == 'Rejected']
    assert len(reason) == 1 and 'nothing was placed' in reason[0]
    record('create reset before the exchange read it', exchange,
           outcome + '; Rejected after the receive window: nothing was placed')


def test_create_delayed_past_the_client_timeout(xsim):
    exchange, sim = xsim
    sim.faults.rest('create_order', 'delay', seconds=1.15)     # client timeout: 1 s
    run = scenario(sim, exchange, store={'recv_window': 1400})
    outcome = check(run, sim, exchange)
    assert len(run.rec.order_log) and 'Rejected' not in run.rec.statuses()
    record('create delayed 1.15 s (lands after the client gave up)', exchange,
           outcome + '; found on the query after the receive window')


def test_create_server_error(xsim):
    exchange, sim = xsim
    sim.faults.rest('create_order', 'server_error', status=503)
    run = scenario(sim, exchange)
    outcome = check(run, sim, exchange)
    record('create answered 503', exchange, outcome + '; unknown outcome resolved by client id')


def test_create_rate_limited(xsim):
    exchange, sim = xsim
    rule = sim.faults.rest('create_order', 'rate_limit', retry_after=0.3)
    run = scenario(sim, exchange)
    outcome = check(run, sim, exchange)
    reasons = [o[4] for o in run.rec.orders if o[0] == 'Rejected']
    assert rule.hits == 1 and len(reasons) == 1 and 'rate limit' in reasons[0]
    record('create rate-limited (429 / 10006, Retry-After)', exchange,
           outcome + '; Rejected "not placed", later calls wait Retry-After')


# -- REST reads ----------------------------------------------------------------------------
def test_reads_fail_then_recover(xsim):
    """5xx, resets and 429s on the reads recovery itself depends on."""
    exchange, sim = xsim

    def faults(sim, run):
        sim.faults.rest('klines', 'server_error', status=502, times=2)
        sim.faults.rest('klines', 'rate_limit', retry_after=0.2, after=2)
        sim.faults.rest('fetch_order', 'reset')
        sim.faults.rest('balance', 'server_error', status=500)
        sim.faults.drop_ws('all', seconds=0.2)
    run = scenario(sim, exchange, {1: faults, 2: chain(user_back(), completed(2))})
    outcome = check(run, sim, exchange)
    record('REST reads 5xx / reset / 429 during recovery', exchange,
           outcome + '; bounded retries with backoff, Retry-After honoured')


def test_klines_down_longer_than_the_retries(xsim):
    exchange, sim = xsim

    def faults(sim, run):
        sim.faults.rest('klines', 'server_error', status=503, times=4)
        sim.faults.drop_ws('public', seconds=0.2)
    run = scenario(sim, exchange, {2: faults}, store={'rest_retries': 1})
    outcome = check(run, sim, exchange)
    record('backfill REST down longer than its retries', exchange,
           outcome + '; the gap is held and filled later, never skipped')


def test_server_clock_moves(xsim):
    exchange, sim = xsim

    def drift(sim, run):
        sim.faults.clock_offset(15000)
    run = scenario(sim, exchange, {2: drift, 4: lambda s, r: s.faults.drop_ws('private'),
                                   5: user_back()})
    outcome = check(run, sim, exchange)
    record('server clock jumps 15 s (outside recvWindow)', exchange,
           outcome + '; -1021/10002, resynced, retried once')


def test_clock_jumps_then_the_user_stream_reconnects(xsim):
    """The clock moves and the user stream reconnects: its login (Binance
    -1021, Bybit 'expired') or a REST call notices first."""
    exchange, sim = xsim

    def drift_then_drop(sim, run):
        sim.faults.clock_offset(15000)
        sim.faults.drop_ws('private')
    run = scenario(sim, exchange, {1: drift_then_drop, 2: chain(user_back(), completed(2))})
    outcome = check(run, sim, exchange)
    # Whichever sees the new clock first (the login, or a REST poll) resyncs;
    # test_faults_sim proves the login path on its own.
    record('clock jumps, then the user stream reconnects', exchange,
           outcome + '; login refused or REST refused: resynced, logged in, reconciled')


def test_server_clock_off_from_the_start(xsim):
    exchange, sim = xsim
    sim.faults.clock_offset(-30000)
    run = scenario(sim, exchange)
    outcome = check(run, sim, exchange)
    record('server clock 30 s behind at start', exchange, outcome + '; synced on the first refusal')


# -- user streams that end ----------------------------------------------------------------
def test_user_stream_expires(xsim):
    exchange, sim = xsim
    if exchange == 'bybit':
        with pytest.raises(NotImplementedError):
            sim.faults.expire_user_streams()
        record('listenKey / user stream expiry', exchange,
               'n/a: Bybit private streams do not expire (see the stream drops)')
        return
    run = scenario(sim, exchange, {1: lambda s, r: s.faults.expire_user_streams(),
                                   2: chain(user_back(), completed(2))})
    outcome = check(run, sim, exchange)
    record('listenKey / user stream expiry', exchange,
           outcome + '; spot: eventStreamTerminated, resubscribed')


def test_futures_listen_key_expires():
    sim = make_sim('binance')
    try:
        script = {6: lambda s: s.buy(size=0.005), 8: lambda s: s.close()}
        run = scenario(sim, 'binance', {1: lambda s, r: s.faults.expire_user_streams(),
                                        2: user_back('futures')}, script=script,
                       symbol='BTC/USDT:USDT', market_type='futures', user_market='futures')
        outcome = check(run, sim, 'binance', market='futures')
        (pos,) = sim.positions() or [None]
        assert pos is None or float(pos.size) == 0
        assert run.rec.strategy.position.size == 0
    finally:
        sim.stop()
    record('listenKey expiry (USDⓈ-M futures)', 'binance',
           outcome + '; listenKeyExpired, new key, reconnected')
    record('listenKey expiry (USDⓈ-M futures)', 'bybit', 'n/a: no listenKey')


def test_no_fault_baseline(xsim):
    exchange, sim = xsim
    run = scenario(sim, exchange, steps=LIVE_BARS)
    outcome = check(run, sim, exchange)
    assert run.rec.data_status == ['DELAYED', 'LIVE'] and len(SCRIPT) == 4
    record('(none: the baseline)', exchange, outcome)
