"""The Binance spot protocol: REST routes, request signing and payload shapes.

Everything Binance-specific about the simulator's HTTP side lives here: paths
mirror the real ones (``/api/v3/...`` and the few ``/sapi``, ``/fapi``,
``/dapi`` exchangeInfo calls an unmodified ccxt makes in ``load_markets``), signed calls are
verified exactly like the exchange does (HMAC-SHA256 over the raw query string
plus the raw body, never re-serialised), and errors carry Binance's codes.
The WebSocket side is :mod:`.binance_ws`; USD-M and COIN-M futures are
:mod:`.binance_futures`.
"""
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qsl

from aiohttp import web

from . import candles as cd
from .faults import server_ms
from .binance_shapes import (ORDER_TYPES, TRAILING_DELTA, cancel_reply, kline_row,  # noqa: F401
                             order_info, order_reply, symbol_info, trade_count, trade_info)
from .keys import binance_restrictions
from .models import EngineError, Order, dec, fmt

RECV_WINDOW_DEFAULT, RECV_WINDOW_MAX = 5000, 60000
REST_KEY = web.AppKey('rest', object)  # the BinanceRest serving an app
# what each order type must carry, besides symbol/side/type
MANDATORY = {
    'LIMIT': ('timeInForce', 'quantity', 'price'),
    'LIMIT_MAKER': ('quantity', 'price'),
    'MARKET': (),
    'STOP_LOSS': ('quantity', 'stopPrice'),
    'TAKE_PROFIT': ('quantity', 'stopPrice'),
    'STOP_LOSS_LIMIT': ('timeInForce', 'quantity', 'price', 'stopPrice'),
    'TAKE_PROFIT_LIMIT': ('timeInForce', 'quantity', 'price', 'stopPrice'),
}
# a stop triggers when the price rises to it (True) or falls to it (False)
TRIGGER_ABOVE = {('STOP_LOSS', 'BUY'): True, ('STOP_LOSS', 'SELL'): False,
                 ('TAKE_PROFIT', 'BUY'): False, ('TAKE_PROFIT', 'SELL'): True}

# engine refusal -> (HTTP status, Binance code, message)
ENGINE_ERRORS = {
    'insufficient_balance': (400, -2010, 'Account has insufficient balance for requested action.'),
    'would_trigger': (400, -2010, 'Stop price would trigger immediately.'),
    'would_take': (400, -2010, 'Order would immediately match and take.'),
    'duplicate': (400, -2010, 'Duplicate order sent.'),
    'filter_price': (400, -1013, 'Filter failure: PRICE_FILTER'),
    'filter_lot': (400, -1013, 'Filter failure: LOT_SIZE'),
    'filter_notional': (400, -1013, 'Filter failure: NOTIONAL'),
    'unknown_symbol': (400, -1121, 'Invalid symbol.'),
}
MSG_MANDATORY = "Mandatory parameter '%s' was not sent, was empty/null, or malformed."
RATE_LIMITS = [
    {'rateLimitType': 'REQUEST_WEIGHT', 'interval': 'MINUTE', 'intervalNum': 1, 'limit': 6000},
    {'rateLimitType': 'ORDERS', 'interval': 'SECOND', 'intervalNum': 10, 'limit': 100},
    {'rateLimitType': 'ORDERS', 'interval': 'DAY', 'intervalNum': 1, 'limit': 200000},
    {'rateLimitType': 'RAW_REQUESTS', 'interval': 'MINUTE', 'intervalNum': 5, 'limit': 61000},
]


class ApiError(Exception):
    """A Binance error reply: ``{"code": code, "msg": msg}`` with HTTP ``status``."""

    def __init__(self, status, code, msg):
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg

    @classmethod
    def from_engine(cls, err):
        return cls(*ENGINE_ERRORS[err.reason])


def mandatory(name):
    return ApiError(400, -1102, MSG_MANDATORY % name)


def wall_ms():
    """The server's wall clock: signed timestamps are checked against it.

    Real time unless a fault shifted it (``sim.faults.clock_offset``).
    """
    return server_ms()


