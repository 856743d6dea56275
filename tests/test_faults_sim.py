"""The simulators' fault injection itself (sim/faults.py), seen by the real
ccxt and websocket-client, and how the live layer's error map reads it."""
import json
import time

import ccxt
import pytest
import websocket

import backtrader_live as btl
from backtrader_live.sim import BinanceSimulator, BybitSimulator
from backtrader_live.sim.__main__ import build_parser, run_faults
from backtrader_live.sim.faults import PRESETS, Faults, parse_spec, random_schedule
from backtrader_live.stores import BinanceStore, BybitStore
from helpers import KEY, SECRET, eventually

STORES = {'binance': BinanceStore, 'bybit': BybitStore}
E = btl.errors


@pytest.fixture(scope='module')
def sims():
    with BinanceSimulator(speed=None, start_index=600) as binance, \
            BybitSimulator(speed=None, start_index=600) as bybit:
        yield {'binance': binance, 'bybit': bybit}


@pytest.fixture
def venue(request, sims):
    """(exchange, sim, store) with no fault left over from another test."""
    name = request.param
    sim = sims[name]
    sim.faults.clear()
    store = STORES[name].get_instance(apikey=KEY, secret=SECRET, endpoint=sim.base_url,
                                      timeout=1.0, rest_retries=0)
    yield name, sim, store
    sim.faults.clear()
    store.stop()


def _fetch(store):
    return store.exchange.fetch_order('1', 'BTC/USDT', {'acknowledged': True}) \
        if store.exchange_name == 'bybit' else store.exchange.fetch_order('1', 'BTC/USDT')


# fault -> (ccxt class, our class) per exchange, as seen on 127.0.0.1
REST_ROWS = [
    ('reset', {}, 'binance', ccxt.NetworkError, E.RetryableError),
    ('server_error', {'status': 500}, 'binance', ccxt.OperationFailed, E.RetryableError),
    ('server_error', {'status': 503}, 'binance', ccxt.ExchangeError, E.RetryableError),
    ('server_error', {'status': 502}, 'binance', ccxt.ExchangeNotAvailable, E.RetryableError),
    ('server_error', {'status': 504}, 'binance', ccxt.RequestTimeout, E.UnknownOutcome),
    ('rate_limit', {'retry_after': 3}, 'binance', ccxt.DDoSProtection, E.RateLimitedError),
    ('rate_limit', {'status': 418}, 'binance', ccxt.DDoSProtection, E.RateLimitedError),
    ('error', {'error': 'permission'}, 'binance', ccxt.AuthenticationError,
     E.AuthenticationFailed),
    ('error', {'error': 'unknown_status'}, 'binance', ccxt.RequestTimeout, E.UnknownOutcome),
    ('delay', {'seconds': 1.5}, 'binance', ccxt.RequestTimeout, E.UnknownOutcome),
    ('reset', {}, 'bybit', ccxt.NetworkError, E.RetryableError),
    ('server_error', {'status': 502}, 'bybit', ccxt.ExchangeNotAvailable, E.RetryableError),
    ('server_error', {'status': 10016}, 'bybit', ccxt.ExchangeError, E.RetryableError),
    ('rate_limit', {'retry_after': 3}, 'bybit', ccxt.RateLimitExceeded, E.RateLimitedError),
    ('rate_limit', {'status': 10018}, 'bybit', ccxt.RateLimitExceeded, E.RateLimitedError),
    ('rate_limit', {'status': 403}, 'bybit', ccxt.RateLimitExceeded, E.RateLimitedError),
    ('error', {'error': 'permission'}, 'bybit', ccxt.PermissionDenied, E.AuthenticationFailed),
]


@pytest.mark.parametrize('action,kwargs,venue,ccxt_cls,ours',
                         REST_ROWS, indirect=['venue'],
                         ids=['%s-%s-%s' % (r[2], r[0], r[1]) for r in REST_ROWS])
def test_rest_faults_reach_ccxt_and_the_error_map(venue, action, kwargs, ccxt_cls, ours):
    name, sim, store = venue
    store.get_markets()
    rule = sim.faults.rest('fetch_order', action, **kwargs)
    with pytest.raises(ccxt.BaseError) as info:
        _fetch(store)
    assert type(info.value) is ccxt_cls and rule.hits == 1 and rule.spent
    mapped = store.classify(info.value)
    assert type(mapped) is ours
    if 'retry_after' in kwargs:
        assert mapped.retry_after == pytest.approx(kwargs['retry_after'], abs=0.05)


@pytest.mark.parametrize('venue', ['binance'], indirect=True)
def test_binance_2015_after_success_is_permissions_not_a_rate_limit(venue):
    _, sim, store = venue
    store.get_balance()                     # a private call succeeded first
    sim.faults.rest('balance', 'error', error='permission')
    with pytest.raises(ccxt.DDoSProtection) as info:      # ccxt's quirk
        store.exchange.fetch_balance()
    assert type(store.classify(info.value)) is E.AuthenticationFailed


