"""The exchange client role of a store: ccxt REST with the one error map.

Owns what every REST call shares: the ccxt client per thread (clients.py),
the client-side rate limit and the server's Retry-After pause
(ratelimit.py), the one backoff helper (backoff.py), the clock offset and
receive window, and the proxy. Thread-safe: each thread calls through its own
ccxt client; the pause, the bucket and the options are shared on purpose.

The store (its *owner*) stays the place for exchange hooks: the client calls
``owner.classify``/``owner.sync_time`` and builds clients with
``owner._make_exchange`` so that exchange modules (and the generic tier) can
override them as before.
"""
import logging
import threading
import urllib.request

import ccxt

from .backoff import Backoff
from .clients import ThreadClients
from .errors import (ClockSkewError, ConfigError, OrderRejected, RateLimitedError,
                     RetryableError, UnknownOutcome, classify)
from .ratelimit import (RatePause, TokenBucket, bucketed, call_headers,
                        retry_after_from_headers)

log = logging.getLogger(__name__)


class ExchangeClient:
    """REST calls of one store: retries for reads, never for creates."""

    def __init__(self, owner):
        self._owner = owner
        self.backoff = Backoff(base=0.25, cap=10.0)
        self.stop_event = threading.Event()
        self.rate_pause = RatePause()   # shared by every call: see ratelimit.py
        self.connected = False
        self.clients = ThreadClients(owner._make_exchange)

    @property
    def exchange(self):
        """The calling thread's ccxt client (clients.py: one per thread)."""
        return self.clients.get()

    # -- REST with the error map -------------------------------------------
    def call(self, method, *args, idempotent=True, **kwargs):
        """Call a ccxt method; map errors; retry reads, never creates.

        A non-idempotent call (create order) that fails with a retryable
        error raises UnknownOutcome: the caller resolves it by client id.
        """
        owner, p = self._owner, self._owner.p
        # The name of a ccxt method, unified or implicit ('fapiPrivatePostListenKey').
        fn = getattr(self.exchange, method)
        attempt = 0
        skew_retried = False
        while True:
            try:
                # After a 429/418 every call waits out the server's Retry-After.
                self.rate_pause.wait(self.stop_event, p.max_retry_wait)
            except RateLimitedError as err:
                raise (err if idempotent else unanswered(method, err)) from None
            try:
                result = fn(*args, **kwargs)
                self.connected = True
                return result
            except Exception as exc:  # mapped right below
                err = owner.classify(exc)
            if isinstance(err, ClockSkewError) and not skew_retried:
                skew_retried = True
                owner.sync_time()
                continue
            if isinstance(err, RateLimitedError):
                self.rate_pause.block(err.retry_after)
            if not idempotent and isinstance(err, RetryableError):
                raise unanswered(method, err) from None
            too_long = (getattr(err, 'retry_after', None) or 0) > p.max_retry_wait
            if not err.retryable or attempt >= p.rest_retries or too_long:
                if err.retryable:
                    self.connected = False
                raise err from None
            retry_after = getattr(err, 'retry_after', None)
            log.warning('%s %s failed (%s); retry %d/%d', owner.exchange_name,
                        method, err, attempt + 1, p.rest_retries)
            if self.backoff.wait(attempt, self.stop_event, retry_after):
                raise err from None
            attempt += 1

    def classify(self, exc, secrets, codes, retry_headers, code_fields=None):
        """The error map with the exchange's codes and rate-limit headers."""
        # ccxt keeps no headers on its exceptions: the failed call's own
        # response headers, kept per thread (ratelimit.bucketed), have them
        # (used only if the error turns out to be a rate limit).
        wait = retry_after_from_headers(call_headers(self.exchange), retry_headers,
                                        self._owner.server_ms())
        return classify(exc, secrets, codes, wait, code_fields=code_fields)

    # -- the exchange's clock ------------------------------------------------
    @property
    def recv_window_ms(self):
        """How long (ms) the exchange accepts a signed request after sending."""
        return float(self.exchange.options.get('recvWindow') or 5000)

    def server_ms(self):
        """Now on the exchange's clock, as far as the last sync_time knows."""
        return int(self.exchange.milliseconds()
                   - (self.exchange.options.get('timeDifference') or 0))

    def sync_time(self):
        """Correct our clock offset from the exchange's server time."""
        exchange = self.exchange
        exchange.options['adjustForTimeDifference'] = True
        try:
            exchange.load_time_difference()
        except Exception as exc:
            raise self._owner.classify(exc) from None
        log.info('%s: clock offset to the server is %d ms', self._owner.exchange_name,
                 exchange.options.get('timeDifference', 0))