def hmac_hex(secret, payload):
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def check_timestamp(params):
    """Binance's recvWindow rule: ts < now + 1000 and now - ts <= recvWindow."""
    try:
        ts = int(params['timestamp'])
    except (KeyError, ValueError):
        raise mandatory('timestamp') from None
    window = int(params.get('recvWindow') or RECV_WINDOW_DEFAULT)
    if window > RECV_WINDOW_MAX:
        raise ApiError(400, -1131, 'recvWindow must be less than 60000')
    now = wall_ms()
    if not (ts < now + 1000 and now - ts <= window):
        raise ApiError(400, -1021, 'Timestamp for this request is outside of the recvWindow.')


def select_klines(feed, params, now, max_limit):
    """(rows, interval) a klines request asks for, as Binance pages them:
    from startTime forward, else the newest; never past endTime or ``now``."""
    interval = params.get('interval')
    if not interval:
        raise mandatory('interval')
    limit = min(int(params.get('limit') or 500), max_limit)
    start, end = params.get('startTime'), params.get('endTime')
    try:
        rows, _ = feed.bars(interval, now, start=int(start) if start else None)
    except cd.IntervalError:
        raise ApiError(400, -1120, 'Invalid interval.') from None
    if end:
        rows = rows[:_count_le(rows, int(end))]
    return (rows[:limit] if start else rows[-limit:]), interval


def checked_symbol(params, markets, required=True):
    """The request's symbol if ``markets`` has it (Binance's -1121 otherwise)."""
    symbol = params.get('symbol')
    if not symbol:
        if required:
            raise mandatory('symbol')
        return None
    if symbol not in markets:
        raise ApiError(400, -1121, 'Invalid symbol.')
    return symbol


