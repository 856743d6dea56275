"""BybitSimulator: Bybit v5 (spot, linear, inverse) on one host:port.

One unified account per API key, kept as a spot wallet plus one contract
wallet shared by linear and inverse perpetuals (wallet-balance reports their
sum per coin).  The same candle files drive every market: BTC/USDT data prices
spot ``BTCUSDT``, linear ``BTCUSDT`` and inverse ``BTCUSD`` (1 USD contracts).
"""
import asyncio
import random

from aiohttp import web

from .bybit import FAULT_ROUTES, BybitRest, bybit_errors, fault_reply as bybit_fault_reply
from .bybit_tpsl import PositionStops
from .bybit_ws import BybitStreams
from .clock import MarketClock, market_start_ms
from .contracts import build_contracts
from .derivatives import ISOLATED, DerivEngine
from .engine import Engine
from .server import DEFAULT_API_KEY, DEFAULT_API_SECRET, SimulatorBase, load_feeds

BYBIT_INVERSE = {'contractSize': '1', 'stepSize': '1', 'minQty': '1', 'minNotional': '0'}
VENUES = {'spot': 'spot', 'linear': 'contract', 'inverse': 'contract',
          'contract': 'contract', 'futures': 'contract'}


def _count_fees(kind, payload):
    """Engine listener: an order's ``cumExecFee`` is the sum of its fills' fees.

    The event carries a copy of the order whose ``extra`` dict is the order's
    own (a shallow copy), so the sum lands on the engine's order too."""
    if kind == 'order' and payload[2] is not None:
        order, _, trade = payload
        order.extra['cum_fee'] = order.extra.get('cum_fee', 0) + trade.commission
        order.extra['fee_asset'] = trade.commission_asset


class BybitSimulator(SimulatorBase):
    """A local Bybit v5 exchange (REST + public/private WebSocket) for tests and demos."""

    exchange = 'bybit'
    venues = VENUES
    #: fault injection data (sim/faults.py): call names -> routes, error shapes
    fault_routes = FAULT_ROUTES
    fault_reply = staticmethod(bybit_fault_reply)

    def __init__(self, data=None, start_index=500, speed=None, host='127.0.0.1', port=0,
                 api_key=DEFAULT_API_KEY, api_secret=DEFAULT_API_SECRET, balances=None,
                 contract_balances=None, fees=(0.001, 0.001), contract_fees=(0.0002, 0.00055),
                 depth_qty=1.0, liquidity=0.5, seed=0, markets=None, linear_markets=None,
                 inverse_markets=None, funding_rate=0.0001, contract_depth_qty=None,
                 ws_reply_delay=0.02, start=None):
        self.host, self._port, self.speed = host, port, speed
        #: seconds before a WebSocket control reply (subscribe, auth, ping) is sent
        self.ws_reply_delay = ws_reply_delay
        self._rng = random.Random(seed)
        now = market_start_ms(start)
        feeds, self.markets, self.symbols = load_feeds(data, start_index, markets, now)
        self.clock = MarketClock(feeds, now)
        self.engine = Engine(self.markets, lambda: self.clock.now, self.current_price,
                             fees=fees, depth_qty=depth_qty, liquidity=liquidity)
        if inverse_markets is None:
            inverse_markets = {'%s/USD:%s' % (s.split('/')[0], s.split('/')[0]): BYBIT_INVERSE
                               for s in self.symbols if s == 'BTC/USDT'}
        linear, lin_u = build_contracts(linear_markets, list(self.symbols), self.symbols,
                                        'linear', '%(base)s%(quote)s')
        inverse, inv_u = build_contracts(inverse_markets, list(self.symbols), self.symbols,
                                         'inverse', '%(base)s%(quote)s')
        self.contract_symbols = dict(lin_u, **inv_u)
        rules = dict(linear, **inverse)
        depth = contract_depth_qty or {s: 100.0 if r.inverse else 1.0 for s, r in rules.items()}
        self.contracts = DerivEngine(
            rules, lambda: self.clock.now, lambda s: feeds[rules[s].feed].price(self.clock.now),
            lambda s, ms: feeds[rules[s].feed].price(ms), fees=contract_fees,
            depth_qty=depth, liquidity=liquidity, funding_rate=funding_rate)
        self.deriv_engines = {'contract': self.contracts}
        self._by_category = {'spot': self.markets, 'linear': linear, 'inverse': inverse}
        self.secrets = {}
        self.default_key = api_key
        self._add_account(api_key, api_secret, {'USDT': 10000.0} if balances is None
                          else balances, {'USDT': 10000.0, 'BTC': 1.0}
                          if contract_balances is None else contract_balances)
        self.rest = BybitRest(self)
        self.streams = BybitStreams(self)
        for engine in (self.engine, self.contracts):
            engine.listeners.append(_count_fees)   # first: every reply shows the fee
        # TP/SL before the streams: the position update a fill sends shows its stops
        self.tpsl = PositionStops(self)
        self.engine.listeners.append(lambda k, p: self.streams.on_engine_event('spot', k, p))
        self.contracts.listeners.append(
            lambda k, p: self.streams.on_engine_event('contract', k, p))
        self._init_runtime(seed)

    # -- lookups (loop side) --------------------------------------------------------------
    def category_markets(self, cat):
        return self._by_category.get(cat, {})

    def category_engine(self, cat):
        return self.engine if cat == 'spot' else self.contracts

    def category_of(self, symbol):
        return 'inverse' if self.contracts.markets[symbol].inverse else 'linear'

    def feed_of(self, cat, symbol):
        rules = self.category_markets(cat)[symbol]
        return self.clock.feeds[rules.feed or symbol]

    def market_price(self, cat, symbol):
        return self.feed_of(cat, symbol).price(self.clock.now)

    def all_markets(self):
        return [r for d in self._by_category.values() for r in d.values()]

    def account_margin_mode(self, key):
        acct = self.contracts.accounts[key]
        return ISOLATED if acct.mode and ISOLATED in acct.mode.values() else 'cross'

    async def open_ws(self, request, channel='public'):
        """Accept a WebSocket (Bybit clients ping; the server does not).

        ``channel``: 'public' or 'private', for the fault injection.
        """
        self.faults.admit_ws(channel)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.faults.track_ws(ws, channel)
        return ws, asyncio.get_running_loop().create_future()

    # -- accounts ------------------------------------------------------------------------
    def _add_account(self, key, secret, balances, contract_balances):
        self.secrets[key] = secret
        self.engine.add_account(key, secret, balances)
        self.contracts.add_account(key, secret, contract_balances)

    def add_account(self, api_key, api_secret, balances=None, contract_balances=None):
        self._call(self._add_account, api_key, api_secret, balances, contract_balances)

    # -- hooks of SimulatorBase --------------------------------------------------------------
    def _middlewares(self):
        return [bybit_errors]

    def _add_routes(self, app):
        self.rest.add_routes(app)
        app.router.add_post('/v5/position/trading-stop', self.tpsl.trading_stop)
        self.streams.add_routes(app)

    def _publish(self, before, now, segments):
        self.streams.publish(before, now)

    async def _flush(self):
        await self.streams.flush()

    async def _close_streams(self):
        await self.streams.close_all()

    def _subscriber_count(self, topic):
        return self.streams.subscriber_count(topic)

    def _user_count(self, venue, key):
        return self.streams.private_count(key)

    def expire_user_streams_now(self):
        """Bybit's private stream has no listenKey and no subscription that
        expires: an authenticated connection lasts until it is closed."""
        raise NotImplementedError('Bybit user streams do not expire (no listenKey); '
                                  'use faults.drop_ws("private") instead')
