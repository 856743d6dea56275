"""The store's ccxt client under several threads: each thread calls REST
through its own client (stream threads keep listenKeys alive and sync the
clock while Cerebro's thread trades), and a rate limit's wait is read from
the failing response itself, never from another thread's response."""
import threading

import pytest

from backtrader_live.errors import RateLimitedError
from backtrader_live.sim import BybitSimulator
from helpers import KEY, SECRET, eventually
from venues import ALL, STORES, exchange, market_type


@pytest.fixture
def venue_sim(request, sim):
    if exchange(request.node.callspec.params['venue']) == 'bybit':
        with BybitSimulator(speed=None, start_index=600) as bybit:
            yield bybit
    else:
        yield sim


def _store(sim, venue, **kwargs):
    store = STORES[exchange(venue)](apikey=KEY, secret=SECRET, endpoint=sim.base_url,
                                    market_type=market_type(venue), **kwargs)
    store.get_markets()
    return store


def _in_thread(fn):
    """Run ``fn`` in another thread and return its result (or raise its error)."""
    out = {}

    def run():
        try:
            out['value'] = fn()
        except BaseException as exc:   # re-raised below, in the test's thread
            out['error'] = exc
    thread = threading.Thread(target=run, name='test-other-caller')
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    if 'error' in out:
        raise out['error']
    return out['value']


@pytest.mark.parametrize('venue', ALL)
def test_retry_after_comes_from_the_failing_response(venue_sim, venue):
    """A 429 (Bybit: 10006) says "wait 7 s"; before the store reads that,
    another thread's call gets a plain answer. The wait is still 7 s."""
    store = _store(venue_sim, venue, rest_retries=0, max_retry_wait=1.0)
    try:
        rule = venue_sim.faults.rest('balance', 'rate_limit', retry_after=7)
        original = store.classify
        others = []

        def classify_after_another_call(exc):
            # The other thread's answer arrives between our failure and our
            # reading of it (the worst case of two threads sharing a client).
            others.append(_in_thread(lambda: store.call('fetch_time')))
            return original(exc)
        store.classify = classify_after_another_call
        with pytest.raises(RateLimitedError) as err:
            store.call('fetch_balance')
        assert rule.hits == 1                       # the fault fired
        assert others and others[0] > 0             # the other call got its own answer
        assert err.value.retry_after == pytest.approx(7.0, abs=1.5)
    finally:
        store.stop()


@pytest.mark.parametrize('venue', ['binance-usdm', 'bybit-linear'])
def test_threads_call_concurrently_each_through_its_own_client(venue_sim, venue):
    store = _store(venue_sim, venue)
    try:
        barrier = threading.Barrier(6)
        seen, errors = {}, []

        def caller(n):
            try:
                barrier.wait(10)
                for i in range(4):
                    if (n + i) % 2:
                        assert store.call('fetch_time') > 0
                    else:
                        assert 'USDT' in store.get_balance()
                seen[n] = store.exchange
            except BaseException as exc:   # reported by the assertion below
                errors.append(exc)
        threads = [threading.Thread(target=caller, args=(n,), name='test-caller-%d' % n)
                   for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert not errors and len(seen) == 6
        clients = {id(c) for c in seen.values()} | {id(store.exchange)}
        assert len(clients) == 7          # no two threads share a ccxt client
        # ... yet they share what must be shared: clock offset, markets, budget
        other = seen[0]
        assert other.options is store.exchange.options
        assert other.markets is store.exchange.markets
        assert other.rate_bucket is store.exchange.rate_bucket
    finally:
        store.stop()


def test_a_slow_keep_alive_does_not_hold_up_an_order(sim):
    """The listenKey keep-alive (a stream thread) hangs on a slow answer; an
    order from the trading thread goes meanwhile, not after it."""
    store = _store(sim, 'binance-usdm', timeout=10.0)
    try:
        store._listen_key = store.call('fapiPrivatePostListenKey')['listenKey']
        slow = sim.faults.rest('PUT /fapi/v1/listenKey', 'delay', seconds=4.0)
        keeper = threading.Thread(target=store._keep_listen_key, name='test-keep-alive')
        keeper.start()
        eventually(lambda: slow.hits == 1)            # the keep-alive is in flight
        order = store.create_order('BTC/USDT:USDT', 'market', 'buy', 0.002)
        assert order['status'] in ('closed', 'open') and keeper.is_alive()
        keeper.join(10)
        assert not keeper.is_alive()
    finally:
        store.stop()


def test_markets_loaded_by_another_thread_serve_every_thread(sim):
    store = STORES['binance'](apikey=KEY, secret=SECRET, endpoint=sim.base_url)
    try:
        markets = _in_thread(store.get_markets)          # not the creating thread
        assert 'BTC/USDT' in markets
        # The creating thread's client has them too, without loading again.
        assert store.exchange.markets is markets
        assert store.market_rules('BTC/USDT').amount_step
    finally:
        store.stop()
