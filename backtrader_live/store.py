"""The generic live store: one exchange connection shared by broker and feeds.

An exchange module subclasses :class:`Store` and fills in *data* (ccxt class,
URL tables, market types, timeframes, page size) and a few parsing hooks;
everything generic lives here: the per-credentials singleton, the ccxt
client, the error map and retries, market rules, and the two kinds of
streams (public bars, private user data) with their subscriptions.
"""
import logging
import threading
import time
import urllib.request

import ccxt
from backtrader.store import MetaSingleton, Store as _BtStore
from backtrader.utils.py3 import with_metaclass

from .backoff import Backoff
from .clients import ThreadClients, share_markets
from .errors import (ClockSkewError, ConfigError, FatalError, LiveError, OrderNotFound,
                     OrderRejected, RateLimitedError, RetryableError, UnknownOutcome,
                     classify)
from .events import position_from_ccxt
from .markets import SPOT, kind_of, market_kind, symbol_hint
from .runconfig import check_endpoint
from .ratelimit import (SECONDS, RatePause, TokenBucket, bucketed, call_headers,
                        retry_after_from_headers)
from .secrets import Credentials, install_log_redaction, mask
from .stream import LIVE, WsStream
from .timeframes import parse_timeframe

log = logging.getLogger(__name__)


class MetaLiveStore(MetaSingleton):
    """Plain construction; uniqueness is per credentials, see get_instance.

    backtrader's MetaSingleton keeps one instance per *class*, which would
    silently hand a testnet store to a caller asking for mainnet.
    """

    def __call__(cls, *args, **kwargs):
        return super(MetaSingleton, cls).__call__(*args, **kwargs)


class MarketRules:
    """What the exchange enforces on one market, read from ccxt's market."""

    __slots__ = ('symbol', 'base', 'quote', 'settle', 'amount_step', 'price_tick',
                 'min_amount', 'min_notional', 'maker_fee', 'taker_fee',
                 'contract', 'contract_size', 'inverse', 'info')

    def __init__(self, market):
        precision = market.get('precision') or {}
        limits = market.get('limits') or {}
        self.symbol = market['symbol']
        self.base = market.get('base')
        self.quote = market.get('quote')
        self.amount_step = precision.get('amount')
        self.price_tick = precision.get('price')
        self.min_amount = (limits.get('amount') or {}).get('min')
        self.min_notional = (limits.get('cost') or {}).get('min')
        self.maker_fee = market.get('maker') or 0.0
        self.taker_fee = market.get('taker') or 0.0
        self.contract = bool(market.get('contract'))
        self.contract_size = market.get('contractSize') or 1.0
        self.inverse = bool(market.get('inverse'))
        # The asset PnL, fees and margin are counted in (USDT, or BTC for inverse).
        self.settle = market.get('settle') or self.quote
        self.info = market

    def __repr__(self):
        return ('MarketRules(%s step=%s tick=%s min_amount=%s min_notional=%s)'
                % (self.symbol, self.amount_step, self.price_tick,
                   self.min_amount, self.min_notional))


