"""Bybit v5 order endpoints: create, amend, cancel (one, all, batches) and queries.

``takeProfit``/``stopLoss`` on a linear/inverse order are honoured the way
Bybit's "Full" TP/SL mode works (:mod:`.bybit_tpsl`): once the order fills,
the position carries them.  On spot, and in modes the simulator does not
model (Partial, limit TP/SL), they are refused with retCode 10001 naming the
parameter: never accepted and dropped.
"""
from dataclasses import replace

from .bybit_shapes import BybitError, order_info
from .models import ZERO, EngineError, Order, dec

#: orders per batch request (Bybit: spot 10, linear/inverse 20)
BATCH_MAX = {'spot': 10, 'linear': 20, 'inverse': 20}
TRIGGER_BY = ('LastPrice', 'MarkPrice', 'IndexPrice')  # one price here: all the same


def _price_param(params, name):
    """A positive decimal parameter, None when absent; "0" means "none"."""
    raw = params.get(name)
    if raw in (None, ''):
        return None
    try:
        value = dec(raw)
    except ArithmeticError:
        raise BybitError(10001, 'params error: %s must be a decimal number' % name) from None
    if not value.is_finite() or value < 0:
        raise BybitError(10001, 'params error: %s must be >= 0' % name)
    return value


def parse_tpsl(params, cat):
    """(takeProfit, stopLoss) of a request, each a Decimal, 0 (cancel) or None."""
    tp, sl = _price_param(params, 'takeProfit'), _price_param(params, 'stopLoss')
    if tp is None and sl is None:
        return None, None
    if cat == 'spot':
        raise BybitError(10001, 'params error: takeProfit/stopLoss are supported on linear '
                         'and inverse orders only in this simulator (spot TP/SL orders '
                         'are not modelled)')
    if (params.get('tpslMode') or 'Full') != 'Full':
        raise BybitError(10001, 'params error: tpslMode %r is not supported by this '
                         'simulator; accepted: Full' % params.get('tpslMode'))
    for name in ('tpTriggerBy', 'slTriggerBy'):
        if params.get(name) not in (None, '') + TRIGGER_BY:
            raise BybitError(10001, 'params error: %s must be one of %s'
                             % (name, ', '.join(TRIGGER_BY)))
    for name in ('tpOrderType', 'slOrderType'):
        if params.get(name) not in (None, '', 'Market'):
            raise BybitError(10001, 'params error: %s must be Market in Full tpslMode' % name)
    for name in ('tpLimitPrice', 'slLimitPrice', 'tpSize', 'slSize'):
        if params.get(name) not in (None, ''):
            raise BybitError(10001, 'params error: %s is for Partial tpslMode, which this '
                             'simulator does not support' % name)
    return tp, sl


def check_tpsl_side(long, base, tp, sl):
    """Bybit's rule: a long's TP above and SL below the base price (a short: reversed)."""
    side = 'Buy' if long else 'Sell'
    if tp and (tp <= base if long else tp >= base):
        raise BybitError(10001, 'TakeProfit:%s set for %s position should be %s than '
                         'base_price:%s??LastPrice' % (tp, side, 'higher' if long else
                                                       'lower', base))
    if sl and (sl >= base if long else sl <= base):
        raise BybitError(10001, 'StopLoss:%s set for %s position should be %s than '
                         'base_price:%s??LastPrice' % (sl, side, 'lower' if long else
                                                       'higher', base))


def amend_in_engine(engine, order, qty=None, price=None, trigger=None):
    """Change an open order in place (same id, same place in the engine's book).

    Exchange-neutral: the lock of the unfilled part is given back, the changed
    order is checked and locked like a new one (on any refusal the old order
    stands unchanged), and a limit price moved across the book takes at once.
    """
    rules = engine.markets[order.symbol]
    acct = engine.accounts[order.account]
    before = (order.qty, order.price, order.stop_price, order.lock_asset, order.locked)
    acct.lock(order.lock_asset, -order.locked)
    order.locked = ZERO
    order.qty = order.qty if qty is None else qty
    order.price = order.price if price is None else price
    order.stop_price = order.stop_price if trigger is None else trigger
    try:
        if order.qty <= order.executed:
            raise EngineError('filter_lot')
        if order.is_limit:
            engine._check_price(order.price, rules)
        if order.stop_price:
            engine._check_price(order.stop_price, rules)
        engine._check_qty(order.qty, rules)
        if not order.triggered and engine._trigger_hit(order, engine.price_of(order.symbol)):
            raise EngineError('would_trigger')
        if order.post_only and order.triggered and \
                engine._marketable(order, *engine.best(order.symbol)):
            raise EngineError('would_take')
        part = replace(order, qty=order.remaining, executed=ZERO, extra={})
        engine._lock(part, rules, acct, None)
    except EngineError:
        order.qty, order.price, order.stop_price, asset, locked = before
        acct.lock(asset, locked)
        order.lock_asset, order.locked = asset, locked
        raise
    order.lock_asset, order.locked = part.lock_asset, part.locked
    order.update_time = engine.now()
    engine._emit_order(order, 'AMENDMENT')
    if order.triggered and order.is_limit:
        engine._work(order)
        if not order.is_open:
            engine._open[order.symbol].remove(order)
    return order


