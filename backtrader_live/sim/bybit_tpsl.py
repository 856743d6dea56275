"""Bybit's position take-profit / stop-loss ("Full" tpslMode) for linear and inverse.

Facts from Bybit's v5 docs (Set Trading Stop, Place Order): a TP/SL set on a
position, by ``POST /v5/position/trading-stop`` or by ``takeProfit``/``stopLoss``
on an order that then fills, becomes a conditional order the system keeps
itself: it closes the whole position when the price reaches it, its size
follows the position, and it is cancelled once the position is closed.  A
long's take profit lies above the price and its stop loss below (a short:
the other way round); "0" cancels one; a flat position cannot carry any.

Here each is a conditional reduce-only market order of the matching engine
(``close_position``: the whole position), ``stopOrderType`` TakeProfit or
StopLoss, and the position's ``takeProfit``/``stopLoss`` show their prices.
The trigger is the market price (mark = index = last price here).
"""
import itertools

from .bybit_orders import check_tpsl_side, parse_tpsl
from .bybit_shapes import BybitError
from .models import EngineError, Order, dec

KINDS = {'tp': ('TakeProfit', 'CreateByTakeProfit'), 'sl': ('StopLoss', 'CreateByStopLoss')}


class PositionStops:
    """The live TP/SL orders per (api key, symbol) of one contract engine."""

    def __init__(self, sim):
        self.sim = sim
        self.engine = sim.contracts
        self.stops = {}      # (key, symbol) -> {'tp': Order, 'sl': Order}
        self._pending = {}   # (key, symbol) -> (tp, sl) of an order that just filled
        self._ids = itertools.count(1)
        self.engine.listeners.append(self.on_event)

    def levels(self, key, symbol):
        """(take profit, stop loss) prices of a position, None where unset."""
        held = self.stops.get((key, symbol), {})
        return tuple(held[k].stop_price if k in held and held[k].is_open else None
                     for k in ('tp', 'sl'))

    # -- engine listener ------------------------------------------------------------------
    def on_event(self, kind, payload):
        if kind == 'order':
            order, exec_type, trade = payload
            if trade is not None and (order.extra.get('tp') or order.extra.get('sl')):
                # the position moves right after this event: apply at the account event
                self._pending[(order.account, order.symbol)] = (order.extra.get('tp'),
                                                                order.extra.get('sl'))
        elif kind == 'account':
            key, symbols = payload[0], payload[3]
            for symbol in symbols:
                tp, sl = self._pending.pop((key, symbol), (None, None))
                if tp or sl:
                    self.set(key, symbol, tp, sl)
                self._follow(key, symbol)

    def _follow(self, key, symbol):
        """Size the stops to the position; cancel them once it is closed (or flipped)."""
        held = self.stops.get((key, symbol))
        if not held:
            return
        pos = self.engine.accounts[key].position(symbol)
        for name, order in list(held.items()):
            if not order.is_open:
                del held[name]
            elif not pos.size or (pos.size > 0) == (order.side == 'BUY'):
                del held[name]
                order.extra['cancel_type'] = 'CancelByTpSlTsClear'   # Bybit's word
                self.engine.cancel(key, symbol, order.id)
            elif not order.triggered:
                order.qty = abs(pos.size)
        if not held:
            del self.stops[(key, symbol)]

    # -- setting ---------------------------------------------------------------------------------
    def set(self, key, symbol, tp=None, sl=None):
        """Replace the position's TP and/or SL (0: cancel it, None: leave it)."""
        pos = self.engine.accounts[key].position(symbol)
        held = self.stops.setdefault((key, symbol), {})
        for name, price in (('tp', tp), ('sl', sl)):
            if price is None:
                continue
            old = held.pop(name, None)
            if old is not None and old.is_open:
                self.engine.cancel(key, symbol, old.id)
            if price and pos.size:
                held[name] = self._place(key, symbol, name, price, pos)
        if not held:
            self.stops.pop((key, symbol), None)

    def _place(self, key, symbol, name, price, pos):
        stop_type, create_type = KINDS[name]
        long = pos.size > 0
        rising = (name == 'tp') == long   # a long's TP and a short's SL trigger upwards
        rules = self.engine.markets[symbol]
        order = Order(id=0, client_id='%s-%d' % (stop_type, next(self._ids)), account=key,
                      symbol=symbol, side='SELL' if long else 'BUY', type='Market',
                      qty=abs(pos.size), stop_price=price, trigger_above=rising,
                      triggered=False, reduce_only=True, close_position=True, tif='IOC')
        order.extra.update({'category': 'inverse' if rules.inverse else 'linear',
                            'tif': 'IOC', 'stop_type': stop_type, 'create_type': create_type,
                            'direction': 1 if rising else 2})
        try:
            return self.engine.place(order)
        except EngineError as err:
            if err.reason != 'would_trigger':
                raise
        # the price is already past the level (it moved while the order filled):
        # it triggers at once, as the exchange's next tick would
        order.triggered = True
        return self.engine.place(order)

    # -- POST /v5/position/trading-stop -------------------------------------------------------
    async def trading_stop(self, request):
        rest = self.sim.rest
        key, params = await rest.signed(request)
        cat = rest.category(params, ('linear', 'inverse'))
        symbol = rest.market(params, cat)
        if str(params.get('positionIdx', '0')) != '0':
            raise BybitError(10001, 'params error: positionIdx must be 0 (one-way mode)')
        if params.get('trailingStop') not in (None, '', '0'):
            raise BybitError(10001, 'params error: trailingStop is not supported by this '
                             'simulator')
        if not params.get('tpslMode'):
            raise BybitError(10001, 'params error: tpslMode is required (Full)')
        tp, sl = parse_tpsl(params, cat)
        if tp is None and sl is None:
            raise BybitError(10001, 'params error: pass takeProfit and/or stopLoss')
        pos = self.engine.accounts[key].position(symbol)
        if not pos.size:
            raise BybitError(10001, 'can not set tp/sl/ts for zero position')
        check_tpsl_side(pos.size > 0, dec(self.sim.market_price(cat, symbol)), tp, sl)
        current = dict(zip(('tp', 'sl'), self.levels(key, symbol)))
        if all((current[k] or 0) == v for k, v in (('tp', tp), ('sl', sl)) if v is not None):
            raise BybitError(34040, 'not modified')
        self.set(key, symbol, tp, sl)
        await self.sim.flush_events()
        return rest.reply({})
