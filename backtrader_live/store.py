"""The live store: the public facade over one exchange connection.

A store is what backtrader's broker and feeds share. Its roles live in small
modules, each an object the store holds:

- ``exchange_client.ExchangeClient`` (``store.client``): ccxt REST per
  thread, the one error map, retries with the one backoff, the rate limit,
  the clock and receive window, the proxy;
- ``stream_hub.StreamHub`` (``store.hub``): the market and user streams,
  their subscriptions, state, liveness and resubscription;
- ``account_view.AccountView`` (``store.account``): markets and their rules,
  balances, positions, open orders, leverage and margin.

What an exchange *is* (names, market types, codes, URLs, pings...) is data in
its profile (``backtrader_live/exchanges/<name>/profile.py``); what it *says*
(payload parsers, login) are the hooks its store class overrides at the end
of this module. The store keeps the methods exchange modules, the broker and
the feeds call, so an exchange store overrides a hook here and every role
sees it.
"""
import logging
import threading
import time

from backtrader.store import MetaSingleton, Store as _BtStore
from backtrader.utils.py3 import with_metaclass

from . import exchange_client as _client
from ._upstream import check_upstream
from .account_view import AccountView, MarketRules  # noqa: F401 (MarketRules: public)
from .errors import ConfigError, LiveError, OrderNotFound
from .exchange_client import ExchangeClient
from .exchanges.profile import ORDER_TYPES
from .markets import market_kind
from .runconfig import check_endpoint
from .ratelimit import SECONDS
from .secrets import Credentials, install_log_redaction, mask
from .stream_hub import StreamHub
from .timeframes import parse_timeframe

log = logging.getLogger(__name__)

check_upstream()


class MetaLiveStore(MetaSingleton):
    """Plain construction; uniqueness is per credentials, see get_instance.

    backtrader's MetaSingleton keeps one instance per *class*, which would
    silently hand a testnet store to a caller asking for mainnet.
    """

    def __call__(cls, *args, **kwargs):
        return super(MetaSingleton, cls).__call__(*args, **kwargs)


