"""BinanceSimulator: the local exchange on one host:port, in one daemon thread.

The aiohttp app (REST + WebSocket) runs on a private asyncio loop in a thread
named ``bt-live-sim-binance``.  Everything that touches the engine or the
clock runs on that loop, so the engine needs no locks; the public methods
used by tests hop onto the loop and wait for the answer.
"""
import asyncio
import logging
import math
import os
import random
import string
import threading
import time

from aiohttp import web

from . import candles as cd
from .binance import (FAULT_ROUTES, REST_KEY, BinanceRest, api_errors,
                      fault_reply as binance_fault_reply)
from .binance_futures import FuturesRest
from .binance_futures_ws import FuturesStreams
from .binance_market import MarketData
from .binance_market_ws import MarketStreams
from .binance_ws import BinanceStreams
from .clock import MarketClock, SymbolFeed, market_start_ms
from .contracts import build_contracts
from .derivatives import DerivEngine
from .engine import Engine
from .faults import Faults
from .keys import KeyPermissions
from .models import MarketRules, dec

log = logging.getLogger(__name__)

DEFAULT_API_KEY = 'bt-live-sim-key'
DEFAULT_API_SECRET = 'bt-live-sim-secret'
KNOWN_QUOTES = ('USDT', 'USDC', 'FDUSD', 'BUSD', 'TUSD', 'BTC', 'ETH', 'BNB', 'EUR', 'TRY')
# real Binance rules for the packaged markets; others get rules from their price
DEFAULT_RULES = {
    'BTCUSDT': dict(tick='0.01', step='0.00001', min_qty='0.00001', min_notional='5'),
    'ETHBTC': dict(tick='0.00001', step='0.0001', min_qty='0.0001', min_notional='0.0001'),
}


def split_symbol(symbol):
    """'BTC/USDT' -> ('BTC', 'USDT')."""
    base, _, quote = symbol.partition('/')
    if not base or not quote:
        raise ValueError('symbols are written BASE/QUOTE, got %r' % symbol)
    return base.upper(), quote.upper()


def symbol_from_path(path):
    """Guess 'BTC/USDT' from a file name like binance_BTCUSDT_1h.json."""
    stem = os.path.basename(path).split('.')[0]
    for part in stem.split('_'):
        for quote in KNOWN_QUOTES:
            if part.upper().endswith(quote) and len(part) > len(quote):
                return part[:-len(quote)].upper() + '/' + quote
    return 'BTC/USDT'


def normalise_data(data):
    """The ``data`` argument as an ordered {symbol: path}."""
    if data is None:
        return dict(cd.DEFAULT_DATA)
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        return {symbol_from_path(path): path}
    out = {}
    for symbol, path in data.items():
        if path is None:
            if symbol not in cd.DEFAULT_DATA:
                raise ValueError('no packaged data for %s: give a candle file' % symbol)
            path = cd.DEFAULT_DATA[symbol]
        out[symbol] = os.fspath(path)
    return out


def rules_for(symbol, rows, override=None):
    base, quote = split_symbol(symbol)
    sid = base + quote
    spec = dict(DEFAULT_RULES.get(sid) or _rules_from_price(rows[-1][cd.C]))
    spec.update(override or {})
    names = {'tick': 'tick', 'tickSize': 'tick', 'step': 'step', 'stepSize': 'step',
             'min_qty': 'min_qty', 'minQty': 'min_qty', 'min_notional': 'min_notional',
             'minNotional': 'min_notional', 'max_qty': 'max_qty', 'maxQty': 'max_qty'}
    fields = {names[k]: dec(v) for k, v in spec.items()}
    fields.setdefault('min_price', fields['tick'])
    return MarketRules(sid, base, quote, **fields)


def _rules_from_price(price):
    """About 6 significant digits of price and a step worth about 0.01 quote."""
    tick = 10.0 ** (math.floor(math.log10(price)) - 5)
    step = 10.0 ** min(0, math.floor(math.log10(0.01 / price)))
    return dict(tick=repr(tick), step=repr(step), min_qty=repr(step), min_notional='0')


