"""Binance USD-M (``/fapi``) and COIN-M (``/dapi``) futures REST on the spot server.

One :class:`FuturesRest` per venue; the differences between the two are data
(:data:`VENUES`): path versions, the cost field (``cumQuote`` / ``cumBase``),
the position-risk notional key, margin asset.  Signing and timestamps are
checked by the spot module's :meth:`~.binance.BinanceRest.signed` (one
``X-MBX-APIKEY``, one secret per key for every venue).  Payload builders live
in :mod:`.binance_futures_shapes`.
"""
import secrets

from . import candles as cd
from .binance import (ApiError, checked_symbol, mandatory, select_klines, wall_ms,
                      _window, kline_row)
from .binance_futures_batch import FuturesBatch
from .binance_market import premium_index
from .binance_futures_shapes import (ALGO_TYPES, ENGINE_ERRORS, FUTURES_ORDER_TYPES,
                                     PRICE_MATCH, match_price,
                                     TRIGGER_ABOVE, account_asset, algo_info, bracket,
                                     futures_symbol_info, order_info, position_info,
                                     trade_info)
from .derivatives import CROSS, ISOLATED
from .models import EngineError, Order, dec, fmt

LISTEN_KEY_MS = 3600000  # a listenKey lives 60 minutes after its last POST/PUT

VENUES = {
    'fapi': dict(prefix='/fapi', account=('v2', 'v3'), balance=('v2', 'v3'),
                 position_risk=('v2', 'v3'), bracket=('v1',), inverse=False),
    'dapi': dict(prefix='/dapi', account=('v1',), balance=('v1',),
                 position_risk=('v1',), bracket=('v1', 'v2'), inverse=True),
}
CALLBACK_RATE = (dec('0.1'), dec('10'))  # TRAILING_STOP_MARKET callbackRate bounds, %
UNPREFIXED = ('availableBalance', 'maxWithdrawAmount')  # /fapi/v2|v3/account top level
MARGIN_TYPES = {'ISOLATED': ISOLATED, 'CROSSED': CROSS, 'CROSS': CROSS}


def check_position_side(side):
    """One-way accounts (the simulator's only mode) take positionSide BOTH or none."""
    if side in (None, '', 'BOTH'):
        return
    if side in ('LONG', 'SHORT'):
        raise ApiError(400, -4061, "Order's position side does not match user's setting.")
    raise ApiError(400, -1100, "Illegal characters found in parameter 'positionSide'; "
                               "legal range is 'BOTH, LONG, SHORT'.")


