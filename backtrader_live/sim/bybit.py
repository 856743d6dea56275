"""The Bybit v5 protocol (REST): spot, linear and inverse on one unified account.

Every reply is HTTP 200 with ``{retCode, retMsg, result, retExtInfo, time}``;
errors carry Bybit's codes.  Private calls are verified like the exchange:
``X-BAPI-SIGN`` = hex HMAC-SHA256(secret, timestamp + apiKey + recvWindow +
payload) where payload is the raw query string (GET) or the raw body (POST).
Payload shapes are in :mod:`.bybit_shapes`; the WebSocket side is :mod:`.bybit_ws`.
"""
import hashlib
import hmac
import json
from urllib.parse import parse_qsl

from aiohttp import web

from . import candles as cd
from .faults import server_ms
from .bybit_shapes import (BYBIT_INTERVALS, ENGINE_ERRORS, BybitError, execution_info,
                           instrument, order_info, position_info, wallet)
from .bybit_market import BybitMarketRest
from .bybit_orders import BybitOrders
from .derivatives import CROSS, ISOLATED
from .keys import bybit_key_info
from .models import EngineError, Order, dec

RECV_WINDOW_DEFAULT = 5000
BYBIT_KEY = web.AppKey('bybit', object)
CATEGORIES = ('spot', 'linear', 'inverse')


def wall_ms():
    """The server's wall clock (shifted by ``sim.faults.clock_offset``)."""
    return server_ms()


def envelope(result, code=0, msg='OK', ext=None):
    return {'retCode': code, 'retMsg': msg, 'result': result, 'retExtInfo': ext or {},
            'time': wall_ms()}


