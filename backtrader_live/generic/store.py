"""The generic tier: any exchange ccxt knows, through ccxt (REST) and ccxt.pro.

A store class per exchange id is made from data (profile.py) by
:func:`generic_store`; it subclasses the generic :class:`~backtrader_live.store.Store`,
so the broker's order/fill/reconcile logic, the risk gate and the feed's
backfill, closed-bar and DELAYED logic are the native tiers' own. Only the
streams differ: instead of websocket-client streams with hand-written
payload parsers, ccxt.pro's watchers run on one asyncio loop in one named
thread (loop.py), bridged to the same callbacks (bars.py, user.py). Where an
exchange has no stream, REST polling stands in, and the store says so at
start (one log line and one store notification per missing capability).
"""
import logging
import math
import threading
import time
import urllib.request

import ccxt

from ..secrets import Secret, resolve_password  # noqa: F401 (re-exported)
from ..errors import ConfigError, FatalError, LiveError, OrderNotFound, OrderRejected
from ..feed import DataBase
from ..markets import SPOT, kind_of
from ..derivatives import DerivativesBroker
from ..stream import LIVE
from ..store import Store
from . import profile
from .bars import PolledBars, StreamBars
from .loop import ProLoop
from .user import UserStreams

log = logging.getLogger(__name__)


class GenericData(DataBase):
    """Live candles of any ccxt exchange: closed bars only (bars.py)."""


class GenericBroker(DerivativesBroker):
    """The live broker on the generic tier; paper trading by default."""