class FuturesRest:
    """aiohttp handlers of one futures venue (``fapi`` or ``dapi``)."""

    def __init__(self, sim, venue):
        self.sim = sim
        self.venue = venue
        self.spec = VENUES[venue]
        self.inverse = self.spec['inverse']
        self.listen_keys = {}   # listenKey -> [api key, expiry (wall ms)]

    @property
    def engine(self):
        return self.sim.deriv_engines[self.venue]

    def add_routes(self, app):
        r, p = app.router, self.spec['prefix']
        public = {'ping': self.ping, 'time': self.time, 'exchangeInfo': self.exchange_info,
                  'klines': self.klines, 'premiumIndex': self.premium_index,
                  'ticker/price': self.ticker_price, 'ticker/bookTicker': self.book_ticker}
        for path, handler in public.items():
            r.add_get('%s/v1/%s' % (p, path), handler)
        r.add_get(p + '/v2/ticker/price', self.ticker_price)
        for key, handler in (('account', self.account), ('balance', self.balance),
                             ('position_risk', self.position_risk),
                             ('bracket', self.leverage_bracket)):
            name = {'position_risk': 'positionRisk', 'bracket': 'leverageBracket'}.get(key, key)
            for version in self.spec[key]:
                r.add_get('%s/%s/%s' % (p, version, name), handler)
        v1 = p + '/v1/'
        for method, path, handler in (
                ('POST', 'leverage', self.set_leverage), ('POST', 'marginType', self.margin_type),
                ('GET', 'positionSide/dual', self.get_dual),
                ('POST', 'positionSide/dual', self.set_dual),
                ('POST', 'order', self.post_order), ('GET', 'order', self.get_order),
                ('DELETE', 'order', self.cancel_order), ('GET', 'openOrders', self.open_orders),
                ('DELETE', 'allOpenOrders', self.cancel_all), ('GET', 'allOrders', self.all_orders),
                ('GET', 'userTrades', self.user_trades), ('GET', 'income', self.income),
                ('POST', 'algoOrder', self.post_algo), ('GET', 'algoOrder', self.get_algo),
                ('DELETE', 'algoOrder', self.cancel_algo),
                ('GET', 'openAlgoOrders', self.open_algo_orders),
                ('GET', 'allAlgoOrders', self.all_algo_orders),
                ('POST', 'listenKey', self.new_listen_key),
                ('PUT', 'listenKey', self.keep_listen_key),
                ('DELETE', 'listenKey', self.close_listen_key)):
            r.add_route(method, v1 + path, handler)
        FuturesBatch(self).add_routes(app)  # order modify and batch orders

    # -- plumbing ---------------------------------------------------------------------
    def reply(self, data, weight=1):
        return self.sim.rest.reply(data, weight=weight)

    async def signed(self, request):
        acct, params = await self.sim.rest.signed(request)
        return self.engine.accounts[acct.key], params

    def rules(self, order):
        return self.engine.markets[order.symbol]

    def market(self, params, required=True):
        return checked_symbol(params, self.engine.markets, required)

    async def _engine_call(self, fn, *args, symbol=None):
        try:
            return fn(*args)
        except EngineError as err:
            status, code, msg = ENGINE_ERRORS[err.reason]
            detail = err.detail
            if err.reason == 'filter_notional' and symbol:
                detail = '%s' % self.engine.markets[symbol].min_notional.normalize()
            raise ApiError(status, code, msg.replace('%s', detail)) from None
        finally:
            await self.sim.flush_events()

    # -- public ----------------------------------------------------------------------
    async def ping(self, request):
        return self.reply({})

    async def time(self, request):
        return self.reply({'serverTime': wall_ms()})

    async def exchange_info(self, request):
        symbols = [futures_symbol_info(r, self.inverse) for r in self.engine.markets.values()]
        assets = sorted({r.settle for r in self.engine.markets.values()})
        return self.reply({
            'timezone': 'UTC', 'serverTime': wall_ms(), 'futuresType':
            'DELIVERY_MARKET' if self.inverse else 'U_MARGINED',
            'rateLimits': [{'rateLimitType': 'REQUEST_WEIGHT', 'interval': 'MINUTE',
                            'intervalNum': 1, 'limit': 2400}],
            'exchangeFilters': [],
            'assets': [{'asset': a, 'marginAvailable': True, 'autoAssetExchange': '0'}
                       for a in assets],
            'symbols': symbols}, weight=1)

    async def klines(self, request):
        params = dict(request.query)
        symbol = self.market(params)
        feed = self.sim.clock.feeds[self.engine.markets[symbol].feed]
        rows, interval = select_klines(feed, params, self.sim.clock.now, max_limit=1500)
        out = [kline_row(r, feed.bar_end(r[0], interval)) for r in rows]
        if self.inverse:  # COIN-M: volume counts contracts, index 7 is the base volume
            size = float(self.engine.markets[symbol].contract_size)
            for row, r in zip(out, rows):
                row[7] = '%.8f' % r[cd.V]
                row[5] = '%d' % int(r[cd.V] * (r[cd.O] + r[cd.C]) / 2 / size)
        return self.reply(out, weight=2)

    def _many(self, symbol, items):
        """One object for one symbol, else an array; COIN-M answers its tickers
        and premium index as an array even for one symbol."""
        return items[0] if symbol and not self.inverse else items

    async def premium_index(self, request):
        symbol = self.market(dict(request.query), required=False)
        items = [premium_index(self.engine, s, self.sim.clock.now, self.venue)
                 for s in ([symbol] if symbol else self.engine.markets)]
        return self.reply(self._many(symbol, items))

    async def ticker_price(self, request):
        symbol = self.market(dict(request.query), required=False)
        items = [{'symbol': s, 'price': fmt(self.engine.price_of(s)),
                  'time': self.sim.clock.now}
                 for s in ([symbol] if symbol else self.engine.markets)]
        if self.inverse:
            for item in items:
                item['ps'] = item['symbol'].split('_')[0]
        return self.reply(self._many(symbol, items))

    async def book_ticker(self, request):
        symbol = self.market(dict(request.query), required=False)
        items = []
        for s in ([symbol] if symbol else self.engine.markets):
            bid, ask = self.engine.best(s)
            qty = fmt(self.engine.level_qty(s))
            item = {'lastUpdateId': self.sim.clock.now, 'symbol': s, 'bidPrice': fmt(bid),
                    'bidQty': qty, 'askPrice': fmt(ask), 'askQty': qty,
                    'time': self.sim.clock.now}
            if self.inverse:
                item['pair'] = s.split('_')[0]
            items.append(item)
        return self.reply(self._many(symbol, items))

    # -- account ---------------------------------------------------------------------
    def _assets(self, acct):
        return [account_asset(a, self.engine.balance_view(acct, a),
                              acct.update_time.get(a, 0), self.inverse)
                for a in sorted(acct.wallet)]

    def _positions(self, acct, symbol=None, all_symbols=True):
        rules = self.engine.markets
        names = [symbol] if symbol else (list(rules) if all_symbols else
                                         [s for s, p in acct.positions.items() if p.size])
        return [position_info(self.engine, acct, acct.position(s), self.inverse)
                for s in names]

    def _account_positions(self, acct):
        """positions[] of /account: the risk fields plus ``isolated`` (a bool) and
        the notional cap (``maxNotional``; COIN-M ``maxQty``)."""
        out = []
        for item in self._positions(acct, all_symbols=False):
            item = dict(item, isolated=item['marginType'] == 'isolated')
            if not self.inverse:
                item['maxNotional'] = item['maxNotionalValue']
            out.append(item)
        return out

    async def account(self, request):
        acct, _ = await self.signed(request)
        assets = self._assets(acct)
        total = {k: fmt(sum(dec(a[k]) for a in assets)) for k in (
            'walletBalance', 'unrealizedProfit', 'marginBalance', 'availableBalance',
            'initialMargin', 'maintMargin', 'positionInitialMargin', 'openOrderInitialMargin',
            'crossWalletBalance', 'crossUnPnl', 'maxWithdrawAmount')}
        out = {'feeTier': 0, 'canTrade': True, 'canDeposit': True, 'canWithdraw': True,
               'updateTime': 0, 'multiAssetsMargin': False, 'tradeGroupId': -1,
               'assets': assets, 'positions': self._account_positions(acct)}
        if not self.inverse:  # USD-M totals; available/maxWithdraw keep their own names
            out.update({k if k in UNPREFIXED else 'total' + k[0].upper() + k[1:]: v
                        for k, v in total.items()})
        return self.reply(out, weight=5)

    async def balance(self, request):
        acct, _ = await self.signed(request)
        out = [{'accountAlias': 'SgsR', 'asset': a['asset'], 'balance': a['walletBalance'],
                'crossWalletBalance': a['crossWalletBalance'], 'crossUnPnl': a['crossUnPnl'],
                'availableBalance': a['availableBalance'],
                'maxWithdrawAmount': a['maxWithdrawAmount'], 'marginAvailable': True,
                'updateTime': a['updateTime']} for a in self._assets(acct)]
        return self.reply(out, weight=5)

    async def position_risk(self, request):
        acct, params = await self.signed(request)
        symbol = self.market(params, required=False)
        rows = self._positions(acct, symbol)
        if self.inverse and params.get('pair'):     # COIN-M: by pair (all its contracts)
            rows = [r for r in rows if r['symbol'].split('_')[0] == params['pair']]
        return self.reply(rows, weight=5)

    async def leverage_bracket(self, request):
        acct, params = await self.signed(request)
        symbol = self.market(params, required=False)
        items = [bracket(self.engine.markets[s], self.inverse)
                 for s in ([symbol] if symbol else self.engine.markets)]
        return self.reply(items[0] if symbol and not self.inverse else items)

    async def set_leverage(self, request):
        acct, params = await self.signed(request)
        symbol = self.market(params)
        if not params.get('leverage'):
            raise mandatory('leverage')
        lev = await self._engine_call(self.engine.set_leverage, acct.key, symbol,
                                      params['leverage'])
        rules = self.engine.markets[symbol]
        cap = 'maxNotionalValue' if not self.inverse else 'maxQty'
        return self.reply({'leverage': lev, cap: fmt(rules.max_qty * 1000, 0),
                           'symbol': symbol})

    async def margin_type(self, request):
        acct, params = await self.signed(request)
        symbol = self.market(params)
        mode = MARGIN_TYPES.get((params.get('marginType') or '').upper())
        if mode is None:
            raise mandatory('marginType')
        await self._engine_call(self.engine.set_margin_mode, acct.key, symbol, mode)
        return self.reply({'code': 200, 'msg': 'success'})

    async def get_dual(self, request):
        await self.signed(request)
        return self.reply({'dualSidePosition': False})

    async def set_dual(self, request):
        _, params = await self.signed(request)
        if str(params.get('dualSidePosition')).lower() == 'true':
            # the simulator keeps one-way positions only (positionSide BOTH)
            raise ApiError(400, -4059, 'No need to change position side. '
                                       '(simulator: hedge mode is not supported, one-way only)')
        raise ApiError(400, -4059, 'No need to change position side.')

    async def income(self, request):
        acct, params = await self.signed(request)
        symbol = self.market(params, required=False)
        kind = params.get('incomeType')
        events = [e for e in self.engine.funding if e.account == acct.key
                  and (symbol is None or e.symbol == symbol)]
        if kind and kind != 'FUNDING_FEE':
            events = []
        events = _window(events, params, id_key='_none_', id_of=lambda e: e.id,
                         time_of=lambda e: e.time)
        return self.reply([{'symbol': e.symbol, 'incomeType': 'FUNDING_FEE',
                            'income': fmt(e.amount), 'asset': e.asset, 'info': 'FUNDING_FEE',
                            'time': e.time, 'tranId': e.id, 'tradeId': ''}
                           for e in events], weight=30)

    # -- listenKey ---------------------------------------------------------------------
    def _key_owner(self, request):
        key = request.headers.get('X-MBX-APIKEY')
        if not key:
            raise ApiError(401, -2014, 'API-key format invalid.')
        if key not in self.engine.accounts:
            raise ApiError(401, -2015, 'Invalid API-key, IP, or permissions for action.')
        return key

    async def new_listen_key(self, request):
        key = self._key_owner(request)
        # a POST on an account with a live key returns that key and extends it
        now = wall_ms()
        for lk, (owner, expiry) in self.listen_keys.items():
            if owner == key and expiry > now:
                self.listen_keys[lk][1] = now + LISTEN_KEY_MS
                return self.reply({'listenKey': lk})
        lk = secrets.token_hex(32)
        self.listen_keys[lk] = [key, now + LISTEN_KEY_MS]
        return self.reply({'listenKey': lk})

    async def keep_listen_key(self, request):
        key = self._key_owner(request)
        lk = self._live_key(key)
        self.listen_keys[lk][1] = wall_ms() + LISTEN_KEY_MS
        return self.reply({'listenKey': lk})

    async def close_listen_key(self, request):
        key = self._key_owner(request)
        lk = self._live_key(key)
        del self.listen_keys[lk]
        await self.sim.futures_streams.close_user(lk)
        return self.reply({})

    def _live_key(self, key):
        now = wall_ms()
        for lk, (owner, expiry) in self.listen_keys.items():
            if owner == key and expiry > now:
                return lk
        raise ApiError(400, -1125, 'This listenKey does not exist.')

    def listen_key_owner(self, lk):
        entry = self.listen_keys.get(lk)
        if entry and entry[1] > wall_ms():
            return entry[0]
        return None

    # -- orders --------------------------------------------------------------------------
    def parse_order(self, key, params, algo=False):
        symbol = self.market(params)
        otype = params.get('type') or params.get('orderType')
        side = params.get('side')
        if not side or not otype:
            raise mandatory('side' if not side else 'type')
        allowed = ALGO_TYPES if algo else ('LIMIT', 'MARKET')
        if otype not in FUTURES_ORDER_TYPES or (otype not in allowed):
            raise ApiError(400, -1116, 'Invalid orderType.')
        close = str(params.get('closePosition')).lower() == 'true'
        check_position_side(params.get('positionSide'))
        if not params.get('quantity') and not close:
            raise mandatory('quantity')
        price_match = params.get('priceMatch') or 'NONE'
        if price_match != 'NONE':
            self._check_price_match(params, otype, price_match)
        elif otype in ('LIMIT', 'STOP', 'TAKE_PROFIT') and not params.get('price'):
            raise mandatory('price')
        trigger = params.get('triggerPrice') or params.get('stopPrice')
        trailing = otype == 'TRAILING_STOP_MARKET'
        if algo and not trigger and not trailing:
            raise mandatory('triggerPrice')
        tif = params.get('timeInForce') or 'GTC'
        cid = (params.get('clientAlgoId') if algo else params.get('newClientOrderId')) \
            or self.sim.new_client_id()
        order = Order(
            id=0, client_id=cid, account=key, symbol=symbol, side=side, type=otype,
            qty=dec(params.get('quantity') or 0), price=dec(params.get('price') or 0),
            stop_price=dec(trigger or 0),
            trigger_above=TRIGGER_ABOVE.get((otype, side), False),
            is_limit=otype in ('LIMIT', 'STOP', 'TAKE_PROFIT'), post_only=tif == 'GTX',
            tif=tif, triggered=not algo,
            reduce_only=str(params.get('reduceOnly')).lower() == 'true',
            close_position=close)
        order.extra['venue'] = self.venue
        if algo:
            order.extra['algo'] = True
        if trailing:
            self._add_callback(order, params)
        if price_match != 'NONE':
            bid, ask = self.engine.best(symbol)
            order.price = match_price(bid, ask, self.engine.markets[symbol].tick, side,
                                      price_match)
            order.extra['price_match'] = price_match
        return order

    @staticmethod
    def _check_price_match(params, otype, mode):
        if mode not in PRICE_MATCH:
            raise ApiError(400, -1100, "Illegal characters found in parameter 'priceMatch'; "
                                       "legal range is '%s'." % ', '.join(['NONE'] + list(
                                           PRICE_MATCH)))
        if otype not in ('LIMIT', 'STOP', 'TAKE_PROFIT'):
            raise ApiError(400, -1106, "Parameter 'priceMatch' sent when not required.")
        if params.get('price'):  # one or the other, never both
            raise ApiError(400, -1106, "Parameter 'price' sent when not required.")

    def _add_callback(self, order, params):
        """TRAILING_STOP_MARKET: callbackRate (percent, 0.1-10) from the best price
        since activation; activatePrice (default: now) must lie on the side the
        price has yet to reach (SELL above, BUY below), else it would trigger now."""
        if not params.get('callbackRate'):
            raise mandatory('callbackRate')
        rate = dec(params['callbackRate'])
        if not CALLBACK_RATE[0] <= rate <= CALLBACK_RATE[1]:
            raise ApiError(400, -4071, 'Invalid callback rate.')
        raw = params.get('activatePrice') or params.get('activationPrice')
        activation = dec(raw) if raw else None
        sell = order.side == 'SELL'
        if activation is not None:
            rules = self.engine.markets[order.symbol]
            if activation <= 0 or (activation - rules.min_price) % rules.tick:
                raise ApiError(400, -4070, 'Invalid activation price.')
            price = dec(self.engine.price_of(order.symbol))
            if (activation <= price) if sell else (activation >= price):
                raise ApiError(400, -2021, 'Order would immediately trigger.')
        order.extra.update(callback_rate=rate, activation=activation, trail={
            'delta': rate / 100, 'activation': activation, 'activate_above': sell,
            'extreme': None})

    async def _place(self, key, params, algo):
        order = self.parse_order(key, params, algo)
        return await self._engine_call(self.engine.place, order, symbol=order.symbol)

    async def post_order(self, request):
        acct, params = await self.signed(request)
        order = await self._place(acct.key, params, algo=False)
        return self.reply(order_info(order, self.rules(order)))

    async def post_algo(self, request):
        acct, params = await self.signed(request)
        if params.get('algoType') != 'CONDITIONAL':
            raise ApiError(400, -1102, "Mandatory parameter 'algoType' was not sent, "
                                       "was empty/null, or malformed.")
        order = await self._place(acct.key, params, algo=True)
        return self.reply(algo_info(order, self.rules(order)))

    def _find(self, key, params, algo=False):
        symbol = self.market(params, required=not algo)
        oid = params.get('algoId' if algo else 'orderId')
        cid = params.get('clientAlgoId' if algo else 'origClientOrderId')
        if not oid and not cid:
            raise ApiError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, "
                                       "but both were empty/null!")
        for o in reversed(list(self.engine.orders.values())):
            # a triggered algo order is also a regular order (its actualOrderId)
            kind_ok = bool(o.extra.get('algo')) == algo or (not algo and o.triggered)
            if o.account != key or (symbol and o.symbol != symbol) or not kind_ok:
                continue
            if (oid and o.id == int(oid)) or (not oid and o.client_id == cid):
                return o
        return None

    async def get_order(self, request):
        acct, params = await self.signed(request)
        order = self._find(acct.key, params)
        if order is None or (order.extra.get('algo') and not order.triggered):
            raise ApiError(400, -2013, 'Order does not exist.')
        return self.reply(order_info(order, self.rules(order)))

    async def get_algo(self, request):
        acct, params = await self.signed(request)
        order = self._find(acct.key, params, algo=True)
        if order is None:
            raise ApiError(400, -2013, 'Order does not exist.')
        return self.reply(algo_info(order, self.rules(order)))

    async def _cancel(self, key, params, algo):
        order = self._find(key, params, algo)
        if order is None or not order.is_open or (not algo and not order.triggered):
            raise ApiError(400, -2011, 'Unknown order sent.')
        return await self._engine_call(self.engine.cancel, key, order.symbol, order.id)

    async def cancel_order(self, request):
        acct, params = await self.signed(request)
        order = await self._cancel(acct.key, params, algo=False)
        return self.reply(order_info(order, self.rules(order)))

    async def cancel_algo(self, request):
        acct, params = await self.signed(request)
        order = await self._cancel(acct.key, params, algo=True)
        return self.reply({'algoId': order.id, 'clientAlgoId': order.client_id,
                           'code': '200', 'msg': 'success'})

    async def cancel_all(self, request):
        acct, params = await self.signed(request)
        symbol = self.market(params)
        for o in self.engine.open_orders(acct.key, symbol):
            if o.triggered:
                self.engine.cancel(acct.key, symbol, o.id)
        await self.sim.flush_events()
        return self.reply({'code': 200, 'msg': 'The operation of cancel all open order is done.'})

    def _mine(self, key, symbol, algo):
        return [o for o in self.engine.orders.values() if o.account == key and
                (symbol is None or o.symbol == symbol) and bool(o.extra.get('algo')) == algo]

    async def open_orders(self, request):
        acct, params = await self.signed(request)
        symbol = self.market(params, required=False)
        orders = [o for o in self.engine.open_orders(acct.key, symbol) if o.triggered]
        return self.reply([order_info(o, self.rules(o)) for o in orders], weight=1 if symbol else 40)

    async def open_algo_orders(self, request):
        acct, params = await self.signed(request)
        symbol = self.market(params, required=False)
        orders = [o for o in self.engine.open_orders(acct.key, symbol)
                  if o.extra.get('algo') and not o.triggered]
        return self.reply([algo_info(o, self.rules(o)) for o in orders])

    async def all_orders(self, request):
        acct, params = await self.signed(request)
        symbol = self.market(params)
        orders = [o for o in self._mine(acct.key, symbol, False)] + \
            [o for o in self._mine(acct.key, symbol, True) if o.triggered]
        orders.sort(key=lambda o: o.id)
        orders = _window(orders, params, id_key='orderId', id_of=lambda o: o.id,
                         time_of=lambda o: o.time)
        return self.reply([order_info(o, self.rules(o)) for o in orders], weight=5)

    async def all_algo_orders(self, request):
        acct, params = await self.signed(request)
        symbol = self.market(params)
        orders = _window(self._mine(acct.key, symbol, True), params, id_key='algoId',
                         id_of=lambda o: o.id, time_of=lambda o: o.time)
        return self.reply([algo_info(o, self.rules(o)) for o in orders], weight=5)

    async def user_trades(self, request):
        acct, params = await self.signed(request)
        symbol = self.market(params, required=not params.get('orderId'))
        trades = [t for t in self.engine.trades
                  if t.account == acct.key and (symbol is None or t.symbol == symbol)]
        if params.get('orderId'):
            trades = [t for t in trades if t.order_id == int(params['orderId'])]
        trades = _window(trades, params, id_key='fromId', id_of=lambda t: t.id,
                         time_of=lambda t: t.time)
        rules = self.engine.markets
        return self.reply([trade_info(t, rules[t.symbol], self.inverse) for t in trades],
                          weight=5)