@pytest.mark.parametrize('venue', ['binance', 'bybit'], indirect=True)
def test_retry_after_is_honoured_by_every_call(venue):
    _, sim, store = venue
    store.p.rest_retries = 2
    store.get_markets()
    sim.faults.rest('fetch_order', 'rate_limit', retry_after=0.4)
    start = time.monotonic()
    assert store.fetch_order_by_client_id('nope', 'BTC/USDT') is None
    assert time.monotonic() - start >= 0.35


@pytest.mark.parametrize('venue', ['binance', 'bybit'], indirect=True)
@pytest.mark.serial      # a latency/duration bound: alone, not beside other workers
def test_a_long_ban_fails_fast_and_blocks_other_calls(venue):
    name, sim, store = venue
    store.get_markets()
    status = 418 if name == 'binance' else 403
    sim.faults.rest('fetch_order', 'rate_limit', status=status, retry_after=120)
    start = time.monotonic()
    with pytest.raises(E.RateLimitedError):
        store.fetch_order_by_client_id('x', 'BTC/USDT')
    with pytest.raises(E.RateLimitedError, match='call not made'):
        store.get_balance()                  # no request while the ban lasts
    with pytest.raises(E.OrderRejected, match='not placed'):
        store.create_order('BTC/USDT', 'market', 'buy', 0.01)
    assert time.monotonic() - start < 1.0


def test_rules_options_and_errors(sims):
    faults = sims['binance'].faults
    with pytest.raises(ValueError, match='unknown call'):
        faults.rest('no_such_call', 'reset')
    with pytest.raises(ValueError, match='action is one of'):
        faults.rest('klines', 'explode')
    with pytest.raises(ValueError, match='channel'):
        faults.drop_ws('both')
    rule = faults.rest('GET /api/v3/ping', 'server_error', after=1, times=None)
    ex = ccxt.binance()
    ex.urls['api']['public'] = sims['binance'].base_url + '/api/v3'
    ex.public_get_ping()                                   # skipped by after=1
    for _ in range(2):
        with pytest.raises(ccxt.ExchangeError):
            ex.public_get_ping()
    assert (rule.seen, rule.hits, rule.spent) == (3, 2, False)
    assert 'hits=2' in repr(rule)
    faults.clear()
    assert faults.rules == []
    with pytest.raises(RuntimeError, match='start the simulator'):
        Faults(object()).drop_ws()


def test_probability_is_seeded(sims):
    def pattern(seed):
        f = Faults(sims['binance'], seed)
        rule = f.rest('klines', 'reset', times=None, probability=0.5)
        hits = []
        for _ in range(20):
            before = rule.hits
            f._match(_Req('GET', '/api/v3/klines'))
            hits.append(rule.hits > before)
        return hits
    assert pattern(7) == pattern(7) and pattern(7) != pattern(8)
    assert 3 < sum(pattern(7)) < 17


class _Req:
    def __init__(self, method, path):
        self.method, self.path = method, path


class _Sock:
    """Stands in for a websocket in outgoing() (weak-referenceable)."""
    closed = False


def test_scramble_duplicates_and_reorders_reproducibly(sims):
    def shaped(seed):
        f = Faults(sims['binance'], seed)
        ws = _Sock()
        f._sockets[ws] = ['private', 0.0, [], None, 0.0]
        f.scramble_ws('private', duplicate=0.3, reorder=0.3)
        return [text for _, text in f.outgoing([(ws, str(i)) for i in range(30)])]
    out = shaped(1)
    assert out == shaped(1) and out != shaped(2)
    assert sorted(set(out), key=int) == [str(i) for i in range(30)]    # nothing lost
    assert len(out) > 30 and out != sorted(out, key=int)               # doubled, moved


def _kline_socket(sim):
    ws = websocket.create_connection(sim.ws_url + '/ws/btcusdt@kline_1h', timeout=5)
    sim.wait_subscribed('btcusdt@kline_1h')
    return ws


def _messages(ws, wait=0.05):
    ws.settimeout(wait)
    out = []
    try:
        while True:
            out.append(json.loads(ws.recv()))
    except websocket.WebSocketTimeoutException:
        return out


def test_drop_refuses_handshakes_until_restored(sims):
    sim = sims['binance']
    ws = _kline_socket(sim)
    assert sim.faults.drop_ws('public', seconds=None) >= 1
    with pytest.raises(websocket.WebSocketBadStatusException, match='503'):
        websocket.create_connection(sim.ws_url + '/ws/btcusdt@kline_1h', timeout=5)
    sim.faults.restore_ws('public')
    again = _kline_socket(sim)
    again.close()
    ws.close()
    assert any(a[0] == 'ws refused' for a in sim.faults.applied)