class GenericStore(Store):
    """Base of the per-exchange generic stores (see :func:`generic_store`)."""

    params = (
        ('password', None),        # passphrase (OKX, KuCoin...): or <EXCHANGE>_API_PASSPHRASE
        ('ws_urls', None),         # {'spot': url or '/path', 'ws-api.spot': ...}: overrides
        ('poll_interval', 5.0),    # seconds between REST polls where there is no stream
    )

    generic = True
    CLIENT_IDS = True            # ccxt takes clientOrderId for this exchange (profile.py)
    # ccxt.pro subscribes as the watch starts; LIVE is told at the next tick
    # with the socket up (bars.py), after the history as a rule: no sign of a
    # late subscription, and a REST call at every start (the stream's own copy
    # of a bar closing meanwhile comes SETTLE_MS late, so REST's would win, as
    # DELAYED)
    CATCH_UP_FIRST_SUBSCRIPTION = False
    EXPIRED_WHEN = None
    BrokerCls = GenericBroker
    DataCls = GenericData

    @classmethod
    def get_instance(cls, apikey=None, secret=None, testnet=True, market_type='spot',
                     **kwargs):
        # The passphrase enters the instance key as a digest (Secret), never as text.
        kwargs['password'] = resolve_password(kwargs.get('password'), cls.env_prefix)
        return super().get_instance(apikey=apikey, secret=secret, testnet=testnet,
                                    market_type=market_type, **kwargs)

    def __init__(self, apikey=None, secret=None):
        self._password = resolve_password(self.p.password, self.env_prefix)
        self.p.password = self._password          # masked wherever params are shown
        self._loop = None
        self._bar_watchers = {}
        self._user = None
        self._async_clients = {}
        self._currencies = None
        self._time_offset = 0
        self._announced = False
        self._lookup_direct = True   # fetch_order by client id works (until it fails)
        _check_options(self.p.poll_interval, self.p.ws_urls)
        super().__init__(apikey=apikey, secret=secret)
        if self.has_credentials and profile.needs_password(self.ccxt_id) and not self._password:
            raise ConfigError('%s needs a passphrase with its API key: pass password=... or '
                              'set %s_API_PASSPHRASE' % (self.exchange_name, self.env_prefix))

    def _secrets(self):
        return super()._secrets() + ((self._password.value,) if self._password else ())

    # -- the ccxt clients ----------------------------------------------------------
    def _make_exchange(self):
        exchange = super()._make_exchange()
        self._prepare(exchange)
        return exchange

    def _prepare(self, exchange):
        exchange.password = self._password.value
        for cap in profile.HAS_OFF.get(self.ccxt_id, ()):
            exchange.has[cap] = False

    def _configure_urls(self, exchange):
        if self.p.testnet and not self.p.endpoint and not profile.describe(
                self.ccxt_id)['sandbox']:
            raise ConfigError('%s has no testnet in ccxt: pass testnet=False (paper_trading='
                              'True trades on paper with live data)' % self.exchange_name)
        super()._configure_urls(exchange)

    def _async_client(self, markets, currencies):
        """A ccxt.pro client (ccxt's asyncio one if ccxt.pro lacks the exchange),
        configured like the REST one; made on the loop's thread."""
        import ccxt.async_support
        import ccxt.pro
        module = ccxt.pro if profile.describe(self.ccxt_id)['pro'] else ccxt.async_support
        options = dict(self.MARKET_TYPES[self.kind])
        if self.p.recv_window:
            options['recvWindow'] = int(self.p.recv_window)
        options['timeDifference'] = self._time_offset
        client = getattr(module, self.ccxt_id)({
            'apiKey': self._creds.apikey, 'secret': self._creds.secret,
            'enableRateLimit': bool(self.p.rate_limit), 'timeout': int(self.p.timeout * 1000), 'options': options})
        self._prepare(client)
        self._keepalive(client)
        self._point_urls(client)
        proxy = self._resolve_proxy()
        if proxy:
            client.httpsProxy = proxy if self._is_https() else None
            client.httpProxy = None if self._is_https() else proxy
            client.wsProxy = proxy
        client.set_markets(markets, currencies)
        return client

    def _point_urls(self, client):
        """REST and WebSocket URLs: the endpoint's origin (paths kept), or
        the testnet; then ``ws_urls`` overrides, every key of it used."""
        if self.p.endpoint:
            ws = client.urls['api'].get('ws')
            client.urls['api'] = self.rest_urls(self.p.endpoint.rstrip('/'), client.urls['api'])
            if ws is not None:
                client.urls['api']['ws'] = _map_urls(ws, lambda key, url: _ws_origin(
                    url, self.p.endpoint))
        elif self.p.testnet:
            client.set_sandbox_mode(True)
        given = dict(self.p.ws_urls or {})
        if given:
            known = []
            client.urls['api']['ws'] = _map_urls(client.urls['api'].get('ws') or {},
                                                 lambda key, url: known.append(key) or
                                                 self._ws_override(given.get(key), url))
            unknown = sorted(set(given) - set(known))
            if unknown:
                raise ConfigError('ws_urls: unknown key(s) %s; ccxt.pro %s has: %s'
                                  % (', '.join(unknown), self.ccxt_id, ', '.join(known)))

    def _keepalive(self, client):
        """ccxt.pro pings every ``stream_heartbeat`` s and gives a socket up
        when no pong came for about ``stream_timeout`` s: the same two
        options as the native streams, for the private sockets too."""
        streaming = getattr(client, 'streaming', None)
        if not isinstance(streaming, dict):
            return
        beat, timeout = float(self.p.stream_heartbeat), float(self.p.stream_timeout)
        client.streaming = dict(streaming, keepAlive=int(beat * 1000),
                                maxPingPongMisses=max(2, math.ceil(timeout / beat)))

    def _ws_override(self, url, default):
        """A ``ws_urls`` value: a full URL, or a path on the endpoint's origin."""
        if url is None:
            return default
        if not url.startswith('/'):
            return url
        if not self.p.endpoint:
            raise ConfigError('ws_urls: the path %r needs an endpoint (or give a full '
                              'wss:// URL)' % url)
        return _ws_origin('', self.p.endpoint) + url

    def _client(self, role):
        """The async client for 'market' or 'user' streams (one each: a
        market reconnect must not drop the private sockets)."""
        if role not in self._async_clients:
            markets = self.get_markets()
            self._currencies = self.exchange.currencies
            self._async_clients[role] = self._pro_loop().call(self._renew, role)
        return self._async_clients[role]

    def _renew(self, role):
        """A new async client for ``role`` (on the loop's thread), closed at stop."""
        # self._markets, not get_markets(): its lock may be held by the thread
        # waiting for this call (subscribe_bars); they were loaded by _client.
        client = self._async_client(self._markets, self._currencies)
        self._async_clients[role] = client
        self._loop.on_close(client.close)
        return client

    def _pro_loop(self):
        if self._loop is None:
            self._loop = ProLoop('bt-live-%s-ccxtpro' % self.exchange_name).start()
        return self._loop

    # -- clock -------------------------------------------------------------------------
    @property
    def time_offset(self):
        """ms our clock is ahead of the exchange's (ccxt's timeDifference)."""
        return self._time_offset

    @time_offset.setter
    def time_offset(self, ms):
        self._time_offset = int(ms)

    def secrets(self):
        """What to redact from texts (key, secret, passphrase)."""
        return self._secrets()

    def server_ms(self):
        """Now on the exchange's clock (offset from the last sync), from any thread."""
        return int(time.time() * 1000) - self._time_offset

    def sync_time(self):
        before = self._time_offset
        super().sync_time()
        self._time_offset = int(self.exchange.options.get('timeDifference') or 0)
        if self._user is not None and abs(self._time_offset - before) > 1000:
            # Private subscriptions signed on the old clock may have been refused
            # without a word from ccxt.pro: make them again on the new one.
            self._user.resubscribe()

    def _sync_once(self):
        if not self._time_synced and profile.describe(self.ccxt_id)['has'].get('fetchTime'):
            try:
                self.sync_time()
            except LiveError as exc:
                log.warning('%s: no server time (%s): closing bars by the local clock',
                            self.exchange_name, exc)
            self._time_synced = True

    # -- streams ---------------------------------------------------------------------------
    def bar_topic(self, symbol, timeframe):
        return '%s|%s' % (symbol, timeframe)

    def subscribe_bars(self, symbol, timeframe, callback, on_state=None):
        """Closed bars of ``symbol``/``timeframe`` to ``callback(Bar)``;
        ``on_state(state, reconnected)`` as the native streams do."""
        topic = self.bar_topic(symbol, timeframe)
        self._sync_once()
        with self._lock:
            first = topic not in self._bar_subs
            self._bar_subs.setdefault(topic, []).append((callback, on_state))
            if first:
                self._start_bars(topic, symbol, timeframe)
        return topic

    def _start_bars(self, topic, symbol, timeframe):
        client = self._client('market')
        args = (self, client, self._loop, symbol, timeframe,
                lambda bar: self._deliver_bar(topic, bar),
                lambda state, again: self._bar_state(topic, state, again))
        if profile.has_stream(self.ccxt_id, 'watchOHLCV'):
            watcher = StreamBars(*args, silence=self.p.stream_timeout)
        else:
            watcher = PolledBars(*args, interval=self.p.poll_interval)
        self._bar_watchers[topic] = watcher
        self._loop.spawn(watcher.run, name='bars-' + topic)

    def _deliver_bar(self, topic, bar):
        for callback, _ in tuple(self._bar_subs.get(topic, ())):
            callback(bar)

    def _bar_state(self, topic, state, reconnected):
        for _, on_state in tuple(self._bar_subs.get(topic, ())):
            if on_state is not None:
                on_state(state, reconnected)

    def subscribe_user(self, listener):
        """OrderUpdate/BalanceUpdate/PositionUpdate events and ``('state',
        state, reconnected)`` tuples from ccxt.pro's private watchers."""
        if not self.has_credentials:
            raise FatalError('the user-data stream needs an API key and secret')
        with self._lock:
            self._user_listeners.append(listener)
            if self._user is None:
                self._user = UserStreams(self, self._client('user'), self._loop,
                                         self._emit_user, self._user_state,
                                         renew=lambda: self._renew('user'),
                                         settled=self.hub.user_settled)
                self._user.start()

    def _emit_user(self, event):
        for listener in tuple(self._user_listeners):
            listener(event)
        self.wake_feeds()

    def _user_state(self, state, reconnected):
        self._on_user_state(None, state, reconnected)

    @property
    def user_stream_live(self):
        # Without streamed orders and fills the broker polls REST (its rest_poll_interval).
        return self._user is not None and self._user.state == LIVE and self._user.complete

    def wait_user_stream(self, timeout):
        if self._user is None or not self._user.complete:
            return None     # orders and fills not both streamed: REST polls, said at start
        return super().wait_user_stream(timeout)

    @property
    def is_connected(self):
        watchers = list(self._bar_watchers.values())
        user_ok = self._user is None or self._user.state == LIVE
        return self._connected and user_ok and all(w.state == LIVE for w in watchers)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, data=None, broker=None):
        super().start(data=data, broker=broker)
        if not self._announced:
            self._announced = True
            for text in self.promises_not_kept():
                log.warning('%s (generic tier): %s', self.exchange_name, text)
                self.put_notification('generic tier: ' + text)

    def promises_not_kept(self):
        """One sentence per promise this exchange does not let us keep."""
        out = ['no %s stream (ccxt.pro %s): %s' % (purpose, cap, instead)
               for cap, purpose, instead in profile.missing_streams(
                   self.ccxt_id, self.kind, self.p.poll_interval)]
        if not self.CLIENT_IDS:
            out.append('no client order ids in ccxt: a create whose answer is lost cannot be '
                       'resolved by id; it is reported Rejected after the receive window and '
                       'may exist on the exchange (it is never sent twice)')
        return out

    def trigger_params(self, price, rising=None):
        params = {'triggerPrice': price}
        if rising is not None and profile.needs_trigger_direction(self.ccxt_id, self.kind):
            # ccxt's unified values (its features say this market needs one)
            params['triggerDirection'] = 'ascending' if rising else 'descending'
        return params

    @property
    def order_types(self):
        """What ccxt says the exchange takes (generic/profile.order_types)."""
        return profile.order_types(self.ccxt_id)

    def stop(self):
        """Stop the watchers' loop (closing every ccxt.pro socket), join it."""
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.stop()
        self._async_clients.clear()
        self._bar_watchers.clear()
        self._user = None
        self._announced = False
        super().stop()

    # -- account -----------------------------------------------------------------------------
    def _balances(self):
        out = super()._balances()
        if self.kind != SPOT and self.ccxt_id in profile.TOTAL_INCLUDES_UPNL:
            # ccxt's total counts open positions' PnL: the wallet is without it.
            upnl = {}
            for p in self.position_updates():
                settle = (self.get_markets().get(p.symbol) or {}).get('settle')
                upnl[settle] = upnl.get(settle, 0.0) + (p.unrealized_pnl or 0.0)
            for asset, row in out.items():
                row['wallet'] = row['total'] - upnl.get(asset, 0.0)
        return out

    def position_updates(self, symbols=None, params=None):
        key = profile.POSITIONS_PER_SETTLE.get(self.ccxt_id)
        if symbols or params or not key:
            return super().position_updates(symbols, params)
        coins = sorted({m['settle'] for m in self.get_markets().values()
                        if kind_of(m) == self.kind and m.get('settle')})
        found = []
        for coin in coins:
            found += super().position_updates(None, {key: coin})
        return found

    # -- orders by client id -------------------------------------------------------------------
    def create_order(self, symbol, type_, side, amount, price=None, params=None):
        params = dict(params or {})
        if not self.CLIENT_IDS:
            params.pop(self.CLIENT_ID_PARAM, None)
        return super().create_order(symbol, type_, side, amount, price, params)

    def cancel_order(self, order_id, symbol, params=None):
        params = dict(params or {})
        if order_id or not self.CLIENT_IDS:
            params.pop(self.CLIENT_ID_PARAM, None)    # the exchange's id says it all
        return super().cancel_order(order_id, symbol, params)

    def fetch_order_by_client_id(self, client_id, symbol, conditional=False):
        """The order with our client id, or None: ``fetch_order`` by client id
        where ccxt supports it, else a scan of open and recent orders."""
        if not self.CLIENT_IDS:
            return None
        if self._lookup_direct:
            try:
                found = self.call('fetch_order', None, symbol, self.client_id_query(client_id))
                if found and found.get('clientOrderId') in (client_id, None):
                    return found
            except OrderNotFound:
                pass        # maybe only this lookup does not see it: scan too
            except (OrderRejected, FatalError) as exc:    # ccxt cannot look up by client id
                log.info('%s: fetch_order by client id unsupported (%s); scanning orders',
                         self.exchange_name, exc)
                self._lookup_direct = False
        return self._scan_orders(client_id, symbol)

    def _scan_orders(self, client_id, symbol):
        has = profile.describe(self.ccxt_id)['has']
        for method in ('fetch_open_orders', 'fetch_closed_orders', 'fetch_orders'):
            if not has.get(_camel(method)):
                continue
            for order in self.call(method, symbol):
                if order.get('clientOrderId') == client_id:
                    return order
        return None

    def fetch_order_trades(self, order_id, symbol, since=None):
        if profile.describe(self.ccxt_id)['has'].get('fetchOrderTrades'):
            try:
                return self.call('fetch_order_trades', order_id, symbol, since)
            except FatalError as exc:    # NotSupported for this market (Binance futures)
                log.debug('fetch_order_trades: %s; filtering fetch_my_trades', exc)
        return [t for t in self.call('fetch_my_trades', symbol, since)
                if str(t.get('order')) == str(order_id)]