# -- building one ccxt client -------------------------------------------------
def build_exchange(store):
    """A configured ccxt client for ``store`` (credentials, rate limit, URLs, proxy)."""
    p = store.p
    options = dict(store.MARKET_TYPES[store.kind])
    config = {
        'apiKey': store._creds.apikey, 'secret': store._creds.secret,
        'enableRateLimit': rate_limit_setting(p.rate_limit, p.rate_limit_burst),
        'timeout': int(p.timeout * 1000), 'options': options,
    }
    if store._creds.password:
        config['password'] = store._creds.password
    if p.recv_window:
        options['recvWindow'] = int(p.recv_window)
    exchange = bucketed(getattr(ccxt, store.ccxt_id))(config)
    exchange.rate_bucket = TokenBucket(exchange.rateLimit, p.rate_limit_burst)
    for capability in store.HAS_OFF:
        exchange.has[capability] = False
    store._configure_urls(exchange)
    proxy = resolve_proxy(p.proxy, p.endpoint)
    if proxy:
        https = is_https(p.endpoint)
        exchange.httpsProxy = proxy if https else None
        exchange.httpProxy = None if https else proxy
    return exchange


def rate_limit_setting(rate_limit, burst):
    if not isinstance(rate_limit, bool):
        raise ConfigError('rate_limit must be True or False, got %r' % (rate_limit,))
    if isinstance(burst, bool) or not isinstance(burst, (int, float)) or not burst > 0:
        raise ConfigError('rate_limit_burst must be a number > 0 (ccxt cost units; '
                          '1.0 is ccxt\'s asyncio default), got %r' % (burst,))
    return rate_limit


def is_https(endpoint):
    return not (endpoint or '').startswith('http://')


def resolve_proxy(proxy, endpoint):
    """Explicit ``proxy`` wins; else the environment/system settings."""
    if proxy:
        return proxy
    if endpoint and is_loopback(endpoint):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get('https') or proxies.get('http')


def is_loopback(url):
    return any(h in url for h in ('://127.', '://localhost', '://[::1]'))


def ws_proxy_kwargs(proxy, endpoint):
    """websocket-client keyword arguments for the same proxy."""
    proxy = resolve_proxy(proxy, endpoint)
    if not proxy:
        return {}
    parsed = urllib.request.urlparse(proxy)
    return {'http_proxy_host': parsed.hostname,
            'http_proxy_port': parsed.port or 80, 'proxy_type': 'http'}


def rest_urls(endpoint, default_urls):
    """ccxt's URL table with every origin swapped for ``endpoint``.

    The paths stay: a local server (the simulator) mirrors them.
    """
    return {key: swap_origin(url, endpoint) if isinstance(url, str) else url
            for key, url in default_urls.items()}


def swap_origin(url, endpoint):
    """'https://api.binance.com/api/v3' -> endpoint + '/api/v3'."""
    return endpoint + urllib.request.urlparse(url).path


def unanswered(method, err):
    """What a failed create means. A rate-limit refusal is made before the
    request runs: nothing was placed. Anything else may have been accepted."""
    if isinstance(err, RateLimitedError):
        return OrderRejected('%s refused by the rate limit, not placed: %s' % (method, err),
                             cause_name=err.cause_name)
    return UnknownOutcome('%s outcome unknown: %s' % (method, err), cause_name=err.cause_name)
