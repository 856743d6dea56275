"""The client-side rate limit: ccxt's budget as a bucket, so a burst of
orders in one bar goes at once while the sustained rate stays ccxt's."""
import ccxt
import pytest

import backtrader_live as btl
from backtrader_live.ratelimit import TokenBucket, bucketed
from backtrader_live.stores import BinanceStore
from helpers import KEY, SECRET


class FakeTime:
    """A clock that only moves when the bucket sleeps (or the test says)."""

    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(round(seconds, 9))
        self.now += seconds


def _bucket(rate_limit_ms=50, capacity=1.0):
    t = FakeTime()
    return TokenBucket(rate_limit_ms, capacity, clock=t.clock, sleep=t.sleep), t


def test_a_burst_within_the_capacity_does_not_wait():
    bucket, t = _bucket()
    # Binance spot orders cost 0.2 (10 ms of a 50 ms rateLimit): a full
    # bucket lets six go (ccxt's rule: go while not in debt), then spaces them.
    waits = [bucket.take(0.2) for _ in range(6)]
    assert waits == [0.0] * 6 and t.sleeps == []
    assert bucket.take(0.2) == pytest.approx(0.010)
    assert bucket.take(0.2) == pytest.approx(0.010)


def test_the_sustained_rate_is_ccxts():
    bucket, t = _bucket()
    for _ in range(106):
        bucket.take(0.2)
    # 106 orders of cost 0.2 = 21.2 tokens; one was in the bucket, the rest
    # refill at one per 50 ms: about 1.01 s, as ccxt's spacing (105 x 10 ms).
    assert t.now - 100.0 == pytest.approx(1.01, abs=0.011)


def test_idle_time_refills_up_to_the_capacity_only():
    bucket, t = _bucket(capacity=0.4)
    t.now += 3600            # an hour idle: still only 0.4 tokens
    assert [bucket.take(0.2) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.2) == pytest.approx(0.010)


def test_callers_after_a_waiting_one_wait_for_it_too():
    # Two threads take before either has slept (the clock stands still).
    t = FakeTime()
    bucket = TokenBucket(50, 0.0, clock=t.clock, sleep=t.sleeps.append)
    assert bucket.take(1.0) == 0.0           # debt of 1 token
    assert bucket.take(1.0) == pytest.approx(0.05)
    assert bucket.take(1.0) == pytest.approx(0.10)


def test_no_rate_limit_means_no_wait():
    bucket, t = _bucket(rate_limit_ms=0)
    assert [bucket.take(5) for _ in range(3)] == [0.0, 0.0, 0.0]


def test_the_subclass_is_the_ccxt_class_with_its_signing_and_requests_untouched():
    cls = bucketed(ccxt.binance)
    assert issubclass(cls, ccxt.binance) and cls is bucketed(ccxt.binance)
    assert cls.__name__ == 'binance'
    assert cls.__mro__[1] is ccxt.binance and 'throttle' in vars(cls)
    assert cls.sign is ccxt.binance.sign and cls.fetch2 is ccxt.binance.fetch2


def test_the_store_spends_ccxt_costs_from_its_bucket(sim):
    store = BinanceStore(apikey=KEY, secret=SECRET, endpoint=sim.base_url,
                         rate_limit_burst=0.5)
    try:
        t = FakeTime()
        store.exchange.rate_bucket = TokenBucket(store.exchange.rateLimit, 0.5,
                                                 clock=t.clock, sleep=t.sleep)
        store.get_markets()
        spent = len(t.sleeps)
        for _ in range(3):
            store.get_balance()      # GET /api/v3/account: weight 20, ccxt cost 4
        # The first waits for the markets' debt; each next one for 4 tokens.
        assert t.sleeps[spent + 1:] == [pytest.approx(0.2)] * 2
    finally:
        store.stop()


def test_without_a_rate_limit_the_store_never_throttles(sim):
    store = BinanceStore(apikey=KEY, secret=SECRET, endpoint=sim.base_url, rate_limit=False)
    try:
        t = FakeTime()
        store.exchange.rate_bucket = TokenBucket(50, 0.0, clock=t.clock, sleep=t.sleep)
        store.get_balance()
        store.get_balance()
        assert store.exchange.enableRateLimit is False and t.sleeps == []
    finally:
        store.stop()


@pytest.mark.parametrize('kwargs,match', [
    ({'rate_limit': 'yes'}, "rate_limit must be True or False, got 'yes'"),
    ({'rate_limit_burst': 0}, 'rate_limit_burst must be a number > 0'),
    ({'rate_limit_burst': '2'}, 'rate_limit_burst must be a number > 0'),
])
def test_bad_rate_limit_settings_are_clear_errors(kwargs, match):
    with pytest.raises(btl.ConfigError, match=match):
        BinanceStore(apikey=KEY, secret=SECRET, endpoint='http://127.0.0.1:9', **kwargs)
