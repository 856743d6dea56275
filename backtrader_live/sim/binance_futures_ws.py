"""Binance futures user-data streams (listenKey) for USD-M and COIN-M.

USD-M: ``/private/ws?listenKey=LK`` (also ``/private/ws/LK``), the split-path
form ccxt builds from a base ending in ``/ws``.  COIN-M: ``/dapi/ws/LK`` (the
``<base>/<listenKey>`` form, under the ``/dapi`` prefix of this server).

Events: ``ORDER_TRADE_UPDATE``, ``ACCOUNT_UPDATE`` (reason ORDER, FUNDING_FEE,
DEPOSIT) and ``ALGO_UPDATE`` for conditional orders; a listenKey that expired
gets one ``listenKeyExpired`` event.  Messages go through the spot streams'
outbox so one ``flush`` writes everything in order.
"""
import asyncio
import logging

from aiohttp import WSMsgType

from .binance_futures_shapes import account_update, algo_update, order_trade_update
from .binance import wall_ms
from .binance_ws import dumps
from .models import fmt

log = logging.getLogger(__name__)


class Combined:
    """A combined-stream socket seen as a user-data socket: wraps each event."""

    def __init__(self, ws, name):
        self.ws, self.name = ws, name

    @property
    def closed(self):
        return self.ws.closed

    async def send_str(self, text):
        await self.ws.send_str('{"stream":%s,"data":%s}' % (dumps(self.name), text))

    async def close(self, **kwargs):
        await self.ws.close(**kwargs)