def test_stall_holds_messages_then_delivers_them_in_order(sims):
    sim = sims['binance']
    ws = _kline_socket(sim)
    _messages(ws)
    assert sim.faults.stall_ws('public', seconds=0.3) >= 1
    sim.step()
    assert _messages(ws) == []                       # silent, yet open
    got = eventually(lambda: _messages(ws, 0.1), 5)
    assert [m['k']['x'] for m in got] == [False, True, False]
    assert sim.faults.connections('public') >= 1
    ws.close()


def test_connection_lifetime_closes_old_connections(sims):
    sim = sims['bybit']
    ws = websocket.create_connection(sim.ws_url + '/v5/public/spot', timeout=5)
    sim.faults.connection_lifetime(0.2)
    try:
        eventually(lambda: any(a[0] == 'ws lifetime reached' for a in sim.faults.applied), 5)
        ws.settimeout(2)
        # Closed either way: a close frame, or (the server closing with data
        # unread, under load) a TCP reset.
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionResetError)):
            for _ in range(5):
                ws.recv()
    finally:
        sim.faults.connection_lifetime(None)
        ws.close()


def test_user_streams_expire_the_exchange_way(sims):
    binance = sims['binance']
    ex = ccxt.binance({'apiKey': KEY, 'secret': SECRET})
    ex.urls['api']['fapiPrivate'] = binance.base_url + '/fapi/v1'
    key = ex.fapiPrivatePostListenKey()['listenKey']
    ws = websocket.create_connection(binance.ws_url + '/private/ws?listenKey=' + key, timeout=5)
    binance.wait_user_subscribed(market='futures')
    assert binance.faults.expire_user_streams() == 1
    assert json.loads(ws.recv())['e'] == 'listenKeyExpired'
    assert ex.fapiPrivatePostListenKey()['listenKey'] != key     # a fresh one
    ws.close()
    with pytest.raises(NotImplementedError, match='do not expire'):
        sims['bybit'].faults.expire_user_streams()


def test_clock_offset_is_per_simulator(sims):
    def server_time(sim):
        ex = ccxt.binance() if sim is sims['binance'] else ccxt.bybit()
        for k in list(ex.urls['api']):
            if isinstance(ex.urls['api'][k], str):
                ex.urls['api'][k] = sim.base_url + (
                    '/api/v3' if sim is sims['binance'] else '')
        return ex.fetch_time() - time.time() * 1000
    sims['binance'].faults.clock_offset(30000)
    try:
        assert server_time(sims['binance']) == pytest.approx(30000, abs=1000)
        assert server_time(sims['bybit']) == pytest.approx(0, abs=1000)
    finally:
        sims['binance'].faults.clock_offset(0)


def test_random_schedule_covers_every_preset_reproducibly():
    plan = random_schedule(5, 30, rate=0.2)
    assert plan == random_schedule(5, 30, rate=0.2) != random_schedule(6, 30, rate=0.2)
    assert {name for _, name in plan} == set(PRESETS)
    assert [s for s, _ in plan] == sorted({s for s, _ in plan})
    with pytest.raises(ValueError, match='at least as many steps'):
        random_schedule(5, 3)


def test_cli_fault_specs(sims, capsys):
    assert parse_spec('rest:call=klines,action=reset,times=none,at=2.5') == (
        'rest', {'call': 'klines', 'action': 'reset', 'times': None}, 2.5)
    args = build_parser().parse_args(['--exchange', 'binance', '--seed', '3', '--fault',
                                      'ws_drop_all,at=5', '--fault', 'clock_offset:ms=100'])
    assert args.seed == 3 and args.fault[0] == ('ws_drop_all', {}, 5.0)
    with pytest.raises(ValueError, match='key=value'):
        parse_spec('rest:call')
    sim = sims['binance']
    waiting = run_faults(sim, args.fault + [('expire_user_streams', {'bad': 1}, 0.0)], 1.0)
    assert waiting == [('ws_drop_all', {}, 5.0)] and sim.faults.clock_offset_ms == 100
    out = capsys.readouterr()
    assert 'fault injected: clock_offset' in out.out and 'not injected' in out.err
    sim.faults.clear()


@pytest.mark.parametrize('venue', ['binance', 'bybit'], indirect=True)
def test_user_stream_login_refused_over_the_clock_resyncs(venue):
    name, sim, store = venue
    sim.faults.clock_offset(15000)           # no REST call will notice first
    events = []
    store.subscribe_user(events.append)
    try:
        sim.wait_user_subscribed(timeout=10)
        refusals = [e for e in events if isinstance(e, tuple) and e[0] == 'error']
        assert refusals and 'clock resynced, logging in again' in refusals[0][1]
        assert store.exchange.options['timeDifference'] == pytest.approx(-15000, abs=1000)
        # a lasting refusal is not retried in a loop
        assert 'not retrying yet' in store.user_login_refused(refusals[0][1])[1]
        assert store.user_login_refused('some other reason') == ('error', 'some other reason')
    finally:
        sim.faults.clock_offset(0)
        store.stop()
