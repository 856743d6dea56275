"""The Bybit v5 WebSocket side: public klines and the private account topics.

Public ``/v5/public/spot|linear|inverse``: ``{"op":"subscribe","args":["kline.60.BTCUSDT"]}``;
each clock move sends, per closed bar, a ``confirm:false`` update then the
``confirm:true`` one (once per bar per connection), then the forming bar.
``tickers.<symbol>`` (a snapshot on subscribe; then spot: snapshots, contracts:
deltas of the changed fields), ``orderbook.<1|50|200|1000>.<symbol>`` (a snapshot
on subscribe, then deltas of the changed levels, a size of "0" deleting one; depth
1: snapshots only) and ``publicTrade.<symbol>`` (the prints of :mod:`.bybit_market`
the clock move crossed) follow the same clock.
Private ``/v5/private``: ``{"op":"auth","args":[key, expires, hex HMAC(secret,
"GET/realtime"+expires)]}`` then topics ``order``, ``execution``, ``position``,
``wallet`` (also ``order.linear`` etc.).  ``{"op":"ping"}`` gets a pong.
"""
import asyncio
import hashlib
import hmac
import itertools
import json
import uuid

from aiohttp import WSMsgType

from .faults_subscribe import request_field
from . import bybit_market as mkt
from .bybit import wall_ms
from .bybit_shapes import (BYBIT_INTERVALS, execution_info, order_info, position_info,
                           wallet)

PRIVATE_TOPICS = ('order', 'execution', 'position', 'wallet')


def dumps(data):
    return json.dumps(data, separators=(',', ':'))


class Conn:
    def __init__(self, ws, category):
        self.ws = ws
        self.category = category      # spot / linear / inverse, or 'private'
        self.topics = {}              # topic -> last confirmed bar start (klines)
        self.key = None               # api key once authenticated
        self.pending = []             # snapshots owed after a subscribe reply
        self.seq = itertools.count(1)  # orderbook update ids ("u") of this connection
        self.id = str(uuid.UUID(int=next(Conn._ids)))

    _ids = itertools.count(1)