class BinanceRest:
    """aiohttp handlers of the Binance spot REST API over one simulator."""

    def __init__(self, sim):
        self.sim = sim              # the BinanceSimulator (clock, engine, markets)
        self._weight = [0, 0]       # [minute, weight used in it]

    def add_routes(self, app):
        r = app.router
        for path, handler in (
                ('ping', self.ping), ('time', self.time), ('exchangeInfo', self.exchange_info),
                ('klines', self.klines), ('uiKlines', self.klines),
                ('ticker/price', self.ticker_price), ('ticker/24hr', self.ticker_24hr),
                ('ticker/bookTicker', self.book_ticker), ('depth', self.depth),
                ('account', self.account), ('openOrders', self.open_orders),
                ('allOrders', self.all_orders), ('myTrades', self.my_trades),
                ('order', self.get_order)):
            r.add_get('/api/v3/' + path, handler)
        r.add_post('/api/v3/order', self.post_order)
        r.add_delete('/api/v3/order', self.cancel_order)
        r.add_delete('/api/v3/openOrders', self.cancel_open_orders)
        r.add_route('*', '/api/v3/userDataStream', self.listen_key_retired)
        for path in ('capital/config/getall', 'margin/allPairs', 'margin/isolated/allPairs'):
            r.add_get('/sapi/v1/' + path, self.sapi_empty)
        r.add_get('/sapi/v1/account/apiRestrictions', self.api_restrictions)

    # -- plumbing -------------------------------------------------------------------
    def reply(self, data, status=200, weight=1):
        minute = int(time.time() // 60)
        if self._weight[0] != minute:
            self._weight = [minute, 0]
        self._weight[1] += weight
        return web.Response(text=json.dumps(data, separators=(',', ':')), status=status,
                            content_type='application/json',
                            headers={'X-MBX-USED-WEIGHT-1M': str(self._weight[1])})

    def error(self, err):
        return self.reply({'code': err.code, 'msg': err.msg}, status=err.status)

    async def signed(self, request):
        """Verify key, signature and timestamp; returns (account, params)."""
        query = request.rel_url.raw_query_string
        # body_exists, not can_read_body: a body read earlier (the fault
        # middleware reads it before a delay) is cached and still counts
        body = await request.text() if request.body_exists else ''
        key = request.headers.get('X-MBX-APIKEY')
        if not key:
            raise ApiError(401, -2014, 'API-key format invalid.')
        acct = self.sim.engine.accounts.get(key)
        if acct is None:
            raise ApiError(401, -2015, 'Invalid API-key, IP, or permissions for action.')
        total = query + body  # Binance's totalParams: raw query then raw body
        cut = total.rfind('signature=')
        if cut < 0:
            raise mandatory('signature')
        payload = total[:cut].rstrip('&') if cut == 0 or total[cut - 1] == '&' else None
        signature = total[cut + len('signature='):].split('&', 1)[0]
        if payload is None or not hmac.compare_digest(hmac_hex(acct.secret, payload), signature):
            raise ApiError(400, -1022, 'Signature for this request is not valid.')
        params = dict(parse_qsl(query, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        check_timestamp(params)
        return acct, params

    def market(self, params, required=True):
        return checked_symbol(params, self.sim.markets, required)

    # -- public ---------------------------------------------------------------------
    async def ping(self, request):
        return self.reply({})

    async def time(self, request):
        return self.reply({'serverTime': wall_ms()})

    async def exchange_info(self, request):
        params = dict(request.query)
        wanted = None
        if 'symbol' in params:
            wanted = [self.market(params)]
        elif 'symbols' in params:
            wanted = json.loads(params['symbols'])
            for s in wanted:
                self.market({'symbol': s})
        symbols = [symbol_info(r) for s, r in self.sim.markets.items()
                   if wanted is None or s in wanted]
        return self.reply({'timezone': 'UTC', 'serverTime': wall_ms(),
                           'rateLimits': RATE_LIMITS, 'exchangeFilters': [],
                           'symbols': symbols}, weight=20)

    async def sapi_empty(self, request):
        await self.signed(request)
        return self.reply([])

    async def api_restrictions(self, request):
        # one answer for the key, whichever market it trades (spot, USD-M, COIN-M)
        acct, _ = await self.signed(request)
        return self.reply(binance_restrictions(self.sim.key_permissions(acct.key)))

    async def listen_key_retired(self, request):
        # spot listenKeys are retired: user data comes over the WS-API (/ws-api/v3)
        return self.reply({'code': -1099, 'msg': 'Not found, authenticated, or authorized'},
                          status=410)

    async def klines(self, request):
        params = dict(request.query)
        symbol = self.market(params)
        feed = self.sim.clock.feeds[symbol]
        rows, interval = select_klines(feed, params, self.sim.clock.now, max_limit=1000)
        return self.reply([kline_row(r, feed.bar_end(r[0], interval)) for r in rows], weight=2)

    async def ticker_price(self, request):
        symbol = self.market(dict(request.query), required=False)
        items = [{'symbol': s, 'price': fmt(self.sim.current_price(s))}
                 for s in ([symbol] if symbol else self.sim.markets)]
        return self.reply(items[0] if symbol else items, weight=2)

    async def ticker_24hr(self, request):
        symbol = self.market(dict(request.query), required=False)
        items = [self.ticker(s) for s in ([symbol] if symbol else self.sim.markets)]
        return self.reply(items[0] if symbol else items, weight=2)

    def ticker(self, symbol):
        """24h statistics from the last 24 hours of market time."""
        return self.sim.market_data['spot'].ticker(symbol)

    async def book_ticker(self, request):
        symbol = self.market(dict(request.query), required=False)
        items = [self.book_top(s) for s in ([symbol] if symbol else self.sim.markets)]
        return self.reply(items[0] if symbol else items, weight=2)

    def book_top(self, symbol):
        bid, ask = self.sim.engine.best(symbol)
        qty = fmt(self.sim.engine.level_qty(symbol))
        return {'symbol': symbol, 'bidPrice': fmt(bid), 'bidQty': qty,
                'askPrice': fmt(ask), 'askQty': qty}

    async def depth(self, request):
        params = dict(request.query)
        symbol = self.market(params)
        limit = min(int(params.get('limit') or 100), 5000)
        engine = self.sim.engine
        bid, ask = engine.best(symbol)
        tick, qty = engine.markets[symbol].tick, fmt(engine.level_qty(symbol))
        levels = range(min(limit, 1000))
        return self.reply({
            'lastUpdateId': self.sim.clock.now,
            'bids': [[fmt(bid - k * tick), qty] for k in levels if bid - k * tick > 0],
            'asks': [[fmt(ask + k * tick), qty] for k in levels]}, weight=5)

    # -- account and orders --------------------------------------------------------------
    async def account(self, request):
        acct, _ = await self.signed(request)
        return self.reply({
            'makerCommission': int(self.sim.engine.maker_fee * 10000),
            'takerCommission': int(self.sim.engine.taker_fee * 10000),
            'buyerCommission': 0, 'sellerCommission': 0,
            'commissionRates': {'maker': fmt(self.sim.engine.maker_fee),
                                'taker': fmt(self.sim.engine.taker_fee),
                                'buyer': fmt(0), 'seller': fmt(0)},
            'canTrade': True, 'canWithdraw': True, 'canDeposit': True, 'brokered': False,
            'requireSelfTradePrevention': False, 'preventSor': False,
            'updateTime': self.sim.clock.now, 'accountType': 'SPOT',
            'balances': [{'asset': a, 'free': fmt(f), 'locked': fmt(l)}
                         for a, (f, l) in sorted(acct.balances.items())],
            'permissions': ['SPOT'], 'uid': 0}, weight=20)

    async def post_order(self, request):
        acct, params = await self.signed(request)
        order = self.parse_order(acct.key, params)
        try:
            self.sim.engine.place(order)
        except EngineError as err:
            raise ApiError.from_engine(err) from None
        finally:
            await self.sim.flush_events()
        kind = params.get('newOrderRespType') or (
            'FULL' if order.type in ('MARKET', 'LIMIT') else 'ACK')
        return self.reply(order_reply(order, kind, self.sim.engine.trades))

    async def test_order(self, request):
        """POST /api/v3/order/test: validated like a real order, nothing placed."""
        acct, params = await self.signed(request)
        order = self.parse_order(acct.key, params)
        try:
            self.sim.engine.check(order)
        except EngineError as err:
            raise ApiError.from_engine(err) from None
        if str(params.get('computeCommissionRates')).lower() != 'true':
            return self.reply({})
        maker, taker = fmt(self.sim.engine.maker_fee), fmt(self.sim.engine.taker_fee)
        return self.reply({'standardCommissionForOrder': {'maker': maker, 'taker': taker},
                           'specialCommissionForOrder': {'maker': fmt(0), 'taker': fmt(0)},
                           'taxCommissionForOrder': {'maker': fmt(0), 'taker': fmt(0)},
                           'discount': {'enabledForAccount': False, 'enabledForSymbol': False,
                                        'discountAsset': 'BNB', 'discount': fmt(0)}}, weight=20)

    def parse_order(self, key, params):
        """A Binance new-order request as an engine Order (id assigned on place)."""
        symbol = self.market(params)
        for name in ('side', 'type'):
            if not params.get(name):
                raise mandatory(name)
        side, otype = params['side'], params['type']
        if side not in ('BUY', 'SELL'):
            raise ApiError(400, -1100, "Illegal characters found in parameter 'side'; "
                                       "legal range is 'BUY, SELL'.")
        if otype not in MANDATORY:
            raise ApiError(400, -1116, 'Invalid orderType.')
        trailing = params.get('trailingDelta')
        for name in MANDATORY[otype]:
            # a trailing stop's stopPrice is optional: without it tracking starts at once
            if not params.get(name) and not (name == 'stopPrice' and trailing):
                raise mandatory(name)
        if otype == 'MARKET' and not (params.get('quantity') or params.get('quoteOrderQty')):
            raise mandatory('quantity')
        base = otype.replace('_LIMIT', '')
        order = Order(
            id=0, client_id=params.get('newClientOrderId') or self.sim.new_client_id(),
            account=key, symbol=symbol, side=side, type=otype,
            qty=dec(params.get('quantity') or 0), price=dec(params.get('price') or 0),
            stop_price=dec(params.get('stopPrice') or 0),
            trigger_above=TRIGGER_ABOVE.get((base, side), False),
            is_limit=otype in ('LIMIT', 'LIMIT_MAKER', 'STOP_LOSS_LIMIT', 'TAKE_PROFIT_LIMIT'),
            post_only=otype == 'LIMIT_MAKER',
            quote_qty=dec(params.get('quoteOrderQty') or 0) if otype == 'MARKET' else dec(0),
            tif=params.get('timeInForce') or 'GTC', triggered=base not in TRIGGER_ABOVE_TYPES)
        if trailing:
            add_trailing(order, trailing, base)
        return order

    def find_order(self, key, params):
        symbol = self.market(params)
        oid, cid = params.get('orderId'), params.get('origClientOrderId')
        if not oid and not cid:
            raise ApiError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, "
                                       "but both were empty/null!")
        return symbol, (int(oid) if oid else None), cid

    async def get_order(self, request):
        acct, params = await self.signed(request)
        symbol, oid, cid = self.find_order(acct.key, params)
        order = self.sim.engine.find(acct.key, symbol, oid, cid)
        if order is None:
            raise ApiError(400, -2013, 'Order does not exist.')
        return self.reply(order_info(order), weight=4)

    async def cancel_order(self, request):
        acct, params = await self.signed(request)
        symbol, oid, cid = self.find_order(acct.key, params)
        tag = params.get('newClientOrderId') or self.sim.new_client_id()
        try:
            order = self.sim.engine.cancel(acct.key, symbol, oid, cid, tag)
        except EngineError:
            raise ApiError(400, -2011, 'Unknown order sent.') from None
        finally:
            await self.sim.flush_events()
        return self.reply(cancel_reply(order))

    async def cancel_open_orders(self, request):
        acct, params = await self.signed(request)
        symbol = self.market(params)
        out = []
        for order in self.sim.engine.open_orders(acct.key, symbol):
            out.append(cancel_reply(self.sim.engine.cancel(
                acct.key, symbol, order.id, tag=self.sim.new_client_id())))
        await self.sim.flush_events()
        if not out:
            raise ApiError(400, -2011, 'Unknown order sent.')
        return self.reply(out)

    async def open_orders(self, request):
        acct, params = await self.signed(request)
        symbol = self.market(params, required=False)
        orders = self.sim.engine.open_orders(acct.key, symbol)
        return self.reply([order_info(o) for o in orders], weight=6 if symbol else 80)

    async def all_orders(self, request):
        acct, params = await self.signed(request)
        symbol = self.market(params)
        orders = [o for o in self.sim.engine.orders.values()
                  if o.account == acct.key and o.symbol == symbol]
        orders = _window(orders, params, id_key='orderId', id_of=lambda o: o.id,
                         time_of=lambda o: o.time)
        return self.reply([order_info(o) for o in orders], weight=20)

    async def my_trades(self, request):
        acct, params = await self.signed(request)
        symbol = self.market(params)
        trades = [t for t in self.sim.engine.trades
                  if t.account == acct.key and t.symbol == symbol]
        if params.get('orderId'):
            trades = [t for t in trades if t.order_id == int(params['orderId'])]
        trades = _window(trades, params, id_key='fromId', id_of=lambda t: t.id,
                         time_of=lambda t: t.time)
        return self.reply([trade_info(t) for t in trades], weight=20)


TRIGGER_ABOVE_TYPES = ('STOP_LOSS', 'TAKE_PROFIT')


def add_trailing(order, bips, base):
    """Make a STOP_LOSS/TAKE_PROFIT(_LIMIT) order a trailing stop of ``bips``: it
    tracks from now, or from when the price meets its stopPrice (engine.Engine._trail)."""
    if base not in TRIGGER_ABOVE_TYPES:
        raise ApiError(400, -1013, 'Filter failure: TRAILING_DELTA')
    delta = int(bips)
    if not TRAILING_DELTA[0] <= delta <= TRAILING_DELTA[1]:
        raise ApiError(400, -1013, 'Filter failure: TRAILING_DELTA')
    order.extra['trailing_delta'] = delta
    order.extra['trail'] = {'delta': dec(delta) / 10000, 'activation': order.stop_price or None,
                            'activate_above': order.trigger_above, 'extreme': None}


def _count_le(rows, end):
    n = 0
    for r in rows:
        if r[0] > end:
            break
        n += 1
    return n


def _window(items, params, id_key, id_of, time_of):
    """Binance's list filters: an id to start from, a time range, a limit."""
    limit = min(int(params.get('limit') or 500), 1000)
    if params.get(id_key):
        start = int(params[id_key])
        return [i for i in items if id_of(i) >= start][:limit]
    start, end = params.get('startTime'), params.get('endTime')
    if start:
        items = [i for i in items if time_of(i) >= int(start)]
    if end:
        items = [i for i in items if time_of(i) <= int(end)]
    return items[:limit] if start else items[-limit:]


@web.middleware
async def api_errors(request, handler):
    """Turn ApiError into Binance's JSON error body."""
    try:
        return await handler(request)
    except ApiError as err:
        return request.app[REST_KEY].error(err)
    except (ValueError, json.JSONDecodeError):
        return request.app[REST_KEY].error(
            ApiError(400, -1100, 'Illegal characters found in a parameter.'))


# -- fault injection (sim/faults.py): Binance's routes and error shapes -------------------
#: call name -> (method, path pattern) over spot, USD-M and COIN-M
FAULT_ROUTES = {
    'create_order': (('POST', '/api/v3/order'), ('POST', '/[fd]api/v1/order'),
                     ('POST', '/[fd]api/v1/algoOrder')),
    'cancel_order': (('DELETE', '/api/v3/order'), ('DELETE', '/[fd]api/v1/order'),
                     ('DELETE', '/[fd]api/v1/algoOrder')),
    # futures' order modify (PUT); spot has none (cancelReplace is not served)
    'amend_order': (('PUT', '/[fd]api/v1/order'),),
    'fetch_order': (('GET', '/api/v3/order'), ('GET', '/[fd]api/v1/order'),
                    ('GET', '/[fd]api/v1/algoOrder')),
    'open_orders': (('GET', '/api/v3/openOrders'), ('GET', '/[fd]api/v1/openOrders'),
                    ('GET', '/[fd]api/v1/openAlgoOrders')),
    'trades': (('GET', '/api/v3/myTrades'), ('GET', '/[fd]api/v1/userTrades')),
    'klines': (('GET', '/api/v3/klines'), ('GET', '/[fd]api/v1/klines')),
    'balance': (('GET', '/api/v3/account'), ('GET', '/[fd]api/v*/account'),
                ('GET', '/[fd]api/v*/balance')),
    'positions': (('GET', '/[fd]api/v*/positionRisk'),),
    'time': (('GET', '/api/v3/time'), ('GET', '/[fd]api/v1/time')),
    'exchange_info': (('GET', '/api/v3/exchangeInfo'), ('GET', '/[fd]api/v1/exchangeInfo')),
    'listen_key': (('POST', '/[fd]api/v1/listenKey'), ('PUT', '/[fd]api/v1/listenKey')),
}
#: named errors for ``faults.rest(call, 'error', error=NAME)``: (HTTP, code, msg)
FAULT_ERRORS = {
    'permission': (401, -2015, 'Invalid API-key, IP, or permissions for action.'),
    'unknown_status': (400, -1007, 'Timeout waiting for response from backend server. '
                                   'Send status unknown; execution status unknown.'),
}
_SERVER_ERRORS = {500: (-1001, 'Internal error; unable to process your request. Please try '
                               'again.'),
                  503: (-1008, 'Server is currently overloaded with other requests. Please '
                               'try again in a few minutes.')}


def fault_reply(action, rule):
    """Binance's answer for an injected fault (HTTP status, JSON or gateway page)."""
    if action == 'rate_limit':
        status = rule.status or 429
        wait = 1.0 if rule.retry_after is None else rule.retry_after
        msg = ('Way too many requests; IP(127.0.0.1) banned until %d. Please use WebSocket '
               'Streams for live updates to avoid bans.' % (server_ms() + wait * 1000)
               if status == 418 else
               'Too many requests; current limit of IP(127.0.0.1) is 6000 requests per '
               'minute. Please use WebSocket Streams for live updates to avoid polling the API.')
        return _json_error(status, -1003, msg, {'Retry-After': '%g' % wait})
    if action == 'server_error':
        status = rule.status or 503
        if status in _SERVER_ERRORS:
            return _json_error(status, *_SERVER_ERRORS[status])
        return web.Response(status=status, content_type='text/html',
                            text='<html><body><h1>%d Gateway error</h1></body></html>' % status)
    status, code, msg = FAULT_ERRORS[rule.error or 'permission']
    return _json_error(status, code, msg)


def _json_error(status, code, msg, headers=None):
    return web.Response(text=json.dumps({'code': code, 'msg': msg}), status=status,
                        content_type='application/json', headers=headers)