def _check_options(poll_interval, ws_urls):
    if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)) \
            or not poll_interval > 0:
        raise ConfigError('poll_interval must be a number of seconds > 0, got %r'
                          % (poll_interval,))
    if ws_urls is not None and not (isinstance(ws_urls, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in ws_urls.items())):
        raise ConfigError("ws_urls must be a dict of ccxt.pro URL keys to URLs or paths, "
                          "e.g. {'spot': '/stream', 'ws-api.spot': 'wss://host/ws-api/v3'}, "
                          "got %r" % (ws_urls,))


def _camel(name):
    head, *rest = name.split('_')
    return head + ''.join(p.capitalize() for p in rest)


def _map_urls(table, fn, prefix=''):
    """ccxt's nested URL table with ``fn(dotted key, url)`` applied to each URL."""
    if isinstance(table, str):
        return fn(prefix or 'ws', table)     # a single URL (OKX): its key is 'ws'
    return {key: _map_urls(value, fn, key if not prefix else prefix + '.' + key)
            for key, value in table.items()}


def _ws_origin(url, endpoint):
    """'wss://stream.x.com:9443/ws' -> 'ws://127.0.0.1:port/ws' for an http endpoint."""
    origin = endpoint.rstrip('/').replace('https://', 'wss://', 1).replace('http://', 'ws://', 1)
    return origin + urllib.request.urlparse(url).path if url else origin


_CLASSES = {}
_CLASSES_LOCK = threading.Lock()


def generic_store(name):
    """The generic store class for a ccxt exchange id ('okx', 'ccxt:binance')."""
    ccxt_id = profile.exchange_id(name)
    if ccxt_id not in ccxt.exchanges:
        raise ConfigError('%r is not an exchange ccxt knows; see ccxt.exchanges' % (name,))
    with _CLASSES_LOCK:
        cls = _CLASSES.get(ccxt_id)
        if cls is None:
            cls = type('%sGenericStore' % ccxt_id.capitalize(), (GenericStore,), dict(
                exchange_name=ccxt_id, env_prefix=ccxt_id.upper(), ccxt_id=ccxt_id,
                MARKET_TYPES=profile.market_types(ccxt_id),
                TIMEFRAMES=profile.timeframes(ccxt_id),
                OHLCV_PAGE_LIMIT=profile.OHLCV_PAGE_LIMITS.get(ccxt_id,
                                                              profile.DEFAULT_PAGE_LIMIT),
                CLIENT_IDS=profile.supports_client_ids(ccxt_id),
                __module__=__name__))
            _CLASSES[ccxt_id] = cls
        return cls