class Store(with_metaclass(MetaLiveStore, _BtStore)):
    """Base of every exchange store (subclass of backtrader's Store).

    Exchange modules set the class attributes below (from their profile) and
    implement the ``_ws_*``/``parse_*`` hooks. Use :meth:`get_instance` rather
    than the constructor to share one connection per credentials and endpoint.
    """

    params = (
        ('testnet', True),
        ('market_type', 'spot'),
        ('endpoint', None),     # base URL override (the simulator, a proxy)
        ('proxy', None),        # 'http://host:port'; None: from environment
        ('timeout', 10.0),      # seconds for each REST call
        ('rest_retries', 3),    # for idempotent reads only, never for creates
        ('password', None),     # the API passphrase some exchanges sign with; masked
        # -- fault tolerance (docs/faults.md) --
        ('recv_window', 5000),      # ms a signed request stays valid (None: ccxt's)
        ('max_retry_wait', 60.0),   # longest Retry-After waited out; longer: error
        ('stream_heartbeat', 20.0),  # seconds of silence before a stream pings
        ('stream_timeout', 60.0),   # seconds of silence before it reconnects
        # -- client-side rate limit (ratelimit.py, docs/benchmarks.md) --
        ('rate_limit', True),       # False: no client throttle, only the exchange's answers
        ('rate_limit_burst', 1.0),  # bucket size in ccxt cost units (Binance order: 0.2)
    )

    # -- exchange data, set by subclasses from their profile ------------------
    # An exchange store sets ``profile`` (exchanges/profile.py); the class
    # attributes below are then the profile's (ExchangeProfile.apply). The
    # generic tier sets them from ccxt's description instead.
    profile = None
    exchange_name = None        # 'binance'
    env_prefix = None           # 'BINANCE' -> BINANCE_API_KEY/_API_SECRET
    ccxt_id = None              # ccxt class name
    MARKET_TYPES = {}           # market kind -> ccxt options for that market type
    MARKET_ALIASES = None       # user's market-type names -> kinds (None: markets.ALIASES)
    CREDENTIALS = ('apikey', 'secret')   # + 'password': a passphrase is required
    TESTNET = True              # the exchange has a testnet (``testnet=True`` works)
    TIMEFRAMES = None           # supported timeframe names (None: all)
    OHLCV_PAGE_LIMIT = 1000     # most candles one REST call returns
    CLIENT_ID_PARAM = 'clientOrderId'
    ERROR_CODES = {}            # exchange error code -> our error class (errors.py)
    ERROR_CODE_FIELDS = None    # JSON fields of that code in an error body (None: known ones)
    RETRY_AFTER_HEADERS = {'Retry-After': SECONDS}   # how the exchange says "wait"
    HAS_OFF = ()                # ccxt ``has`` entries to switch off (hidden calls)
    STREAM_TEXTS = ()           # plain-text stream frames that are chatter ('pong')
    STREAM_FORMING = None       # text marking a market message as a forming candle only
    # a first market subscription after the history was read: fetch what closed
    # in between (feed.py); False where LIVE is not the moment it went out
    CATCH_UP_FIRST_SUBSCRIPTION = True
    STREAM_BAR_LAG = 0.5        # s the catch-up waits for the stream's copy of a bar
    UNCHANGED_CODES = ()        # error codes meaning "already set"
    LOGIN_CLOCK_ERRORS = ()     # substrings of a refused login meaning "your clock is off"

    # Market kinds where a reduce-only order is exempt from the minimum
    # notional (Binance futures: -4164 "... unless you choose reduce only"),
    # so a position smaller than that minimum can still be closed.
    REDUCE_ONLY_SKIPS_MIN_NOTIONAL = ()

    BrokerCls = None
    DataCls = None

    _instances = {}
    _instances_lock = threading.Lock()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get('profile') is not None:
            cls.profile.apply(cls)

    @classmethod
    def get_instance(cls, apikey=None, secret=None, testnet=True,
                     market_type='spot', **kwargs):
        """The store for these credentials, testnet, market type and options.

        Thread-safe: concurrent callers with the same arguments get the same
        object; any different argument (an option such as ``timeout`` or
        ``recv_window`` too) gets a different object, never the old one.
        """
        creds = Credentials.resolve(apikey, secret, cls.env_prefix or '',
                                    kwargs.get('password'))
        if 'password' in kwargs:      # in the key as a digest, never as text
            kwargs['password'] = creds.masked_password
        kind = market_kind(market_type, cls.MARKET_TYPES, cls.exchange_name,
                           cls.MARKET_ALIASES)
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
        self._creds = Credentials.resolve(apikey, secret, self.env_prefix or '',
                                          self.p.password)
        self.p.password = self._creds.masked_password     # masked wherever params show
        install_log_redaction(*self._secrets())
        self.kind = market_kind(self.p.market_type, self.MARKET_TYPES, self.exchange_name,
                                self.MARKET_ALIASES)
        self._check_profile_promises()
        self._lock = threading.RLock()
        self.connection_error = None     # why test_connection() last said False
        self._time_synced = False
        self.hub = StreamHub(self, self._lock)
        self.account = AccountView(self, self._lock)
        self.client = ExchangeClient(self)      # last: builds the first ccxt client

    def _check_profile_promises(self):
        """A testnet or a passphrase the exchange's profile rules out/requires."""
        if self.p.testnet and not self.p.endpoint and not self.TESTNET:
            raise ConfigError('%s has no testnet: pass testnet=False (real money) or an '
                              'endpoint (a simulator)' % self.exchange_name)
        if 'password' in self.CREDENTIALS and self.has_credentials \
                and not self._creds.password:
            raise ConfigError('%s needs a passphrase with its API key: pass password=... '
                              'or set %s_API_PASSPHRASE' % (self.exchange_name,
                                                            self.env_prefix))

    @property
    def product(self):
        """This store's product in the exchange's profile (None: no profile)."""
        return self.profile.product(self.kind) if self.profile is not None else None

    @property
    def order_types(self):
        """The order types this market takes natively (of
        exchanges.profile.ORDER_TYPES): the order gate refuses the others
        before sending, paper and live (orders.order_type_problem)."""
        product = self.product
        return product.order_types if product is not None else ORDER_TYPES

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
        return (self._creds.secret, self._creds.apikey, self._creds.password)

    # -- the exchange client (exchange_client.py) ---------------------------
    @property
    def exchange(self):
        """The calling thread's ccxt client (clients.py: one per thread)."""
        return self.client.exchange

    _clients = property(lambda self: self.client.clients)
    _backoff = property(lambda self: self.client.backoff)
    _stop_event = property(lambda self: self.client.stop_event)
    _rate_pause = property(lambda self: self.client.rate_pause)

    @property
    def _connected(self):
        return self.client.connected

    @_connected.setter
    def _connected(self, value):
        self.client.connected = value

    def _make_exchange(self):
        return _client.build_exchange(self)

    def _configure_urls(self, exchange):
        """Point ccxt at the endpoint override, the testnet, or mainnet."""
        if self.p.endpoint:
            exchange.urls['api'] = self.rest_urls(self.p.endpoint.rstrip('/'),
                                                  exchange.urls['api'])
        elif self.p.testnet:
            exchange.set_sandbox_mode(True)

    def _resolve_proxy(self):
        return _client.resolve_proxy(self.p.proxy, self.p.endpoint)

    def _is_https(self):
        return _client.is_https(self.p.endpoint)

    def ws_proxy_kwargs(self):
        """websocket-client keyword arguments for the same proxy."""
        return _client.ws_proxy_kwargs(self.p.proxy, self.p.endpoint)

    def call(self, method, *args, idempotent=True, **kwargs):
        """Call a ccxt method; map errors; retry reads, never creates
        (a failed create raises UnknownOutcome: resolve it by client id)."""
        return self.client.call(method, *args, idempotent=idempotent, **kwargs)

    def classify(self, exc):
        """The error map with this exchange's codes and rate-limit headers."""
        return self.client.classify(exc, self._secrets(), self.ERROR_CODES,
                                    self.RETRY_AFTER_HEADERS, self.ERROR_CODE_FIELDS)

    @property
    def recv_window_ms(self):
        """How long (ms) the exchange accepts a signed request after sending."""
        return self.client.recv_window_ms

    def server_ms(self):
        """Now on the exchange's clock, as far as the last sync_time knows."""
        return self.client.server_ms()

    def sync_time(self):
        """Correct our clock offset from the exchange's server time."""
        self.client.sync_time()

    def rest_urls(self, endpoint, default_urls):
        """ccxt's URL table with every origin swapped for ``endpoint``."""
        return _client.rest_urls(endpoint, default_urls)

    # -- public API of the store -------------------------------------------
    @property
    def is_connected(self):
        return self._connected and all(s.is_live for s in self.hub.streams())

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

    # -- the account view (account_view.py) ----------------------------------
    @property
    def _markets(self):
        return self.account.markets

    def get_markets(self):
        """ccxt's markets, loaded once (load_markets caches them)."""
        return self.account.get_markets()

    def market_rules(self, symbol):
        """The market's :class:`MarketRules` (step, tick, minimums, fees)."""
        return self.account.market_rules(symbol)

    def get_balance(self, currency=None):
        """The free balance of ``currency`` as a float (0.0 if none), or with
        no currency every asset's ``{'free','used','total','wallet'}``.

        ``get_balance_details`` gives one asset's whole dict.
        """
        return self.account.get_balance(currency)

    def get_balance_details(self, currency):
        """``{'free','used','total','wallet'}`` of one asset (zeros if none).

        ``wallet`` is the balance without unrealised PnL (derivatives); ccxt's
        ``total`` includes it on some exchanges and not on others.
        """
        return self.account.get_balance_details(currency)

    def _balances(self):
        return self.account.balances()

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
        return self.account.get_positions(symbols)

    def position_updates(self, symbols=None, params=None):
        """Open derivative positions as PositionUpdate events (REST)."""
        return self.account.position_updates(symbols, params)

    def get_open_orders(self, symbol=None):
        """Every open order, conditional ones too (see open_order_queries)."""
        return self.account.get_open_orders(symbol)

    def open_order_queries(self):
        """ccxt params of each open-order listing needed to see them all."""
        return ({},)

    def set_leverage(self, symbol, leverage):
        return self.account.setting('set_leverage', leverage, symbol, self.UNCHANGED_CODES)

    def set_margin_mode(self, symbol, mode):
        return self.account.setting('set_margin_mode', mode, symbol, self.UNCHANGED_CODES)

    def current_leverage(self, symbol):
        """Leverage in force for ``symbol`` as the exchange reports it, with or
        without a position (1, with a warning, if the exchange names none)."""
        return self.account.current_leverage(symbol)

    def leverage_setting(self, symbol):
        """The symbol's leverage from the exchange's position list, which names
        it for a flat symbol too (Bybit /v5/position/list); None if absent."""
        return self.account.leverage_setting(symbol)

    # -- orders and history (REST) ---------------------------------------------
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

    def edit_order(self, order_id, symbol, type_, side, amount, price=None, params=None):
        # An amend in place (orderlinks' bracket children). Not retried: one
        # without an answer may have landed; the broker asks by client id.
        return self.call('edit_order', order_id, symbol, type_, side, amount, price,
                         params or {}, idempotent=False)

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

    def trigger_params(self, price, rising=None):
        """ccxt params that make an order conditional on ``price``.

        ``rising``: the trigger fires when the price rises to it (a buy stop)
        or falls to it (a sell stop); exchanges that need it say so.
        """
        return {'triggerPrice': price}

    def new_client_id(self, prefix='btl'):
        """A client order id unique across restarts (time + counter)."""
        with self._lock:
            self._cid_seq = getattr(self, '_cid_seq', 0) + 1
            return '%s%x%04x' % (prefix, int(time.time() * 1000), self._cid_seq % 0xFFFF)

    def parse_timeframe(self, timeframe):
        return parse_timeframe(timeframe, self.TIMEFRAMES)

    # -- lifecycle ----------------------------------------------------------
    def start(self, data=None, broker=None):
        super().start(data=data, broker=broker)
        self._stop_event.clear()
        self.hub.add_feed(data)

    def stop(self):
        """Close streams and join their threads (bounded)."""
        self._stop_event.set()
        self.hub.stop()

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

    # -- the stream hub (stream_hub.py) ---------------------------------------
    _market_stream = property(lambda self: self.hub.market_stream)
    _user_stream = property(lambda self: self.hub.user_stream)
    _bar_subs = property(lambda self: self.hub.bar_subs)
    _user_listeners = property(lambda self: self.hub.user_listeners)
    _feeds = property(lambda self: self.hub.feeds)

    def wake_feeds(self):
        """Let Cerebro's loop run now (a broker event is waiting)."""
        self.hub.wake_feeds()

    def subscribe_bars(self, symbol, timeframe, callback, on_state=None):
        """Deliver (topic, Bar) for ``symbol``/``timeframe`` to callback.

        ``on_state(state, reconnected)`` is called on stream state changes so
        feeds can report CONNBROKEN and backfill after a reconnect.
        """
        return self.hub.subscribe_bars(symbol, timeframe, callback, on_state)

    def _on_market_open(self, stream):
        self.hub.on_market_open(stream)

    def _on_market_message(self, stream, msg):
        self.hub.on_market_message(msg)

    def _on_market_state(self, stream, state, reconnected):
        self.hub.on_market_state(state, reconnected)

    def subscribe_user(self, listener):
        """``listener(event)`` gets OrderUpdate/BalanceUpdate objects and
        ``('state', state, reconnected)`` tuples from the private stream."""
        self.hub.subscribe_user(listener)

    def user_login_refused(self, text):
        """The user stream's login/subscription was refused (``text``, the
        exchange's reason): a clock problem is resynced and logged in again
        (stream_hub.StreamHub.login_refused). Returns the event to report."""
        return self.hub.login_refused(text, self.LOGIN_CLOCK_ERRORS)

    @property
    def user_stream_live(self):
        """The user stream carries the account's events: connected and, where
        the exchange answers the subscription, confirmed."""
        return self.hub.user_stream_live

    def wait_user_stream(self, timeout):
        """Wait (at most ``timeout`` s) until the user stream carries the
        account's events or has failed; True if it carries them, False if
        not (yet), None where no stream carries them (the generic tier)."""
        self.hub.user_settled.wait(timeout)
        return self.user_stream_live

    def _on_user_message(self, stream, msg):
        self.hub.on_user_message(msg)

    def _on_user_state(self, stream, state, reconnected):
        self.hub.on_user_state(state, reconnected)

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
        """Log in/subscribe on a fresh user connection. True: the exchange
        answers the subscription, and ``parse_user_message`` returns
        ``events.SUBSCRIBED`` for that answer (the stream is LIVE from then)."""
        raise NotImplementedError

    def parse_user_message(self, msg):             # pragma: no cover - abstract
        raise NotImplementedError

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
        """(interval, payload_fn) for application pings (the profile's
        ``stream['ping']``: a dict sent as JSON, a string as text); None:
        not needed (the server pings and websocket-client answers)."""
        stream = self.profile.stream if self.profile is not None else {}
        ping = stream.get('ping')
        if ping is None:
            return None
        stamp = stream.get('ping_id')
        if isinstance(ping, str) or not stamp:
            return (stream['ping_interval'], lambda: ping)
        return (stream['ping_interval'], lambda: dict(ping, **{stamp: self._next_id()}))

    def _next_id(self):
        """A request id for stream messages (unique per store)."""
        with self._lock:
            self._msg_seq = getattr(self, '_msg_seq', 0) + 1
            return str(self._msg_seq)


def _options_key(kwargs):
    """A hashable key of a store's options (unhashable values by repr)."""
    def hashable(value):
        try:
            hash(value)
            return value
        except TypeError:
            return repr(value)
    return tuple(sorted((k, hashable(v)) for k, v in kwargs.items()))


# The rest of upstream's store module (MetaSingleton...), for drop-in imports.
import backtrader.store as _upstream_store  # noqa: E402
from ._namespace import merge_into  # noqa: E402
merge_into(globals(), _upstream_store)