class BybitStreams:
    def __init__(self, sim):
        self.sim = sim
        self.conns = []
        self._outbox = []

    def add_routes(self, app):
        for cat in ('spot', 'linear', 'inverse'):
            app.router.add_get('/v5/public/' + cat, self._handler(cat))
        app.router.add_get('/v5/private', self._handler('private'))

    def _handler(self, category):
        async def handler(request):
            return await self.serve(request, category)
        return handler

    async def serve(self, request, category):
        ws, pinger = await self.sim.open_ws(
            request, 'private' if category == 'private' else 'public')
        conn = Conn(ws, category)
        self.conns.append(conn)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    if conn.category == 'private' and request_field(msg.data, 'op') == 'subscribe':
                        await self.sim.faults.user_subscription_gate()     # a fault's hold
                    reply = self.control(conn, msg.data)
                    # a network's round trip: clients that file a request only after
                    # sending it (pybit) lose replies that come back at once
                    await asyncio.sleep(self.sim.ws_reply_delay)
                    await ws.send_str(dumps(reply))
                    while conn.pending:  # the snapshots follow the subscribe reply
                        await ws.send_str(dumps(conn.pending.pop(0)))
        finally:
            pinger.cancel()
            if conn in self.conns:
                self.conns.remove(conn)
        return ws

    # -- requests ------------------------------------------------------------------
    def control(self, conn, text):
        try:
            req = json.loads(text)
            op, args, rid = req.get('op'), req.get('args') or [], req.get('req_id', '')
        except (ValueError, AttributeError):
            return {'success': False, 'ret_msg': 'Invalid JSON', 'op': '', 'conn_id': conn.id}
        base = {'req_id': rid, 'conn_id': conn.id, 'op': op}
        if op == 'ping':
            if conn.category == 'private':
                return dict(base, op='pong', args=[str(wall_ms())])
            return dict(base, success=True, ret_msg='pong')
        if op == 'auth':
            ok, msg = self.auth(conn, args)
            return dict(base, success=ok, ret_msg=msg)
        if op in ('subscribe', 'unsubscribe'):
            bad = [a for a in args if not self.valid_topic(conn, a)]
            if bad:
                return dict(base, success=False, ret_msg='Invalid topic: %s' % bad[0])
            for topic in args:
                if op == 'subscribe':
                    conn.topics[topic] = self._initial_state(conn, topic)
                else:
                    conn.topics.pop(topic, None)
            return dict(base, success=True, ret_msg='')
        return dict(base, success=False, ret_msg='Unknown op: %s' % op)

    def auth(self, conn, args):
        if conn.category != 'private' or len(args) != 3:
            return False, 'Params Error'
        key, expires, signature = args
        secret = self.sim.secrets.get(key)
        if secret is None:
            return False, 'Invalid apikey'
        if int(expires) <= wall_ms():
            return False, 'Params Error: request expired'
        expected = hmac.new(secret.encode(), ('GET/realtime' + str(expires)).encode(),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, str(signature)):
            return False, 'Request not authorized'
        conn.key = key
        return True, ''

    def valid_topic(self, conn, topic):
        if conn.category == 'private':
            return conn.key is not None and topic.split('.')[0] in PRIVATE_TOPICS
        parts = topic.split('.')
        if parts[-1] not in self.sim.category_markets(conn.category):
            return False
        if len(parts) == 2:
            return parts[0] in ('tickers', 'publicTrade')
        return len(parts) == 3 and (parts[0] == 'kline' and parts[1] in BYBIT_INTERVALS or
                                    parts[0] == 'orderbook' and parts[1] in mkt.WS_DEPTHS)

    def _initial_state(self, conn, topic):
        """The topic's per-connection state; queues the snapshot it starts with."""
        if conn.category == 'private':
            return None
        kind, symbol = topic.split('.')[0], topic.split('.')[-1]
        if kind == 'kline':
            return self._last_closed(conn, topic)
        if kind == 'tickers':
            data = mkt.ticker(self.sim, conn.category, symbol)
            conn.pending.append(self._ticker_msg(topic, 'snapshot', data))
            return data
        if kind == 'orderbook':
            state = self._book(conn, topic)
            conn.pending.append(self._book_msg(conn, topic, 'snapshot', state))
            return state
        return None  # publicTrade: prints from now on

    def _last_closed(self, conn, topic):
        _, code, symbol = topic.split('.')
        feed, now = self.sim.feed_of(conn.category, symbol), self.sim.clock.now
        interval = BYBIT_INTERVALS[code]
        rows, closed = feed.bars(interval, now, start=now - 2 * _span(interval))
        done = rows if closed else rows[:-1]
        return done[-1][0] if done else -1

    def subscriber_count(self, topic):
        return sum(1 for c in self.conns if topic in c.topics)

    def private_count(self, key):
        return sum(1 for c in self.conns if c.key == key and c.topics)

    # -- market data ---------------------------------------------------------------------
    def publish(self, before, now):
        for conn in self.conns:
            if conn.category == 'private':
                continue
            for topic in list(conn.topics):
                kind = topic.split('.')[0]
                if kind == 'kline':
                    msgs = [{'topic': topic, 'data': [data], 'ts': now, 'type': 'snapshot'}
                            for data in self._kline_updates(conn, topic, before, now)]
                else:
                    msgs = getattr(self, '_%s_updates' % kind)(conn, topic, before, now)
                self._outbox.extend((conn.ws, dumps(m)) for m in msgs)

    def _ticker_msg(self, topic, kind, data):
        now = self.sim.clock.now
        return {'topic': topic, 'type': kind, 'data': data, 'cs': now, 'ts': now}

    def _tickers_updates(self, conn, topic, before, now):
        """Spot: a snapshot per move; contracts: a delta of the changed fields."""
        data = mkt.ticker(self.sim, conn.category, topic.split('.')[1])
        if conn.category == 'spot':
            return [self._ticker_msg(topic, 'snapshot', data)]
        last, conn.topics[topic] = conn.topics[topic], data
        delta = {k: v for k, v in data.items() if last.get(k) != v}
        if not delta:
            return []
        return [self._ticker_msg(topic, 'delta', dict(delta, symbol=data['symbol']))]

    def _book(self, conn, topic):
        _, depth, symbol = topic.split('.')
        levels = mkt.book(self.sim, conn.category, symbol, int(depth))
        return {side: dict(rows) for side, rows in levels.items()}

    def _book_msg(self, conn, topic, kind, levels):
        now = self.sim.clock.now
        data = {'s': topic.split('.')[2], 'u': next(conn.seq), 'seq': now}
        data.update({side: [[p, q] for p, q in rows.items()] for side, rows in levels.items()})
        return {'topic': topic, 'type': kind, 'ts': now, 'data': data, 'cts': now}

    def _orderbook_updates(self, conn, topic, before, now):
        """Changed levels since the last message ("0": level gone); depth 1: snapshots."""
        old, new = conn.topics[topic], self._book(conn, topic)
        conn.topics[topic] = new
        if topic.split('.')[1] == '1':
            return [self._book_msg(conn, topic, 'snapshot', new)] if new != old else []
        delta = {}
        for side in ('b', 'a'):
            rows = {p: '0' for p in old[side] if p not in new[side]}
            rows.update({p: q for p, q in new[side].items() if old[side].get(p) != q})
            delta[side] = rows
        if not delta['b'] and not delta['a']:
            return []
        return [self._book_msg(conn, topic, 'delta', delta)]

    def _publicTrade_updates(self, conn, topic, before, now):
        symbol = topic.split('.')[1]
        items = [mkt.ws_trade(p, conn.category)
                 for p in mkt.prints(self.sim, conn.category, symbol, before, now)]
        if not items:
            return []
        return [{'topic': topic, 'type': 'snapshot', 'ts': now, 'data': items}]

    def _kline_updates(self, conn, topic, before, now):
        _, code, symbol = topic.split('.')
        interval = BYBIT_INTERVALS[code]
        feed = self.sim.feed_of(conn.category, symbol)
        out = []
        for row in feed.closed_between(interval, before, now):
            if row[0] > conn.topics[topic]:
                end = feed.bar_end(row[0], interval)
                out.append(kline_data(row, end, code, now, False))
                out.append(kline_data(row, end, code, now, True))
                conn.topics[topic] = row[0]
        rows, closed = feed.bars(interval, now, start=now - _span(interval))
        if rows and not closed:
            out.append(kline_data(rows[-1], feed.bar_end(rows[-1][0], interval), code, now,
                                  False))
        return out

    # -- account events --------------------------------------------------------------------
    def on_engine_event(self, market, kind, payload):
        """Engine listener; ``market`` is 'spot' or 'contract'."""
        now = self.sim.clock.now
        if kind == 'order':
            order, exec_type, trade = payload
            cat = order.extra.get('category') or ('spot' if market == 'spot' else
                                                 self.sim.category_of(order.symbol))
            rules = self.sim.category_markets(cat)[order.symbol]
            self._private(order.account, 'order', cat, [order_info(order, rules)], now)
            if trade is not None:
                self._private(order.account, 'execution', cat,
                              [execution_info(trade, order, rules)], now)
        elif kind == 'funding':
            rules = self.sim.contracts.markets[payload.symbol]
            cat = 'inverse' if rules.inverse else 'linear'
            self._private(payload.account, 'execution', cat,
                          [execution_info(None, None, rules, funding=payload)], now)
        elif kind == 'account':
            key, _, _, symbols, _ = payload
            engine = self.sim.contracts
            for s in symbols:
                cat = 'inverse' if engine.markets[s].inverse else 'linear'
                self._private(key, 'position', cat, [position_info(
                    engine, engine.accounts[key], engine.accounts[key].position(s),
                    self.sim.tpsl.levels(key, s))], now)
            self._private(key, 'wallet', None, [wallet(self.sim, key)], now)
        elif kind == 'balance':
            self._private(payload[0], 'wallet', None, [wallet(self.sim, payload[0])], now)
        elif kind == 'leverage':      # pushed for a flat position too
            key, symbol, _ = payload
            engine = self.sim.contracts
            cat = 'inverse' if engine.markets[symbol].inverse else 'linear'
            self._private(key, 'position', cat, [position_info(
                engine, engine.accounts[key], engine.accounts[key].position(symbol))], now)

    def _private(self, key, topic, cat, data, now):
        for conn in self.conns:
            if conn.key != key:
                continue
            names = [topic] + (['%s.%s' % (topic, cat)] if cat else [])
            for name in names:
                if name in conn.topics:
                    self._outbox.append((conn.ws, dumps({
                        'id': uuid.uuid4().hex, 'topic': name, 'creationTime': now,
                        'data': data})))
                    break

    async def flush(self):
        while self._outbox:
            # fault injection may duplicate or reorder messages (sim/faults.py)
            batch, self._outbox = self.sim.faults.outgoing(self._outbox), []
            for ws, text in batch:
                if not ws.closed:
                    try:
                        await ws.send_str(text)
                    except (ConnectionError, RuntimeError):
                        pass    # the client went away meanwhile: nobody to deliver to

    async def close_all(self):
        socks = [c.ws for c in self.conns]
        self.conns = []
        for ws in socks:
            if not ws.closed:
                await ws.close(code=1001, message=b'server closing')


def _span(interval):
    from . import candles as cd
    return 2 * cd.INTERVAL_MS.get(interval, 31 * 86400000)


def kline_data(row, end, code, now, confirm):
    t, o, h, l, c, v = row
    return {'start': t, 'end': end - 1, 'interval': code, 'open': '%.8f' % o,
            'close': '%.8f' % c, 'high': '%.8f' % h, 'low': '%.8f' % l, 'volume': '%.8f' % v,
            'turnover': '%.8f' % (v * (o + c) / 2), 'confirm': confirm, 'timestamp': now}