class FuturesStreams:
    """User-data sockets per listenKey, fed by the derivative engines' events."""

    def __init__(self, sim):
        self.sim = sim
        self.users = {}          # (venue, listenKey) -> [ws]
        self._announced = set()  # algo ids whose trigger was announced
        self._expired = set()

    def add_routes(self, app):
        app.router.add_get('/private/ws', self.private_ws)
        app.router.add_get('/private/ws/{lk}', self.private_ws)

    def listener(self, venue):
        return lambda kind, payload: self.on_engine_event(venue, kind, payload)

    def is_listen_key(self, venue, lk):
        return lk in self.sim.futures_rest[venue].listen_keys

    def is_live_key(self, venue, lk):
        return self.sim.futures_rest[venue].listen_key_owner(lk) is not None

    def attach(self, venue, lk, ws, combined):
        """A market-stream connection that SUBSCRIBEd a listenKey: it hears the
        account's events too (wrapped ``{"stream": lk, "data"}`` when combined)."""
        self.users.setdefault((venue, lk), []).append(Combined(ws, lk) if combined else ws)

    def detach(self, venue, lk, ws):
        socks = self.users.get((venue, lk), [])
        socks[:] = [s for s in socks if s is not ws and getattr(s, 'ws', None) is not ws]

    # -- connections ----------------------------------------------------------------
    async def private_ws(self, request):
        lk = request.match_info.get('lk') or request.query.get('listenKey', '')
        return await self.serve_user(request, 'fapi', lk)

    async def serve_user(self, request, venue, lk):
        streams = self.sim.streams
        ws, pinger = await streams._open(request, 'private')
        if self.sim.futures_rest[venue].listen_key_owner(lk) is None:
            await ws.send_str(dumps({'error': {'code': -1125,
                                               'msg': 'This listenKey does not exist.'}}))
            pinger.cancel()
            await ws.close(code=1008, message=b'invalid listenKey')
            return ws
        self.users.setdefault((venue, lk), []).append(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:  # futures user streams ignore requests
                    log.debug('ignoring a client message on a user stream: %s', msg.data)
        finally:
            pinger.cancel()
            socks = self.users.get((venue, lk), [])
            if ws in socks:
                socks.remove(ws)
        return ws

    async def close_user(self, lk):
        for (venue, key), socks in list(self.users.items()):
            if key == lk:
                del self.users[(venue, key)]
                await asyncio.gather(*(ws.close() for ws in socks), return_exceptions=True)

    def expire_all(self):
        """Fault: every listenKey expires now; each socket hears
        ``listenKeyExpired`` once. Returns how many sockets were told."""
        now = wall_ms()
        for rest in self.sim.futures_rest.values():
            for entry in rest.listen_keys.values():
                entry[1] = min(entry[1], now)
        count = 0
        for (_, lk), socks in self.users.items():
            if lk not in self._expired:
                self._expired.add(lk)
                text = dumps({'e': 'listenKeyExpired', 'E': now, 'listenKey': lk})
                self.sim.streams._outbox.extend((ws, text) for ws in socks)
                count += len(socks)
        return count

    def all_sockets(self):
        return [ws for socks in self.users.values() for ws in socks]

    def forget_sockets(self):
        self.users = {}

    def user_count(self, venue, api_key):
        rest = self.sim.futures_rest[venue]
        return sum(len(socks) for (v, lk), socks in self.users.items()
                   if v == venue and rest.listen_key_owner(lk) == api_key)

    # -- events -----------------------------------------------------------------------
    def _send(self, venue, api_key, event):
        rest = self.sim.futures_rest[venue]
        for (v, lk), socks in self.users.items():
            if v != venue or rest.listen_keys.get(lk, [None])[0] != api_key:
                continue
            if rest.listen_key_owner(lk) is None:  # expired: say so once, then silence
                if lk not in self._expired:
                    self._expired.add(lk)
                    text = dumps({'e': 'listenKeyExpired', 'E': wall_ms(), 'listenKey': lk})
                    self.sim.streams._outbox.extend((ws, text) for ws in socks)
                continue
            text = dumps(event)
            self.sim.streams._outbox.extend((ws, text) for ws in socks)

    def on_engine_event(self, venue, kind, payload):
        engine = self.sim.deriv_engines[venue]
        now = self.sim.clock.now
        if kind == 'order':
            order, exec_type, trade = payload
            for event in self._order_events(order, exec_type, trade, now,
                                            engine.markets[order.symbol]):
                self._send(venue, order.account, event)
        elif kind == 'account':
            key, reason, assets, symbols, change = payload
            self._send(venue, key, account_update(engine, engine.accounts[key], reason,
                                                  assets, symbols, now, change))
        elif kind == 'leverage':
            key, symbol, leverage = payload
            self._send(venue, key, {'e': 'ACCOUNT_CONFIG_UPDATE', 'E': wall_ms(), 'T': now,
                                    'ac': {'s': symbol, 'l': leverage}})

    def _order_events(self, order, exec_type, trade, now, rules):
        """An algo order speaks ALGO_UPDATE until it triggers, then also order events."""
        if not order.extra.get('algo'):
            return [order_trade_update(order, exec_type, trade, now, rules)]
        if not order.triggered:
            return [algo_update(order, now, rules)]
        out = []
        if order.id not in self._announced:
            self._announced.add(order.id)
            announced = order.copy()
            announced.status, announced.executed = 'NEW', 0
            out.append(algo_update(announced, now, rules))
            out[-1]['o']['X'] = 'TRIGGERED'
            out.append(order_trade_update(announced, 'NEW', None, now, rules))
        if exec_type not in ('NEW', 'TRIGGERED'):
            out.append(order_trade_update(order, exec_type, trade, now, rules))
        if not order.is_open:
            out.append(algo_update(order, now, rules))
        return out

    def mark_price_event(self, venue, symbol):
        engine = self.sim.deriv_engines[venue]
        now = self.sim.clock.now
        nxt = (now // engine.funding_ms + 1) * engine.funding_ms
        mark = fmt(engine.price_of(symbol))
        return {'e': 'markPriceUpdate', 'E': now, 's': symbol, 'p': mark, 'i': mark,
                'P': mark, 'r': fmt(engine.funding_rate_of(symbol)), 'T': nxt}