class Store(with_metaclass(MetaLiveStore, _BtStore)):
    """Base of every exchange store (subclass of backtrader's Store).

    Exchange modules set the class attributes below and implement the
    ``_ws_*``/``parse_*`` hooks. Use :meth:`get_instance` rather than the
    constructor to share one connection per credentials and endpoint.
    """

    params = (
        ('testnet', True),
        ('market_type', 'spot'),
        ('endpoint', None),     # base URL override (the simulator, a proxy)
        ('proxy', None),        # 'http://host:port'; None: from environment
        ('timeout', 10.0),      # seconds for each REST call
        ('rest_retries', 3),    # for idempotent reads only, never for creates
        # -- fault tolerance (docs/faults.md) --
        ('recv_window', 5000),      # ms a signed request stays valid (None: ccxt's)
        ('max_retry_wait', 60.0),   # longest Retry-After waited out; longer: error
        ('stream_heartbeat', 20.0),  # seconds of silence before a stream pings
        ('stream_timeout', 60.0),   # seconds of silence before it reconnects
        # -- client-side rate limit (ratelimit.py, docs/benchmarks.md) --
        ('rate_limit', True),       # False: no client throttle, only the exchange's answers
        ('rate_limit_burst', 1.0),  # bucket size in ccxt cost units (Binance order: 0.2)
    )

    # -- exchange data, set by subclasses ---------------------------------
    exchange_name = None        # 'binance'
    env_prefix = None           # 'BINANCE' -> BINANCE_API_KEY/_API_SECRET
    ccxt_id = None              # ccxt class name
    MARKET_TYPES = {}           # user name -> ccxt options for that market type
    TIMEFRAMES = None           # supported timeframe names (None: all)
    OHLCV_PAGE_LIMIT = 1000     # most candles one REST call returns
    CLIENT_ID_PARAM = 'clientOrderId'
    ERROR_CODES = {}            # exchange error code -> our error class (errors.py)
    RETRY_AFTER_HEADERS = {'Retry-After': SECONDS}   # how the exchange says "wait"

    # Market kinds where a reduce-only order is exempt from the minimum
    # notional (Binance futures: -4164 "... unless you choose reduce only"),
    # so a position smaller than that minimum can still be closed.
    REDUCE_ONLY_SKIPS_MIN_NOTIONAL = ()

    BrokerCls = None
    DataCls = None

    _instances = {}
    _instances_lock = threading.Lock()

    @classmethod
    def get_instance(cls, apikey=None, secret=None, testnet=True,
                     market_type='spot', **kwargs):
        """The store for these credentials, testnet, market type and options.

        Thread-safe: concurrent callers with the same arguments get the same
        object; any different argument (an option such as ``timeout`` or
        ``recv_window`` too) gets a different object, never the old one.
        """
        creds = Credentials.resolve(apikey, secret, cls.env_prefix or '')
        kind = market_kind(market_type, cls.MARKET_TYPES, cls.exchange_name)
        key = (cls, creds.key(), bool(testnet), kind, _options_key(kwargs))
        with cls._instances_lock:
            store = cls._instances.get(key)
            if store is None:
                store = cls(apikey=creds.apikey, secret=creds.secret,
                            testnet=testnet, market_type=market_type, **kwargs)
                cls._instances[key] = store
            return store

    @classmethod
    def forget_instances(cls):
        """Drop cached stores (tests; after ``stop()`` of a whole run)."""
        with cls._instances_lock:
            for key in [k for k in cls._instances if issubclass(k[0], cls)]:
                del cls._instances[key]

    def __init__(self, apikey=None, secret=None):
        super().__init__()
        check_endpoint(self.p.endpoint)     # 'host:port' would reach ccxt as a raw URL error
        self._creds = Credentials.resolve(apikey, secret, self.env_prefix or '')
        install_log_redaction(*self._secrets())
        self.kind = market_kind(self.p.market_type, self.MARKET_TYPES, self.exchange_name)
        self._backoff = Backoff(base=0.25, cap=10.0)
        self._lock = threading.RLock()
        self._connected = False
        self.connection_error = None     # why test_connection() last said False
        self._markets = None
        self._stop_event = threading.Event()
        self._market_stream = None
        self._user_stream = None
        self._bar_subs = {}          # topic -> list of callbacks
        self._user_listeners = []
        self._feeds = []             # feeds to wake on broker events
        self._time_synced = False
        self._rate_pause = RatePause()   # shared by every call: see ratelimit.py
        self._last_resync = -1e9         # monotonic time of the last login resync
        self._clients = ThreadClients(self._make_exchange)

    # -- identity and secrecy ---------------------------------------------
    def __repr__(self):
        return '%s(testnet=%s, market_type=%s, endpoint=%s, apikey=%s)' % (
            type(self).__name__, self.p.testnet, self.p.market_type,
            self.p.endpoint, mask(self._creds.apikey))

    __str__ = __repr__

    @property
    def has_credentials(self):
        return bool(self._creds)

    def _secrets(self):
        return (self._creds.secret, self._creds.apikey)

    # -- the ccxt client ---------------------------------------------------
    @property
    def exchange(self):
        """The calling thread's ccxt client (clients.py: one per thread)."""
        return self._clients.get()

    def _make_exchange(self):
        options = dict(self.MARKET_TYPES[self.kind])
        config = {
            'apiKey': self._creds.apikey, 'secret': self._creds.secret,
            'enableRateLimit': self._rate_limit_setting(), 'timeout': int(self.p.timeout * 1000),
            'options': options,
        }
        if self.p.recv_window:
            options['recvWindow'] = int(self.p.recv_window)
        exchange = bucketed(getattr(ccxt, self.ccxt_id))(config)
        exchange.rate_bucket = TokenBucket(exchange.rateLimit, self.p.rate_limit_burst)
        self._configure_urls(exchange)
        proxy = self._resolve_proxy()
        if proxy:
            exchange.httpsProxy = proxy if self._is_https() else None
            exchange.httpProxy = None if self._is_https() else proxy
        return exchange

    def _rate_limit_setting(self):
        burst = self.p.rate_limit_burst
        if not isinstance(self.p.rate_limit, bool):
            raise ConfigError('rate_limit must be True or False, got %r' % (self.p.rate_limit,))
        if isinstance(burst, bool) or not isinstance(burst, (int, float)) or not burst > 0:
            raise ConfigError('rate_limit_burst must be a number > 0 (ccxt cost units; '
                              '1.0 is ccxt\'s asyncio default), got %r' % (burst,))
        return self.p.rate_limit

    def _is_https(self):
        return not (self.p.endpoint or '').startswith('http://')

    def _configure_urls(self, exchange):
        """Point ccxt at the endpoint override, the testnet, or mainnet."""
        if self.p.endpoint:
            exchange.urls['api'] = self.rest_urls(self.p.endpoint.rstrip('/'),
                                                  exchange.urls['api'])
        elif self.p.testnet:
            exchange.set_sandbox_mode(True)

    def _resolve_proxy(self):
        """Explicit ``proxy`` wins; else the environment/system settings."""
        if self.p.proxy:
            return self.p.proxy
        if self.p.endpoint and self._is_loopback(self.p.endpoint):
            return None
        proxies = urllib.request.getproxies()
        return proxies.get('https') or proxies.get('http')

    @staticmethod
    def _is_loopback(url):
        return any(h in url for h in ('://127.', '://localhost', '://[::1]'))

    def ws_proxy_kwargs(self):
        """websocket-client keyword arguments for the same proxy."""
        proxy = self._resolve_proxy()
        if not proxy:
            return {}
        parsed = urllib.request.urlparse(proxy)
        return {'http_proxy_host': parsed.hostname,
                'http_proxy_port': parsed.port or 80, 'proxy_type': 'http'}

    # -- REST with the error map -------------------------------------------
    def call(self, method, *args, idempotent=True, **kwargs):
        """Call a ccxt method; map errors; retry reads, never creates.

        A non-idempotent call (create order) that fails with a retryable
        error raises UnknownOutcome: the caller resolves it by client id.
        """
        # The name of a ccxt method, unified or implicit ('fapiPrivatePostListenKey').
        fn = getattr(self.exchange, method)
        attempt = 0
        skew_retried = False
        while True:
            try:
                # After a 429/418 every call waits out the server's Retry-After.
                self._rate_pause.wait(self._stop_event, self.p.max_retry_wait)
            except RateLimitedError as err:
                raise (err if idempotent else _unanswered(method, err)) from None
            try:
                result = fn(*args, **kwargs)
                self._connected = True
                return result
            except Exception as exc:  # mapped right below
                err = self.classify(exc)
            if isinstance(err, ClockSkewError) and not skew_retried:
                skew_retried = True
                self.sync_time()
                continue
            if isinstance(err, RateLimitedError):
                self._rate_pause.block(err.retry_after)
            if not idempotent and isinstance(err, RetryableError):
                raise _unanswered(method, err) from None
            too_long = (getattr(err, 'retry_after', None) or 0) > self.p.max_retry_wait
            if not err.retryable or attempt >= self.p.rest_retries or too_long:
                if err.retryable:
                    self._connected = False
                raise err from None
            retry_after = getattr(err, 'retry_after', None)
            log.warning('%s %s failed (%s); retry %d/%d', self.exchange_name,
                        method, err, attempt + 1, self.p.rest_retries)
            if self._backoff.wait(attempt, self._stop_event, retry_after):
                raise err from None
            attempt += 1

    def classify(self, exc):
        """The error map with this exchange's codes and rate-limit headers."""
        # ccxt keeps no headers on its exceptions: the failed call's own
        # response headers, kept per thread (ratelimit.bucketed), have them
        # (used only if the error turns out to be a rate limit).
        wait = retry_after_from_headers(call_headers(self.exchange),
                                        self.RETRY_AFTER_HEADERS, self.server_ms())
        return classify(exc, self._secrets(), self.ERROR_CODES, wait)

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
        self.exchange.options['adjustForTimeDifference'] = True
        try:
            self.exchange.load_time_difference()
        except Exception as exc:
            raise self.classify(exc) from None
        log.info('%s: clock offset to the server is %d ms', self.exchange_name,
                 self.exchange.options.get('timeDifference', 0))

    # -- public API of the store -------------------------------------------
    @property
    def is_connected(self):
        streams = [s for s in (self._market_stream, self._user_stream) if s]
        return self._connected and all(s.is_live for s in streams)

    def test_connection(self):
        """True if the exchange answers (and, with keys, accepts them), else
        False; the reason is logged and kept in ``connection_error``."""
        try:
            self.call('fetch_time')
            if self.has_credentials:
                self.call('fetch_balance')
        except LiveError as exc:
            self.connection_error = str(exc)
            self._connected = False
            log.warning('%s: connection test failed: %s', self.exchange_name, exc)
            return False
        self.connection_error = None
        self._connected = True
        return True

    def get_markets(self):
        """ccxt's markets, loaded once (load_markets caches them)."""
        with self._lock:
            if self._markets is None:
                self._markets = self.call('load_markets')
                if self.exchange is not self._clients.first:   # loaded by another thread
                    share_markets(self.exchange, self._clients.first)
            return self._markets

    def market_rules(self, symbol):
        markets = self.get_markets()
        market = markets.get(symbol)
        if market is None or kind_of(market) != self.kind:
            known = [s for s, m in markets.items() if kind_of(m) == self.kind]
            raise ConfigError(symbol_hint(symbol, self.kind, self.exchange_name,
                                          self.p.market_type, known))
        return MarketRules(market)

    def get_balance(self, currency=None):
        """The free balance of ``currency`` as a float (0.0 if none), or with
        no currency every asset's ``{'free','used','total','wallet'}``.

        ``get_balance_details`` gives one asset's whole dict.
        """
        if currency is not None:
            return float(self.get_balance_details(currency)['free'])
        return self._balances()

    def get_balance_details(self, currency):
        """``{'free','used','total','wallet'}`` of one asset (zeros if none).

        ``wallet`` is the balance without unrealised PnL (derivatives); ccxt's
        ``total`` includes it on some exchanges and not on others.
        """
        return self._balances().get(currency, {'free': 0.0, 'used': 0.0, 'total': 0.0,
                                               'wallet': 0.0})

    def _balances(self):
        raw = self.call('fetch_balance')
        wallets = self.wallet_balances(raw.get('info') or {})
        return {k: {'free': v.get('free') or 0.0, 'used': v.get('used') or 0.0,
                    'total': v.get('total') or 0.0,
                    'wallet': wallets.get(k, v.get('total') or 0.0)}
                for k, v in raw.items()
                if isinstance(v, dict) and k not in ('free', 'used', 'total', 'info')}

    def wallet_balances(self, info):
        """``{asset: wallet balance}`` from the raw balance answer, where ccxt's
        ``total`` is not the wallet balance (exchanges override)."""
        return {}

    def get_positions(self, symbols=None):
        """Open positions as dicts.

        Derivatives: the exchange's positions (symbol, side, size, entry_price,
        mark_price, unrealized_pnl, leverage, margin_mode, liquidation_price).
        Spot: non-zero holdings of a market's base coin.
        """
        if self.kind != SPOT:
            return [dict(vars(p), side='long' if p.size > 0 else 'short', size=abs(p.size))
                    for p in self.position_updates(symbols)]
        return self._spot_holdings(symbols)

    def position_updates(self, symbols=None, params=None):
        """Open derivative positions as PositionUpdate events (REST)."""
        raw = self.call('fetch_positions', symbols, params or {})
        return [u for u in map(position_from_ccxt, raw) if u.size]

    def _spot_holdings(self, symbols):
        markets = self.get_markets()
        out = []
        for asset, bal in self.get_balance().items():
            if not bal['total']:
                continue
            for symbol, m in markets.items():
                if m.get('base') == asset and (symbols is None or symbol in symbols):
                    out.append({'symbol': symbol, 'side': 'long',
                                'size': bal['total'], 'asset': asset})
        return out

    def get_open_orders(self, symbol=None):
        """Every open order, conditional ones too (see open_order_queries)."""
        found = []
        for params in self.open_order_queries():
            found += self.call('fetch_open_orders', symbol, None, None, dict(params))
        return found

    def open_order_queries(self):
        """ccxt params of each open-order listing needed to see them all."""
        return ({},)

    def fetch_ohlcv(self, symbol, timeframe, since=None, limit=None, until=None):
        params = {'until': until} if until is not None else {}
        return self.call('fetch_ohlcv', symbol, timeframe, since, limit, params)

    def create_order(self, symbol, type_, side, amount, price=None, params=None):
        return self.call('create_order', symbol, type_, side, amount, price,
                         params or {}, idempotent=False)

    def cancel_order(self, order_id, symbol, params=None):
        # Not retried: a cancel without an answer may have landed (UnknownOutcome);
        # the broker settles it by client order id (recovery.py).
        return self.call('cancel_order', order_id, symbol, params or {}, idempotent=False)

    def fetch_order_by_client_id(self, client_id, symbol, conditional=False):
        """The order with our client id, or None if the exchange has none."""
        try:
            return self.call('fetch_order', None, symbol,
                             self.client_id_query(client_id, conditional))
        except OrderNotFound:
            return None

    def fetch_order_trades(self, order_id, symbol, since=None):
        return self.call('fetch_my_trades', symbol, since, None,
                         {'orderId': order_id})

    def client_id_query(self, client_id, conditional=False):
        """Params that make ccxt look an order up by our client id."""
        return {self.CLIENT_ID_PARAM: client_id}

    def parse_timeframe(self, timeframe):
        return parse_timeframe(timeframe, self.TIMEFRAMES)

    # -- lifecycle ----------------------------------------------------------
    def start(self, data=None, broker=None):
        super().start(data=data, broker=broker)
        self._stop_event.clear()
        # identity: backtrader's data objects overload == (a lines operation)
        if data is not None and not any(f is data for f in self._feeds):
            self._feeds.append(data)

    def stop(self):
        """Close streams and join their threads (bounded)."""
        self._stop_event.set()
        for stream in (self._market_stream, self._user_stream):
            if stream is not None:
                stream.stop()
        self._market_stream = self._user_stream = None
        self._bar_subs.clear()
        self._user_listeners.clear()
        self._feeds.clear()

    def getbroker(self, *args, paper_trading=True, **kwargs):
        """``BrokerCls`` made as a PaperBroker (the default: nothing is sent)
        or, with ``paper_trading=False``, a LiveBroker (broker.py)."""
        broker = self.BrokerCls(*args, store=self, paper_trading=paper_trading, **kwargs)
        broker._store = self
        return broker

    def getdata(self, *args, **kwargs):
        data = self.DataCls(*args, store=self, **kwargs)
        data._store = self
        return data

    def wake_feeds(self):
        """Let Cerebro's loop run now (a broker event is waiting)."""
        for feed in tuple(self._feeds):
            feed.wake()

    # -- market data stream -------------------------------------------------
    def subscribe_bars(self, symbol, timeframe, callback, on_state=None):
        """Deliver (topic, Bar) for ``symbol``/``timeframe`` to callback.

        ``on_state(state, reconnected)`` is called on stream state changes so
        feeds can report CONNBROKEN and backfill after a reconnect.
        """
        topic = self.bar_topic(symbol, timeframe)
        with self._lock:
            self._bar_subs.setdefault(topic, []).append((callback, on_state))
            if self._market_stream is None:
                self._market_stream = WsStream(
                    'bt-live-%s-market' % self.exchange_name,
                    self.market_ws_url(), self._on_market_message,
                    on_open=self._on_market_open, on_state=self._on_market_state,
                    ping=self.ws_app_ping(), proxy=self.ws_proxy_kwargs(),
                    **self._stream_liveness())
                self._market_stream.start()
            elif self._market_stream.is_live:
                self._market_stream.send(self.subscribe_message([topic]))
        return topic

    def _on_market_open(self, stream):
        topics = list(self._bar_subs)
        if topics:
            stream.send(self.subscribe_message(topics))

    def _on_market_message(self, stream, msg):
        for topic, bar in self.parse_market_message(msg):
            for callback, _ in self._bar_subs.get(topic, ()):
                callback(bar)

    def _on_market_state(self, stream, state, reconnected):
        for subs in list(self._bar_subs.values()):
            for _, on_state in subs:
                if on_state is not None:
                    on_state(state, reconnected)

    # -- user data stream ----------------------------------------------------
    def subscribe_user(self, listener):
        """``listener(event)`` gets OrderUpdate/BalanceUpdate objects and
        ``('state', state, reconnected)`` tuples from the private stream."""
        if not self.has_credentials:
            raise FatalError('the user-data stream needs an API key and secret')
        with self._lock:
            self._user_listeners.append(listener)
            if self._user_stream is None:
                self._user_stream = WsStream(
                    'bt-live-%s-user' % self.exchange_name, self.user_ws_url,
                    self._on_user_message, on_open=self.user_stream_open,
                    on_state=self._on_user_state,
                    ping=self.user_stream_ping() or self.ws_app_ping(),
                    proxy=self.ws_proxy_kwargs(), **self._stream_liveness())
                self._user_stream.start()

    # Substrings of a refused user-stream login that mean "your clock is off".
    LOGIN_CLOCK_ERRORS = ()

    def user_login_refused(self, text):
        """The user stream's login/subscription was refused (``text``, the
        exchange's reason). A clock problem is fixed here: sync with the
        server, then reconnect to log in again (at most every 5 s, so a
        lasting refusal cannot become a loop). Returns the event to report."""
        if not any(s in text for s in self.LOGIN_CLOCK_ERRORS):
            return ('error', text)
        now = time.monotonic()
        if now - self._last_resync < 5.0:
            return ('error', text + ' (clock resynced moments ago: not retrying yet)')
        self._last_resync = now
        try:
            self.sync_time()
        except LiveError as exc:
            return ('error', '%s; the clock resync failed: %s' % (text, exc))
        if self._user_stream is not None:
            self._user_stream.reconnect()
        return ('error', text + '; clock resynced, logging in again')

    def _stream_liveness(self):
        """A stream silent this long pings, then reconnects (a dead peer)."""
        return {'heartbeat': self.p.stream_heartbeat, 'stale_after': self.p.stream_timeout}

    @property
    def user_stream_live(self):
        return self._user_stream is not None and self._user_stream.state == LIVE

    def _on_user_message(self, stream, msg):
        for event in self.parse_user_message(msg):
            for listener in tuple(self._user_listeners):
                listener(event)
        if self._user_listeners:
            self.wake_feeds()

    def _on_user_state(self, stream, state, reconnected):
        for listener in tuple(self._user_listeners):
            listener(('state', state, reconnected))
        self.wake_feeds()

    # -- hooks for exchange modules -------------------------------------------
    def market_ws_url(self):                       # pragma: no cover - abstract
        raise NotImplementedError

    def user_ws_url(self):                         # pragma: no cover - abstract
        raise NotImplementedError

    def bar_topic(self, symbol, timeframe):        # pragma: no cover - abstract
        raise NotImplementedError

    def subscribe_message(self, topics):           # pragma: no cover - abstract
        raise NotImplementedError

    def parse_market_message(self, msg):           # pragma: no cover - abstract
        raise NotImplementedError

    def user_stream_open(self, stream):            # pragma: no cover - abstract
        raise NotImplementedError

    def parse_user_message(self, msg):             # pragma: no cover - abstract
        raise NotImplementedError

    def trigger_params(self, price, rising=None):
        """ccxt params that make an order conditional on ``price``.

        ``rising``: the trigger fires when the price rises to it (a buy stop)
        or falls to it (a sell stop); exchanges that need it say so.
        """
        return {'triggerPrice': price}

    # -- derivatives settings -------------------------------------------------
    UNCHANGED_CODES = ()      # error codes meaning "already set" (exchange data)

    def set_leverage(self, symbol, leverage):
        return self._setting('set_leverage', leverage, symbol)

    def set_margin_mode(self, symbol, mode):
        return self._setting('set_margin_mode', mode, symbol)

    def _setting(self, method, value, symbol):
        try:
            return self.call(method, value, symbol)
        except LiveError as exc:
            if any(code in str(exc) for code in self.UNCHANGED_CODES):
                log.info('%s %s: %s already in force', symbol, method, value)
                return None
            raise

    def current_leverage(self, symbol):
        """Leverage in force for ``symbol`` as the exchange reports it, with or
        without a position (1, with a warning, if the exchange names none)."""
        leverage = self.leverage_setting(symbol)
        if not leverage:
            log.warning('%s reports no leverage for %s: counting margin at 1x (pass '
                        'broker_kwargs={"leverage": N} to set it)', self.exchange_name, symbol)
            return 1.0
        return leverage

    def leverage_setting(self, symbol):
        """The symbol's leverage from the exchange's position list, which names
        it for a flat symbol too (Bybit /v5/position/list); None if absent."""
        for raw in self.call('fetch_positions', [symbol], {}):
            if raw.get('symbol') == symbol and raw.get('leverage'):
                return float(raw['leverage'])
        return None

    def rest_urls(self, endpoint, default_urls):
        """ccxt's URL table with every origin swapped for ``endpoint``.

        The paths stay: a local server (the simulator) mirrors them.
        """
        return {key: _swap_origin(url, endpoint) if isinstance(url, str) else url
                for key, url in default_urls.items()}

    def ws_url(self, path, table):
        """A stream URL: the endpoint's origin + path, or the table's."""
        if self.p.endpoint:
            origin = self.p.endpoint.rstrip('/').replace('https://', 'wss://', 1)
            return origin.replace('http://', 'ws://', 1) + path
        return table['testnet' if self.p.testnet else 'mainnet']

    def user_stream_ping(self):
        """(interval, fn) keep-alive of the private stream; None: as ws_app_ping."""
        return None

    def ws_app_ping(self):
        """(interval, payload_fn) for application pings; None: not needed."""
        return None

    def new_client_id(self, prefix='btl'):
        """A client order id unique across restarts (time + counter)."""
        with self._lock:
            self._cid_seq = getattr(self, '_cid_seq', 0) + 1
            return '%s%x%04x' % (prefix, int(time.time() * 1000), self._cid_seq % 0xFFFF)


def _options_key(kwargs):
    """A hashable key of a store's options (unhashable values by repr)."""
    def hashable(value):
        try:
            hash(value)
            return value
        except TypeError:
            return repr(value)
    return tuple(sorted((k, hashable(v)) for k, v in kwargs.items()))


def _unanswered(method, err):
    """What a failed create means. A rate-limit refusal is made before the
    request runs: nothing was placed. Anything else may have been accepted."""
    if isinstance(err, RateLimitedError):
        return OrderRejected('%s refused by the rate limit, not placed: %s' % (method, err),
                             cause_name=err.cause_name)
    return UnknownOutcome('%s outcome unknown: %s' % (method, err), cause_name=err.cause_name)


def _swap_origin(url, endpoint):
    """'https://api.binance.com/api/v3' -> endpoint + '/api/v3'."""
    parsed = urllib.request.urlparse(url)
    return endpoint + parsed.path


# The rest of upstream's store module (MetaSingleton...), for drop-in imports.
import backtrader.store as _upstream_store  # noqa: E402
from ._namespace import merge_into  # noqa: E402
merge_into(globals(), _upstream_store)