class BybitOrders:
    """Order handlers of one :class:`~.bybit.BybitRest`."""

    def __init__(self, rest):
        self.rest = rest
        self.sim = rest.sim

    def add_routes(self, app):
        for path, handler in (('order/realtime', self.order_realtime),
                              ('order/history', self.order_history)):
            app.router.add_get('/v5/' + path, handler)
        for path, handler in (
                ('order/create', self.order_create), ('order/cancel', self.order_cancel),
                ('order/amend', self.order_amend), ('order/cancel-all', self.cancel_all),
                ('order/create-batch', self.create_batch),
                ('order/amend-batch', self.amend_batch),
                ('order/cancel-batch', self.cancel_batch)):
            app.router.add_post('/v5/' + path, handler)

    # -- parsing --------------------------------------------------------------------------
    def parse_order(self, key, params):
        rest = self.rest
        cat = rest.category(params)
        symbol = rest.market(params, cat)
        side, otype = params.get('side'), params.get('orderType')
        if side not in ('Buy', 'Sell') or otype not in ('Market', 'Limit'):
            raise BybitError(10001, 'params error: side or orderType invalid')
        if not params.get('qty'):
            raise BybitError(10001, 'params error: qty is empty')
        tif = params.get('timeInForce') or ('IOC' if otype == 'Market' else 'GTC')
        trigger = dec(params.get('triggerPrice') or 0)
        direction = str(params.get('triggerDirection') or '')
        last = dec(self.sim.market_price(cat, symbol))
        rising = direction == '1' if direction else trigger > last
        qty, quote_qty = dec(params['qty']), dec(0)
        if cat == 'spot' and otype == 'Market' and side == 'Buy' and \
                params.get('marketUnit', 'quoteCoin') == 'quoteCoin':
            qty, quote_qty = dec(0), dec(params['qty'])  # Bybit's default: a quote amount
        tp, sl = parse_tpsl(params, cat)
        price = dec(params.get('price') or 0) if otype == 'Limit' else dec(0)
        if tp or sl:
            check_tpsl_side(side == 'Buy', price or trigger or last, tp, sl)
        order = Order(
            id=0, client_id=params.get('orderLinkId') or self.sim.new_client_id(), account=key,
            symbol=symbol, side=side.upper(), type=otype, qty=qty, quote_qty=quote_qty,
            price=price, stop_price=trigger, trigger_above=rising, is_limit=otype == 'Limit',
            post_only=tif == 'PostOnly', tif={'PostOnly': 'GTC'}.get(tif, tif),
            triggered=not trigger, reduce_only=bool(params.get('reduceOnly')) and cat != 'spot')
        order.extra.update({'category': cat, 'tif': tif,
                            'direction': 1 if rising else 2 if trigger else 0})
        if tp:
            order.extra['tp'] = tp
        if sl:
            order.extra['sl'] = sl
        return cat, order

    def find(self, key, cat, params, symbol_required=True):
        symbol = self.rest.market(params, cat, required=symbol_required)
        oid, link = params.get('orderId'), params.get('orderLinkId')
        engine = self.sim.category_engine(cat)
        for o in reversed(list(engine.orders.values())):
            if o.account != key or o.extra.get('category') != cat or \
                    (symbol and o.symbol != symbol):
                continue
            if (oid and str(o.id) == str(oid)) or (not oid and link and o.client_id == link):
                return o
        return None

    def _open_order(self, key, cat, params, verb):
        order = self.find(key, cat, params)
        if verb == 'cancel' and cat == 'spot' and order is not None and order.stop_price \
                and not order.triggered and params.get('orderFilter') != 'StopOrder':
            order = None    # spot cancel: orderFilter picks the book searched, 'Order' by default
        if order is None or not order.is_open:
            raise BybitError(170213 if cat == 'spot' else 110001,
                             'Order does not exist.' if cat == 'spot' else
                             'order not exists or too late to %s' % verb)
        return order

    # -- one order --------------------------------------------------------------------------
    async def _create(self, key, params):
        cat, order = self.parse_order(key, params)
        order = await self.rest.engine_call(cat, self.sim.category_engine(cat).place, order)
        return cat, order

    async def _cancel(self, key, params):
        cat = self.rest.category(params)
        order = self._open_order(key, cat, params, 'cancel')
        engine = self.sim.category_engine(cat)
        await self.rest.engine_call(cat, engine.cancel, key, order.symbol, order.id)
        return cat, order

    async def _amend(self, key, params):
        cat = self.rest.category(params)
        order = self._open_order(key, cat, params, 'amend')
        qty = _price_param(params, 'qty')
        price = _price_param(params, 'price')
        trigger = _price_param(params, 'triggerPrice')
        tp, sl = parse_tpsl(params, cat)
        if price is not None and not order.is_limit:
            raise BybitError(10001, 'params error: price can only be amended on a Limit order')
        if trigger is not None and not order.stop_price:
            raise BybitError(10001, 'params error: triggerPrice can only be amended on a '
                             'conditional order')
        if qty is None and price is None and trigger is None and tp is None and sl is None:
            raise BybitError(10001, 'params error: nothing to amend: pass qty, price, '
                             'triggerPrice, takeProfit or stopLoss')
        if tp or sl:
            check_tpsl_side(order.side == 'BUY', price or order.price or order.stop_price or
                            dec(self.sim.market_price(cat, order.symbol)), tp, sl)
        engine = self.sim.category_engine(cat)
        await self.rest.engine_call(cat, amend_in_engine, engine, order, qty, price, trigger)
        for name, value in (('tp', tp), ('sl', sl)):
            if value is not None:   # "0" cancels the order's take profit / stop loss
                order.extra[name] = value or None
        return cat, order

    async def order_create(self, request):
        key, params = await self.rest.signed(request)
        _, order = await self._create(key, params)
        return self.rest.reply({'orderId': str(order.id), 'orderLinkId': order.client_id})

    async def order_cancel(self, request):
        key, params = await self.rest.signed(request)
        _, order = await self._cancel(key, params)
        return self.rest.reply({'orderId': str(order.id), 'orderLinkId': order.client_id})

    async def order_amend(self, request):
        key, params = await self.rest.signed(request)
        _, order = await self._amend(key, params)
        return self.rest.reply({'orderId': str(order.id), 'orderLinkId': order.client_id})

    async def cancel_all(self, request):
        key, params = await self.rest.signed(request)
        cat = self.rest.category(params)
        symbol = self.rest.market(params, cat, required=False)
        engine = self.sim.category_engine(cat)
        done = [engine.cancel(key, o.symbol, o.id) for o in engine.open_orders(key, symbol)
                if o.extra.get('category') == cat]
        await self.sim.flush_events()
        return self.rest.reply({'list': [{'orderId': str(o.id), 'orderLinkId': o.client_id}
                                         for o in done], 'success': '1'})

    # -- batches ------------------------------------------------------------------------------
    async def _batch(self, request, action, created=False):
        """Each request item succeeds or fails on its own: ``result.list`` and
        ``retExtInfo.list`` line up item by item (code 0 / "OK" on success)."""
        key, params = await self.rest.signed(request)
        cat = self.rest.category(params)
        items = params.get('request')
        if not isinstance(items, list) or not items:
            raise BybitError(10001, 'params error: request must be a non-empty list')
        if len(items) > BATCH_MAX[cat]:
            raise BybitError(10001, 'params error: at most %d orders per batch for %s'
                             % (BATCH_MAX[cat], cat))
        results, infos = [], []
        for item in items:
            item = dict(item, category=cat)
            try:
                _, order = await action(key, item)
                row = {'category': cat, 'symbol': order.symbol, 'orderId': str(order.id),
                       'orderLinkId': order.client_id}
                info = {'code': 0, 'msg': 'OK'}
            except BybitError as err:
                row = {'category': cat, 'symbol': item.get('symbol', ''), 'orderId': '',
                       'orderLinkId': item.get('orderLinkId', '')}
                info = {'code': err.code, 'msg': err.msg}
            if created:
                row['createAt'] = str(order.time) if info['code'] == 0 else ''
            results.append(row)
            infos.append(info)
        return self.rest.reply({'list': results}, ext={'list': infos})

    async def create_batch(self, request):
        return await self._batch(request, self._create, created=True)

    async def amend_batch(self, request):
        return await self._batch(request, self._amend)

    async def cancel_batch(self, request):
        return await self._batch(request, self._cancel)

    # -- queries ----------------------------------------------------------------------------
    def _orders(self, key, cat, params, open_only):
        symbol = self.rest.market(params, cat, required=False)
        engine = self.sim.category_engine(cat)
        out = [o for o in engine.orders.values() if o.account == key and
               o.extra.get('category') == cat and (symbol is None or o.symbol == symbol)]
        if params.get('orderId') or params.get('orderLinkId'):
            found = self.find(key, cat, params, symbol_required=False)
            out = [found] if found else []
        if params.get('orderFilter') == 'StopOrder':
            out = [o for o in out if o.stop_price]
        by_id = params.get('orderId') or params.get('orderLinkId')
        if open_only and not by_id:
            # openOnly 0 (default): open orders; 1/2: also the recently closed ones
            recent = self.sim.clock.now - 600000 if str(params.get('openOnly', '0')) != '0' \
                else None
            out = [o for o in out if o.is_open or (recent and o.update_time >= recent)]
        elif not open_only:
            out = [o for o in out if not o.is_open]
        limit = min(int(params.get('limit') or 20), 50)
        return sorted(out, key=lambda o: -o.id)[:limit]

    async def _query(self, request, open_only):
        key, params = await self.rest.signed(request)
        cat = self.rest.category(params)
        rules = self.sim.category_markets(cat)
        orders = self._orders(key, cat, params, open_only=open_only)
        return self.rest.reply({'category': cat, 'nextPageCursor': '',
                                'list': [order_info(o, rules[o.symbol]) for o in orders]})

    async def order_realtime(self, request):
        return await self._query(request, True)

    async def order_history(self, request):
        return await self._query(request, False)