class BybitRest:
    """aiohttp handlers of the Bybit v5 REST API over one BybitSimulator."""

    def __init__(self, sim):
        self.sim = sim
        self.market_data = BybitMarketRest(self)
        self.orders = BybitOrders(self)

    def add_routes(self, app):
        self.market_data.add_routes(app)
        self.orders.add_routes(app)
        r = app.router
        for path, handler in (
                ('market/time', self.market_time), ('market/instruments-info', self.instruments),
                ('market/kline', self.kline),
                ('account/wallet-balance', self.wallet_balance),
                ('user/query-api', self.query_api), ('account/info', self.account_info),
                ('asset/coin/query-info', self.coin_info), ('account/fee-rate', self.fee_rate),
                ('execution/list', self.executions), ('position/list', self.position_list)):
            r.add_get('/v5/' + path, handler)
        for path, handler in (
                ('position/set-leverage', self.set_leverage),
                ('position/switch-isolated', self.switch_isolated),
                ('account/set-margin-mode', self.set_margin_mode)):
            r.add_post('/v5/' + path, handler)

    # -- plumbing ---------------------------------------------------------------------
    @staticmethod
    def reply(result, code=0, msg='OK', ext=None):
        return web.Response(text=json.dumps(envelope(result, code, msg, ext),
                                            separators=(',', ':')),
                            content_type='application/json',
                            headers={'X-Bapi-Limit': '20', 'X-Bapi-Limit-Status': '19',
                                     'X-Bapi-Limit-Reset-Timestamp': str(wall_ms() + 1000)})

    async def signed(self, request):
        """Verify key, timestamp window and signature; returns (api key, params)."""
        h = request.headers
        key, ts, sign = h.get('X-BAPI-API-KEY'), h.get('X-BAPI-TIMESTAMP'), h.get('X-BAPI-SIGN')
        window = h.get('X-BAPI-RECV-WINDOW') or str(RECV_WINDOW_DEFAULT)
        secret = self.sim.secrets.get(key)
        if not key or secret is None:
            raise BybitError(10003, 'API key is invalid.')
        try:
            ts_ms, window_ms = int(ts), int(window)
        except (TypeError, ValueError):
            raise BybitError(10002, 'invalid request, please check your timestamp') from None
        now = wall_ms()
        if not (now - window_ms <= ts_ms < now + 1000):
            raise BybitError(10002, 'invalid request, please check your server timestamp or '
                             'recv_window param. req_timestamp[%d],server_timestamp[%d],'
                             'recv_window[%d]' % (ts_ms, now, window_ms))
        if request.method == 'GET':
            payload = request.rel_url.raw_query_string
            params = dict(parse_qsl(payload, keep_blank_values=True))
        else:
            payload = await request.text()
            try:
                params = json.loads(payload or '{}')
            except ValueError:
                raise BybitError(10001, 'request body is not valid JSON') from None
        origin = ts + key + window + payload
        expected = hmac.new(secret.encode(), origin.encode(), hashlib.sha256).hexdigest()
        if not sign or not hmac.compare_digest(expected, sign):
            raise BybitError(10004, 'error sign! origin_string[%s]' % origin)
        return key, params

    def category(self, params, allowed=CATEGORIES):
        cat = params.get('category')
        if cat not in allowed:
            raise BybitError(10001, 'Illegal category')
        return cat

    def market(self, params, cat, required=True):
        symbol = params.get('symbol')
        if not symbol:
            if required:
                raise BybitError(10001, 'params error: symbol is empty')
            return None
        if symbol not in self.sim.category_markets(cat):
            raise BybitError(10001, 'Not supported symbols')
        return symbol

    async def engine_call(self, cat, fn, *args):
        try:
            return fn(*args)
        except EngineError as err:
            spot = cat == 'spot'
            code, msg = ENGINE_ERRORS[(err.reason, spot)] if (err.reason, spot) in \
                ENGINE_ERRORS else ENGINE_ERRORS[err.reason]
            raise BybitError(code, msg) from None
        finally:
            await self.sim.flush_events()

    # -- public ---------------------------------------------------------------------------
    async def market_time(self, request):
        now = wall_ms()
        return self.reply({'timeSecond': str(now // 1000), 'timeNano': str(now * 1000000)})

    async def instruments(self, request):
        """Cursor paging: ``cursor`` is an offset; ``nextPageCursor`` "" on the last page."""
        params = dict(request.query)
        cat = self.category(params, CATEGORIES + ('option',))
        if cat == 'option' or params.get('status') not in (None, '', 'Trading'):
            # no option (or pre-listing) markets here: an empty page, as Bybit
            # answers a coin without options
            return self.reply({'category': cat, 'list': [], 'nextPageCursor': ''})
        markets = self.sim.category_markets(cat)
        names = [s for s in markets if not params.get('symbol') or s == params['symbol']]
        limit = min(int(params.get('limit') or 500), 1000)
        start = int(params.get('cursor') or 0)
        page = names[start:start + limit]
        nxt = str(start + limit) if start + limit < len(names) else ''
        return self.reply({'category': cat, 'list': [instrument(markets[s], cat) for s in page],
                           'nextPageCursor': nxt})

    async def kline(self, request):
        params = dict(request.query)
        cat = self.category(params)
        symbol = self.market(params, cat)
        if params.get('interval') not in BYBIT_INTERVALS:
            raise BybitError(10001, 'params error: Invalid interval')
        return self.reply({'category': cat, 'symbol': symbol,
                           'list': self.kline_rows(params, cat, symbol)})

    def kline_rows(self, params, cat, symbol):
        """[start, open, high, low, close, volume, turnover] strings, newest first."""
        interval = BYBIT_INTERVALS[params['interval']]
        limit = min(int(params.get('limit') or 200), 1000)
        start, end = params.get('start'), params.get('end')
        feed = self.sim.feed_of(cat, symbol)
        try:
            rows, _ = feed.bars(interval, self.sim.clock.now,
                                start=int(start) if start else None)
        except cd.IntervalError:
            raise BybitError(10001, 'params error: Invalid interval') from None
        if end:
            rows = [r for r in rows if r[0] <= int(end)]
        rows = rows[:limit] if start and not end else rows[-limit:]
        return [[str(r[0]), '%.8f' % r[1], '%.8f' % r[2], '%.8f' % r[3], '%.8f' % r[4],
                 '%.8f' % r[5], '%.8f' % (r[5] * (r[1] + r[4]) / 2)] for r in reversed(rows)]

    # -- account ---------------------------------------------------------------------------
    async def wallet_balance(self, request):
        key, params = await self.signed(request)
        if params.get('accountType') not in ('UNIFIED', None, ''):
            raise BybitError(10001, 'accountType only support UNIFIED.')
        return self.reply({'list': [wallet(self.sim, key, params.get('coin'))]})

    async def query_api(self, request):
        key, _ = await self.signed(request)
        return self.reply(bybit_key_info(self.sim.key_permissions(key), key))

    async def account_info(self, request):
        key, _ = await self.signed(request)
        mode = self.sim.account_margin_mode(key)
        return self.reply({'unifiedMarginStatus': 6, 'marginMode':
                           'ISOLATED_MARGIN' if mode == ISOLATED else 'REGULAR_MARGIN',
                           'isMasterTrader': False, 'spotHedgingStatus': 'OFF',
                           'updatedTime': str(wall_ms()), 'dcpStatus': 'OFF',
                           'timeWindow': 10, 'smpGroup': 0})

    async def coin_info(self, request):
        await self.signed(request)
        coins = sorted({c for m in self.sim.all_markets() for c in (m.base, m.quote)
                        if c != 'USD'})
        return self.reply({'rows': [{'name': c, 'coin': c, 'remainAmount': '1000000',
                                     'chains': []} for c in coins]})

    async def fee_rate(self, request):
        await self.signed(request)
        params = dict(request.query)
        cat = params.get('category') or 'spot'
        engine = self.sim.category_engine(cat)
        return self.reply({'category': cat, 'list': [
            {'symbol': s, 'takerFeeRate': str(engine.taker_fee),
             'makerFeeRate': str(engine.maker_fee), 'baseCoin': r.base}
            for s, r in self.sim.category_markets(cat).items()]})

    # -- executions ---------------------------------------------------------------------
    async def executions(self, request):
        key, params = await self.signed(request)
        cat = self.category(params)
        symbol = self.market(params, cat, required=False)
        engine = self.sim.category_engine(cat)
        rules = self.sim.category_markets(cat)
        items = [execution_info(t, engine.orders[t.order_id], rules[t.symbol])
                 for t in engine.trades if t.account == key and t.symbol in rules and
                 engine.orders[t.order_id].extra.get('category', cat) == cat and
                 (symbol is None or t.symbol == symbol)]
        if cat != 'spot':
            items += [execution_info(None, None, rules[e.symbol], funding=e)
                      for e in engine.funding if e.account == key and e.symbol in rules
                      and (symbol is None or e.symbol == symbol)]
        if params.get('orderId'):
            items = [i for i in items if i['orderId'] == params['orderId']]
        if params.get('execType'):
            items = [i for i in items if i['execType'] == params['execType']]
        if params.get('startTime'):
            items = [i for i in items if int(i['execTime']) >= int(params['startTime'])]
        items.sort(key=lambda i: -int(i['execTime']))
        limit = min(int(params.get('limit') or 50), 100)
        return self.reply({'category': cat, 'nextPageCursor': '', 'list': items[:limit]})

    # -- positions ----------------------------------------------------------------------
    async def position_list(self, request):
        key, params = await self.signed(request)
        cat = self.category(params, ('linear', 'inverse'))
        symbol = self.market(params, cat, required=False)
        # Bybit: linear needs a symbol or settleCoin; inverse lists every position
        if cat == 'linear' and not symbol and not params.get('settleCoin') and \
                not params.get('baseCoin'):
            raise BybitError(10001, 'Missing some parameters that must be filled in, '
                             'symbol or settleCoin')
        engine = self.sim.category_engine(cat)
        acct = engine.accounts[key]
        rules = self.sim.category_markets(cat)
        names = [symbol] if symbol else [s for s, r in rules.items() if
                                         r.settle == params.get('settleCoin', r.settle)]
        names = [s for s in names if symbol or acct.position(s).size]
        return self.reply({'category': cat, 'nextPageCursor': '', 'list': [
            position_info(engine, acct, acct.position(s), self.sim.tpsl.levels(key, s))
            for s in names]})

    async def set_leverage(self, request):
        key, params = await self.signed(request)
        cat = self.category(params, ('linear', 'inverse'))
        symbol = self.market(params, cat)
        buy, sell = params.get('buyLeverage'), params.get('sellLeverage')
        if not buy or buy != sell:
            raise BybitError(10001, 'buy leverage must equal sell leverage in one-way mode')
        engine = self.sim.category_engine(cat)
        if engine.leverage(engine.accounts[key], symbol) == dec(buy):
            raise BybitError(110043, 'Set leverage not modified')
        try:
            engine.set_leverage(key, symbol, buy)
        except EngineError as err:
            if err.reason == 'bad_leverage':
                raise BybitError(10001, 'leverage invalid') from None
            raise BybitError(110012, 'Insufficient available balance.') from None
        await self.sim.flush_events()
        return self.reply({})

    async def switch_isolated(self, request):
        key, params = await self.signed(request)
        cat = self.category(params, ('linear', 'inverse'))
        symbol = self.market(params, cat)
        mode = ISOLATED if str(params.get('tradeMode')) == '1' else CROSS
        await self._set_mode(key, cat, [symbol], mode)
        return self.reply({})

    async def set_margin_mode(self, request):
        """Unified account: the margin mode is account wide (every contract)."""
        key, params = await self.signed(request)
        mode = {'ISOLATED_MARGIN': ISOLATED, 'REGULAR_MARGIN': CROSS}.get(
            params.get('setMarginMode'))
        if mode is None:
            raise BybitError(10001, 'setMarginMode invalid')
        for cat in ('linear', 'inverse'):
            await self._set_mode(key, cat, list(self.sim.category_markets(cat)), mode,
                                 quiet=True)
        return self.reply({'reasons': []}, msg='Request accepted')

    async def _set_mode(self, key, cat, symbols, mode, quiet=False):
        engine = self.sim.category_engine(cat)
        for symbol in symbols:
            try:
                engine.set_margin_mode(key, symbol, mode)
            except EngineError as err:
                if err.reason == 'no_change':
                    if not quiet:
                        raise BybitError(110026, 'Cross/isolated margin mode is not '
                                         'modified') from None
                    continue
                raise BybitError(110026 if err.reason == 'no_change' else 3400045,
                                 'Set margin mode failed: open positions or orders') from None


@web.middleware
async def bybit_errors(request, handler):
    """Every error is HTTP 200 with Bybit's envelope."""
    try:
        return await handler(request)
    except BybitError as err:
        return BybitRest.reply({}, err.code, err.msg)
    except (ValueError, KeyError) as err:
        return BybitRest.reply({}, 10001, 'params error: %s' % err)


# -- fault injection (sim/faults.py): Bybit's routes and error shapes ---------------------
FAULT_ROUTES = {
    'create_order': (('POST', '/v5/order/create'), ('POST', '/v5/order/create-batch')),
    'cancel_order': (('POST', '/v5/order/cancel'), ('POST', '/v5/order/cancel-batch')),
    'amend_order': (('POST', '/v5/order/amend'), ('POST', '/v5/order/amend-batch')),
    'trading_stop': (('POST', '/v5/position/trading-stop'),),
    'fetch_order': (('GET', '/v5/order/realtime'), ('GET', '/v5/order/history')),
    'open_orders': (('GET', '/v5/order/realtime'),),
    'trades': (('GET', '/v5/execution/list'),),
    'klines': (('GET', '/v5/market/kline'),),
    'balance': (('GET', '/v5/account/wallet-balance'),),
    'positions': (('GET', '/v5/position/list'),),
    'time': (('GET', '/v5/market/time'),),
    'exchange_info': (('GET', '/v5/market/instruments-info'),),
}
#: named errors for ``faults.rest(call, 'error', error=NAME)``: (retCode, retMsg)
FAULT_ERRORS = {
    'permission': (10005, 'Permission denied, please check your API key permissions.'),
    'unknown_status': (10016, 'System error. Please try again later.'),
}
#: Bybit's rate-limit answers: retCode 10006 (per UID) / 10018 (per IP) with HTTP 200,
#: or an HTTP 403 ("access too frequent", the IP limit) / 429 without a JSON body
_RATE_CODES = {10006: 'Too many visits!', 10018: 'Exceeded the IP Rate Limit.'}


def fault_reply(action, rule):
    """Bybit's answer for an injected fault."""
    if action == 'rate_limit':
        status = rule.status or 10006
        wait = 1.0 if rule.retry_after is None else rule.retry_after
        headers = {'X-Bapi-Limit': '20', 'X-Bapi-Limit-Status': '0',
                   'X-Bapi-Limit-Reset-Timestamp': str(int(wall_ms() + wait * 1000))}
        if status in _RATE_CODES:
            return _envelope_error(status, _RATE_CODES[status], headers)
        return web.Response(status=status, text='access too frequent', headers=headers)
    if action == 'server_error':
        status = rule.status or 502
        if status == 10016:
            return _envelope_error(10016, FAULT_ERRORS['unknown_status'][1])
        return web.Response(status=status, content_type='text/html',
                            text='<html><body><h1>%d Bad Gateway</h1></body></html>' % status)
    return _envelope_error(*FAULT_ERRORS[rule.error or 'permission'])


def _envelope_error(code, msg, headers=None):
    return web.Response(text=json.dumps(envelope({}, code, msg), separators=(',', ':')),
                        content_type='application/json', headers=headers)
