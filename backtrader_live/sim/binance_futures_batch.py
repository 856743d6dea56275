"""Binance futures order modify and batch orders, USD-M and COIN-M.

* ``POST /fapi/v1/order/test``: validated like a new order, nothing placed.
* ``PUT /fapi|dapi/v1/order``: a resting LIMIT order takes a new quantity and
  price (or ``priceMatch``); USD-M needs both, COIN-M at least one
  (:meth:`.engine.Engine.amend` has the matching rules).
* ``POST /…/v1/batchOrders`` (``batchOrders``: a JSON list of at most 5 orders),
  ``PUT /…/v1/batchOrders`` (5 modifies), ``DELETE /…/v1/batchOrders``
  (``orderIdList`` or ``origClientOrderIdList``, at most 10): each item is
  answered in place, an order or ``{"code", "msg"}`` - one bad item never fails
  the others.
"""
import json

from .binance import ApiError, mandatory
from .binance_futures_shapes import order_info
from .models import dec

BATCH_LIMITS = {'batchOrders': 5, 'orderIdList': 10, 'origClientOrderIdList': 10}
#: what a modify must carry besides the order id: USD-M both, COIN-M either one
MODIFY_NEEDS = {'fapi': 'both', 'dapi': 'either'}


class FuturesBatch:
    """Modify and batch handlers of one :class:`.binance_futures.FuturesRest`."""

    def __init__(self, rest):
        self.rest = rest

    def add_routes(self, app):
        p = self.rest.spec['prefix'] + '/v1/'
        app.router.add_put(p + 'order', self.modify_order)
        app.router.add_post(p + 'batchOrders', self.post_batch)
        app.router.add_put(p + 'batchOrders', self.modify_batch)
        app.router.add_delete(p + 'batchOrders', self.cancel_batch)
        if self.rest.venue == 'fapi':  # USD-M only: COIN-M has no test order
            app.router.add_post(p + 'order/test', self.test_order)

    async def test_order(self, request):
        """POST /fapi/v1/order/test: validated like a new order (filters, margin,
        positionSide, priceMatch), never placed; answers ``{}``."""
        acct, params = await self.rest.signed(request)
        order = self.rest.parse_order(acct.key, params)
        await self.rest._engine_call(self.engine.check, order, symbol=order.symbol)
        return self.rest.reply({})

    @property
    def engine(self):
        return self.rest.engine

    # -- one modify -------------------------------------------------------------------
    async def modify_order(self, request):
        acct, params = await self.rest.signed(request)
        order = await self._modify(acct.key, params)
        return self.rest.reply(order_info(order, self.rest.rules(order)))

    async def _modify(self, key, params):
        rest = self.rest
        symbol = rest.market(params)
        if not params.get('side'):
            raise mandatory('side')
        order = rest._find(key, params)
        if order is None or not order.is_open or not order.triggered:
            raise ApiError(400, -2013, 'Order does not exist.')
        if order.type != 'LIMIT':  # Binance modifies LIMIT orders only
            raise ApiError(400, -1116, 'Invalid orderType.')
        if order.side != params['side']:
            raise ApiError(400, -1102, "Mandatory parameter 'side' was not sent, was "
                                       "empty/null, or malformed.")
        qty, price = self._new_values(order, params, symbol)
        if qty == order.qty and price == order.price:
            raise ApiError(400, -5027, 'No need to modify the order.')
        return await rest._engine_call(self.engine.amend, order, qty, price, symbol=symbol)

    def _new_values(self, order, params, symbol):
        match = params.get('priceMatch') or 'NONE'
        has_price = bool(params.get('price')) or match != 'NONE'
        if MODIFY_NEEDS[self.rest.venue] == 'both':
            for name, present in (('quantity', params.get('quantity')), ('price', has_price)):
                if not present:
                    raise mandatory(name)
        elif not (params.get('quantity') or has_price):
            raise ApiError(400, -1102, "Param 'quantity' or 'price' must be sent, but both "
                                       "were empty/null!")
        qty = dec(params['quantity']) if params.get('quantity') else order.qty
        price = dec(params['price']) if params.get('price') else order.price
        if match != 'NONE':
            probe = dict(params, type='LIMIT', quantity=str(qty))
            price = self.rest.parse_order(order.account, probe).price
            order.extra['price_match'] = match
        return qty, price

    async def modify_batch(self, request):
        acct, params = await self.rest.signed(request)
        items = self._batch(params, 'batchOrders')
        out = []
        for item in items:
            out.append(await self._each(lambda i=item: self._modify(acct.key, dict(i))))
        return self.rest.reply(out, weight=5)

    # -- batches ------------------------------------------------------------------------
    def _batch(self, params, name):
        raw = params.get(name)
        if not raw:
            raise mandatory(name)
        try:
            items = json.loads(raw)
        except ValueError:
            raise ApiError(400, -1130, "Data sent for parameter '%s' is not valid." % name) \
                from None
        if not isinstance(items, list) or not items:
            raise ApiError(400, -1130, "Data sent for parameter '%s' is not valid." % name)
        if len(items) > BATCH_LIMITS[name]:
            raise ApiError(400, -1130, "Data sent for parameter '%s' is not valid: at most "
                                       "%d items." % (name, BATCH_LIMITS[name]))
        return [{k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in i.items()}
                if isinstance(i, dict) else i for i in items]

    async def _each(self, call):
        """One batch item: its order's JSON, or Binance's error object for it."""
        try:
            order = await call()
        except ApiError as err:
            return {'code': err.code, 'msg': err.msg}
        return order_info(order, self.rest.rules(order))

    async def post_batch(self, request):
        acct, params = await self.rest.signed(request)
        out = []
        for item in self._batch(params, 'batchOrders'):
            if not isinstance(item, dict):
                out.append({'code': -1130, 'msg': 'Data sent for parameter \'batchOrders\' '
                                                  'is not valid.'})
                continue
            out.append(await self._each(
                lambda i=item: self.rest._place(acct.key, i, algo=False)))
        return self.rest.reply(out, weight=5)

    async def cancel_batch(self, request):
        acct, params = await self.rest.signed(request)
        symbol = self.rest.market(params)
        # the exchange reads these two names case-insensitively (ccxt sends
        # ``orderidlist``)
        lists = {k.lower(): v for k, v in params.items()}
        if lists.get('orderidlist'):
            ids = [{'orderId': str(i)} for i in self._batch(
                {'orderIdList': lists['orderidlist']}, 'orderIdList')]
        elif lists.get('origclientorderidlist'):
            ids = [{'origClientOrderId': str(c)} for c in self._batch(
                {'origClientOrderIdList': lists['origclientorderidlist']},
                'origClientOrderIdList')]
        else:
            raise ApiError(400, -1102, "Param 'orderIdList' or 'origClientOrderIdList' must be "
                                       "sent, but both were empty/null!")
        out = []
        for ref in ids:
            out.append(await self._each(
                lambda r=ref: self.rest._cancel(acct.key, dict(r, symbol=symbol), algo=False)))
        return self.rest.reply(out, weight=1)