#: ``market=`` names of the snapshot helpers -> venue
MARKET_NAMES = {'spot': 'spot', 'futures': 'fapi', 'fapi': 'fapi', 'linear': 'fapi',
                'delivery': 'dapi', 'dapi': 'dapi', 'inverse': 'dapi', 'coinm': 'dapi'}


def load_feeds(data, start_index, markets, now):
    """(feeds, spot rules, unified symbol -> id) from the ``data`` argument."""
    feeds, rules_by_id, symbols = {}, {}, {}
    for symbol, path in normalise_data(data).items():
        rows = cd.load_candles(path)
        rules = rules_for(symbol, rows, (markets or {}).get(symbol))
        idx = min(start_index, len(rows) - 1)
        feeds[rules.symbol] = SymbolFeed(rules.symbol, rows, idx, now)
        rules_by_id[rules.symbol] = rules
        symbols[symbol] = rules.symbol
    return feeds, rules_by_id, symbols


class SimulatorBase:
    """Lifecycle, market clock and snapshots shared by every simulated exchange.

    A subclass builds ``clock``, ``engine`` (spot), ``deriv_engines`` and its
    protocol objects in ``__init__`` and fills in the hooks: ``_add_routes``,
    ``_middlewares``, ``_publish``, ``_flush``, ``_close_streams``,
    ``_subscriber_count``, ``_user_count`` and ``venues`` (market name -> engine key).
    """

    exchange = 'base'
    #: ``market=`` names of the snapshot helpers -> venue
    venues = MARKET_NAMES

    def _init_runtime(self, seed=0):
        self._loop = self._thread = self._runner = self._ticker = None
        # fault injection (sim/faults.py): seeded apart from the order ids
        self.faults = Faults(self, seed)
        self._ready = threading.Event()
        self._start_error = None
        self._key_permissions = {}     # api key -> KeyPermissions (sim/keys.py)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, timeout=10):
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name='bt-live-sim-' + self.exchange,
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._start_error:
            self._thread.join(timeout)
            self._thread = None
            raise RuntimeError('simulator failed to start: %s' % self._start_error)
        return self

    def _run(self):
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._startup())
        except Exception as err:  # reported to start(), which raises it
            self._start_error = err
            self._ready.set()
            self._loop.close()
            return
        # Ready once the loop runs (not between the two calls, where a helper
        # called by the test would find it stopped and stop() would skip it).
        self._loop.call_soon(self._ready.set)
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    async def _startup(self):
        # the fault middleware is outermost: it sees the exchange's own answers
        app = web.Application(middlewares=[self.faults.middleware] + self._middlewares())
        await self.faults.start()
        self._add_routes(app)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port, reuse_address=True)
        await site.start()
        self._port = self._runner.addresses[0][1]
        if self.speed:
            self._ticker = asyncio.get_running_loop().create_task(self._run_speed())

    async def _run_speed(self):
        """Speed mode: market time runs ``speed`` times faster than the wall clock."""
        base_market, base_wall = self.clock.now, time.monotonic()
        while not self.clock.finished:
            await asyncio.sleep(0.05)
            target = base_market + int((time.monotonic() - base_wall) * self.speed * 1000)
            await self._advance(target)

    def stop(self, timeout=5):
        """Close every connection, stop the loop and join the thread."""
        if self._thread is None:
            return
        if self._loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            try:
                fut.result(timeout)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._thread = None

    async def _shutdown(self):
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        await self.faults.stop()
        await self._close_streams()
        await self._runner.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- running things on the loop ----------------------------------------------------------
    def _call(self, fn, *args, timeout=5):
        """Run ``fn`` (plain or coroutine function) on the loop; return its result."""
        async def runner():
            result = fn(*args)
            if asyncio.iscoroutine(result):
                result = await result
            return result
        if self._loop is None or not self._loop.is_running():
            raise RuntimeError('the simulator is not running')
        if threading.current_thread() is self._thread:
            raise RuntimeError('test helpers cannot be called from the simulator thread')
        return asyncio.run_coroutine_threadsafe(runner(), self._loop).result(timeout)

    async def _advance(self, target):
        before = self.clock.now
        segments = self.clock.advance_to(target)
        for seg in segments:
            self.engine.on_segment(seg)
            for engine in self.deriv_engines.values():
                engine.on_segment(seg)
        if self.clock.now > before:
            self._publish(before, self.clock.now, segments)
        await self._flush()

    async def flush_events(self):
        await self._flush()

    def current_price(self, symbol):
        """Market price of a symbol id (loop side: protocol modules call this)."""
        return self.clock.feeds[symbol].price(self.clock.now)

    def new_client_id(self):
        return ''.join(self._rng.choice(string.ascii_letters + string.digits) for _ in range(22))

    # -- the clock ---------------------------------------------------------------------------
    def step(self, bars=1, timeout=5):
        """Close the current bar(s) of the first symbol; returns the closed rows.

        Returns after matching ran and every resulting WS message was written.
        """
        if self.speed:
            raise RuntimeError('step() is for step mode (speed=None)')

        async def run():
            closed = []
            feed = self.clock.primary
            for _ in range(bars):
                target = self.clock.next_close()
                if target is None:
                    break
                before = self.clock.now
                await self._advance(target)
                closed += [list(r) for r in feed.closed_between(feed.interval, before,
                                                                self.clock.now)]
            return closed
        return self._call(run, timeout=timeout)

    def advance(self, seconds, timeout=5):
        """Move market time forward by ``seconds`` (may stay inside a bar)."""
        return self._call(lambda: self._advance(self.clock.now + int(seconds * 1000)),
                          timeout=timeout)

    def now_ms(self):
        return self.clock.now

    @property
    def finished(self):
        return self.clock.finished

    def price(self, symbol):
        """Current price of 'BTC/USDT' or 'BTCUSDT' (from a test thread)."""
        return self._call(self.current_price, self._sid(symbol))

    def _sid(self, symbol):
        return self.symbols.get(symbol) or self.contract_symbols.get(symbol, symbol)

    def venue_markets(self, venue):
        """Market rules by id of 'spot', 'fapi' or 'dapi' (loop side)."""
        return self.venue_engine(venue).markets

    def venue_engine(self, venue):
        return self.engine if venue == 'spot' else self.deriv_engines[venue]

    def _engine_for(self, market):
        venue = self.venues.get(market)
        if venue is None:
            raise ValueError('market is one of %s, got %r' % (sorted(self.venues), market))
        return self.venue_engine(venue)

    # -- addresses ----------------------------------------------------------------------------
    @property
    def port(self):
        return self._port

    @property
    def base_url(self):
        return 'http://%s:%d' % (self.host, self._port)

    @property
    def ws_url(self):
        return 'ws://%s:%d' % (self.host, self._port)

    # -- accounts and snapshots -------------------------------------------------------------------
    def _add_account(self, key, secret, balances, futures_balances, coinm_balances):
        self.engine.add_account(key, secret, balances)
        self.deriv_engines['fapi'].add_account(key, secret, futures_balances)
        self.deriv_engines['dapi'].add_account(key, secret, coinm_balances)

    def add_account(self, api_key, api_secret, balances=None, futures_balances=None,
                    coinm_balances=None):
        """A new key with its spot, USD-M and COIN-M wallets (None: nothing there)."""
        self._call(self._add_account, api_key, api_secret, balances, futures_balances,
                   coinm_balances)

    def key_permissions(self, api_key):
        """What ``api_key`` may do, as the exchange's key-info route reports it."""
        return self._key_permissions.get(api_key, KeyPermissions())

    def set_key_permissions(self, api_key=None, **changes):
        """Change what a key reports it may do: ``trading``, ``futures``,
        ``withdrawals``, ``ip_restrict`` (booleans; see sim/keys.py)."""
        key = api_key or self.default_key
        self._key_permissions[key] = self.key_permissions(key).changed(**changes)

    def set_balance(self, asset, free, locked=None, api_key=None, market='spot'):
        engine = self._engine_for(market)
        self._call(lambda: engine.set_balance(api_key or self.default_key, asset, free, locked))
        self._call(self._flush)

    def balances(self, api_key=None, market='spot'):
        """Spot: {asset: {'free', 'locked'}}; futures/delivery: {asset: {'wallet',
        'unrealized', 'margin_balance', 'position_margin', 'order_margin', 'maint',
        'available'}} (Decimal copies)."""
        engine, key = self._engine_for(market), api_key or self.default_key
        if engine is self.engine:
            return self._call(lambda: engine.accounts[key].snapshot())
        return self._call(lambda: {a: engine.balance_view(engine.accounts[key], a)
                                   for a in engine.accounts[key].wallet})

    def orders(self, api_key=None, symbol=None, market='spot'):
        engine = self._engine_for(market)
        key, sid = api_key or self.default_key, symbol and self._sid(symbol)
        return self._call(lambda: [o.copy() for o in engine.orders.values()
                                   if o.account == key and (sid is None or o.symbol == sid)])

    def trades(self, api_key=None, symbol=None, market='spot'):
        engine = self._engine_for(market)
        key, sid = api_key or self.default_key, symbol and self._sid(symbol)
        return self._call(lambda: [t.copy() for t in engine.trades
                                   if t.account == key and (sid is None or t.symbol == sid)])

    def positions(self, api_key=None, market='futures'):
        """Open positions (Position copies: symbol, size signed, entry, realized)."""
        engine = self._engine_for(market)
        return self._call(engine.positions_of, api_key or self.default_key)

    def funding_events(self, api_key=None, market=None):
        """FundingEvent copies (all derivative markets unless ``market``), oldest first."""
        engines = [self._engine_for(market)] if market else list(self.deriv_engines.values())
        return self._call(lambda: [e.copy() for eng in engines for e in eng.funding
                                   if api_key is None or e.account == api_key])

    def liquidation_price(self, symbol, api_key=None, market='futures'):
        engine, key = self._engine_for(market), api_key or self.default_key
        return self._call(lambda: engine.liquidation_price(
            engine.accounts[key], engine.accounts[key].position(self._sid(symbol))))

    # -- websocket helpers for tests --------------------------------------------------------------
    def close_ws_connections(self):
        """Drop every stream and user-data connection (clients must reconnect)."""
        self._call(self._close_streams)

    def _poll(self, deadline, fn, *args):
        """``fn`` on the loop, given until ``deadline`` to answer: a loop held up
        for a while (the client in this process collecting its garbage holds the
        GIL) delays a poll, it does not fail the whole wait early."""
        return self._call(fn, *args, timeout=max(0.5, deadline - time.monotonic()))

    def wait_subscribed(self, stream_name, count=1, timeout=5):
        """Block until ``count`` stream connections are subscribed to ``stream_name``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._poll(deadline, self._subscriber_count, stream_name) >= count:
                return True
            time.sleep(0.005)
        raise TimeoutError('%d subscriber(s) to %s not seen in %ss'
                           % (count, stream_name, timeout))

    def wait_user_subscribed(self, api_key=None, count=1, timeout=5, market='spot'):
        """Block until ``count`` user-data connections exist for the key (spot: WS-API
        subscriptions; futures/delivery: listenKey sockets)."""
        key, venue = api_key or self.default_key, self.venues[market]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._poll(deadline, self._user_count, venue, key) >= count:
                return True
            time.sleep(0.005)
        raise TimeoutError('user-data subscription for the key not seen')



class BinanceSimulator(SimulatorBase):
    """A local Binance exchange: spot (REST + streams + WS-API), USD-M and COIN-M
    futures (REST + split streams + listenKey user data), on one host:port."""

    exchange = 'binance'
    #: fault injection data (sim/faults.py): call names -> routes, error shapes
    fault_routes = FAULT_ROUTES
    fault_reply = staticmethod(binance_fault_reply)

    def __init__(self, data=None, start_index=500, speed=None, host='127.0.0.1', port=0,
                 api_key=DEFAULT_API_KEY, api_secret=DEFAULT_API_SECRET,
                 balances=None, fees=(0.001, 0.001), depth_qty=1.0, liquidity=0.5,
                 seed=0, markets=None, futures_balances=None, coinm_balances=None,
                 futures_markets=None, coinm_markets=None, futures_fees=(0.0002, 0.0005),
                 funding_rate=0.0001, futures_depth_qty=None, start=None):
        self.host, self._port, self.speed = host, port, speed
        self._rng = random.Random(seed)
        now = market_start_ms(start)
        feeds, self.markets, self.symbols = load_feeds(data, start_index, markets, now)
        self.clock = MarketClock(feeds, now)
        self.engine = Engine(self.markets, lambda: self.clock.now, self.current_price,
                             fees=fees, depth_qty=depth_qty, liquidity=liquidity)
        # the price path in time order, for trailing stops (Engine._path)
        self.engine.price_at = lambda s, ms: self.clock.feeds[s].price(ms)
        self.deriv_engines, self.contract_symbols = {}, {}
        for venue, spec, kind, fmt_id in (('fapi', futures_markets, 'linear', '%(base)s%(quote)s'),
                                          ('dapi', coinm_markets, 'inverse',
                                           '%(base)s%(quote)s_PERP')):
            rules, unified = build_contracts(spec, list(self.symbols), self.symbols, kind, fmt_id)
            self.contract_symbols.update(unified)
            self.deriv_engines[venue] = make_deriv_engine(
                self, rules, futures_fees, futures_depth_qty, liquidity, funding_rate)
        self.default_key = api_key
        self._default_balances = (
            {'USDT': 10000.0} if balances is None else balances,
            {'USDT': 10000.0} if futures_balances is None else futures_balances,
            {'BTC': 1.0} if coinm_balances is None else coinm_balances)
        self._add_account(api_key, api_secret, *self._default_balances)
        self.rest = BinanceRest(self)
        self.streams = BinanceStreams(self)
        self.futures_rest = {v: FuturesRest(self, v) for v in self.deriv_engines}
        self.futures_streams = FuturesStreams(self)
        self.market_data = {v: MarketData(self, v) for v in ('spot', 'fapi', 'dapi')}
        self.market_streams = MarketStreams(self)
        self.engine.listeners.append(self.streams.on_engine_event)
        for venue, engine in self.deriv_engines.items():
            engine.listeners.append(self.futures_streams.listener(venue))
        self._init_runtime(seed)

    # -- hooks of SimulatorBase ---------------------------------------------------------
    def _middlewares(self):
        return [api_errors]

    def _add_routes(self, app):
        app[REST_KEY] = self.rest
        self.rest.add_routes(app)
        self.streams.add_routes(app)
        for rest in self.futures_rest.values():
            rest.add_routes(app)
        self.futures_streams.add_routes(app)
        for market_data in self.market_data.values():
            market_data.add_routes(app)

    def _publish(self, before, now, segments):
        self.streams.publish(before, now, segments)

    async def _flush(self):
        await self.streams.flush()

    async def _close_streams(self):
        await self.streams.close_all()

    def _subscriber_count(self, name):
        return self.streams.subscriber_count(name)

    def expire_user_streams_now(self):
        """Fault (loop side): futures listenKeys expire, spot WS-API
        subscriptions are terminated; returns how many streams ended."""
        return self.futures_streams.expire_all() + self.streams.end_user_subscriptions()

    def _user_count(self, venue, key):
        if venue == 'spot':
            return len(self.streams.subscriber_sockets(key))
        return self.futures_streams.user_count(venue, key)


def make_deriv_engine(sim, rules, fees, depth_qty, liquidity, funding_rate):
    """A DerivEngine whose markets are priced by the simulator's candle feeds."""
    feeds = sim.clock.feeds
    if depth_qty is None:  # per book level, in each market's own units (coins/contracts)
        depth_qty = {s: 100.0 if r.inverse else 1.0 for s, r in rules.items()}
    return DerivEngine(rules, lambda: sim.clock.now,
                       lambda s: feeds[rules[s].feed].price(sim.clock.now),
                       lambda s, ms: feeds[rules[s].feed].price(ms),
                       fees=fees, depth_qty=depth_qty, liquidity=liquidity,
                       funding_rate=funding_rate)
