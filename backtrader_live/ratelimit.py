"""Honouring the exchange's rate limits: one pause shared by every REST call.

When the exchange answers 429/418 (Binance) or 10006/10018/403 (Bybit) it
says how long to stay away: Binance in ``Retry-After`` (seconds), Bybit in
``X-Bapi-Limit-Reset-Timestamp`` (epoch ms). Coming back earlier, from any
thread, only earns a longer ban (Binance escalates 429 into 418 IP bans), so
the store keeps one :class:`RatePause` that every call waits on.
"""
import logging
import threading
import time

from .errors import RateLimitedError

#: header -> how to read it; stores extend this with their exchange's headers
SECONDS, EPOCH_MS = 'seconds', 'epoch_ms'


def retry_after_from_headers(headers, spec, server_now_ms=None):
    """Seconds to wait from response ``headers``, per ``spec`` {name: kind}.

    An epoch timestamp is the server's: compare it with ``server_now_ms`` (now
    on the server's clock, as synced), not with a local clock that may be off.
    """
    if not headers:
        return None
    lower = {str(k).lower(): v for k, v in headers.items()}
    for name, kind in spec.items():
        value = lower.get(name.lower())
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if kind == EPOCH_MS:
            now = time.time() * 1000.0 if server_now_ms is None else server_now_ms
            return max(0.0, (value - now) / 1000.0)
        return max(0.0, value)
    return None


class RatePause:
    """The moment before which no REST call may be made (monotonic clock)."""

    def __init__(self):
        self._until = 0.0
        self._lock = threading.Lock()

    def block(self, seconds):
        """Stay away for ``seconds`` more (never shortens a pause)."""
        if seconds:
            with self._lock:
                self._until = max(self._until, time.monotonic() + float(seconds))

    def remaining(self):
        return max(0.0, self._until - time.monotonic())

    def wait(self, stop_event, max_wait):
        """Sleep out the pause; refuse (RateLimitedError) if it is longer
        than ``max_wait`` seconds, or if ``stop_event`` is set meanwhile."""
        left = self.remaining()
        if not left:
            return
        if left > max_wait:
            raise RateLimitedError('rate limited by the exchange for another %.0fs (more than '
                                   'max_retry_wait=%ss): call not made' % (left, max_wait),
                                   retry_after=left)
        if stop_event.wait(left):
            raise RateLimitedError('stopping while rate limited: call not made',
                                   retry_after=left)


class TokenBucket:
    """ccxt's request budget as a bucket rather than a fixed spacing.

    ccxt's synchronous throttle makes every call wait ``rateLimit x cost`` ms
    after the previous one: a second order in the same bar waits 10 ms on
    Binance spot, which allows 100 orders per 10 s. ccxt's asyncio client
    spends the same budget as a leaky bucket: tokens (in ccxt cost units)
    refill at one per ``rateLimit`` ms up to ``capacity``; a call goes once
    the bucket is not in debt, and takes its cost. This is that bucket for the
    synchronous client: the sustained rate is ccxt's, bursts go at once.
    """

    def __init__(self, rate_limit_ms, capacity=1.0, clock=time.monotonic, sleep=time.sleep):
        self.interval = float(rate_limit_ms) / 1000.0     # seconds per token
        self.capacity = float(capacity)
        self._clock, self._sleep = clock, sleep
        self._tokens = self.capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    def take(self, cost=1.0):
        """Wait until the bucket allows a call of ``cost``, then spend it."""
        with self._lock:
            now = self._clock()
            if self.interval > 0:
                self._tokens = min(self.capacity,
                                   self._tokens + (now - self._stamp) / self.interval)
            else:
                self._tokens = self.capacity
            self._stamp = now
            wait = -self._tokens * self.interval if self._tokens < 0 else 0.0
            # Spent now, even if we wait: a caller after us waits for us too.
            self._tokens -= float(cost)
        if wait > 0:
            self._sleep(wait)
        return wait


def bucketed(exchange_class):
    """A subclass of the ccxt class whose throttle is a :class:`TokenBucket`
    (``exchange.rate_bucket``), which keeps the headers of each call's own
    response (:func:`call_headers`) and sends ccxt's ``verbose`` output to a
    logger instead of stdout; ccxt's own code is untouched."""
    cached = _BUCKETED.get(exchange_class)
    if cached is None:
        cached = _BUCKETED[exchange_class] = _subclass(exchange_class)
    return cached


def _subclass(exchange_class):
    class Bucketed(exchange_class):
        def __init__(self, config=None):
            self._call = threading.local()
            super().__init__(config or {})

        def throttle(self, cost=None):
            self.rate_bucket.take(1.0 if cost is None else cost)

        def fetch(self, url, method='GET', headers=None, body=None):
            # A call that gets no response (reset, timeout) must not show
            # the headers of an earlier one.
            self._call.headers = None
            return super().fetch(url, method, headers, body)

        def on_rest_response(self, code, reason, url, method, response_headers, *args):
            # Every response passes here, error or not, before ccxt raises:
            # the headers of *this* call, kept per thread. ccxt's
            # ``last_response_headers`` is per client, overwritten by any
            # other thread's call meanwhile.
            self._call.headers = response_headers
            return super().on_rest_response(code, reason, url, method, response_headers, *args)

        def log(self, *args):
            # ccxt's verbose mode print()s requests with their API-key header
            # and signed URLs to stdout, past any log filter: log them
            # instead, where secrets.RedactingFilter masks them.
            VERBOSE_LOG.debug(' '.join(str(a) for a in args))

    Bucketed.__name__ = Bucketed.__qualname__ = exchange_class.__name__
    return Bucketed


def call_headers(exchange):
    """Response headers of the last REST call made *by this thread* through
    ``exchange`` (None if it got no response, or is not a bucketed client)."""
    local = getattr(exchange, '_call', None)
    return getattr(local, 'headers', None) if local is not None else None


#: where ccxt's verbose output goes (redacted like ccxt's own DEBUG records)
VERBOSE_LOG = logging.getLogger('ccxt.verbose')
_BUCKETED = {}
