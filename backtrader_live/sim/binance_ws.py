"""The Binance spot WebSocket side: market streams and the WS-API user data.

Market streams: raw ``/ws/<stream>`` and combined ``/stream?streams=a/b``
(messages wrapped ``{"stream", "data"}``), plus live SUBSCRIBE / UNSUBSCRIBE /
LIST_SUBSCRIPTIONS on any of them.  The WS-API at ``/ws-api/v3`` serves
``userDataStream.subscribe.signature`` and pushes ``executionReport`` and
``outboundAccountPosition`` events as ``{"subscriptionId", "event"}``.

Messages are queued while the engine runs (it is synchronous) and written by
:meth:`BinanceStreams.flush`, which the simulator awaits before a step or an
order request returns: a test that stepped the clock can read its socket.
"""
import asyncio
import functools
import json
import logging
import weakref

from aiohttp import WSMsgType, web

from .faults_subscribe import request_field
from . import candles as cd
from .binance import ApiError, check_timestamp, hmac_hex, kline_row, trade_count, wall_ms
from .models import fmt

log = logging.getLogger(__name__)
PING_SECONDS = 20.0  # the spot stream server pings every 20 s
USER = object()  # conn.streams value of a listenKey subscription (futures user data)
#: stream kinds every venue serves (the part after ``<symbol>@``, speed suffix apart)
STREAM_KINDS = ('trade', 'aggTrade', 'bookTicker', 'ticker', 'miniTicker', 'depth',
                'depth5', 'depth10', 'depth20')
FUTURES_KINDS = ('markPrice',)
#: update-speed suffixes Binance accepts per kind (``btcusdt@depth@100ms``)
SPEEDS = {'depth': ('100ms', '250ms', '500ms', '1000ms'), 'markPrice': ('1s',)}


def dumps(data):
    return json.dumps(data, separators=(',', ':'))


class StreamConn:
    """One market-stream connection and what it is subscribed to."""

    def __init__(self, ws, combined, venue='spot'):
        self.ws = ws
        self.combined = combined
        self.venue = venue  # spot, fapi or dapi: which markets the names refer to
        self.streams = {}   # name -> last closed bar open time sent (kline) or None


class BinanceStreams:
    """All WebSocket connections of one simulator."""

    #: seconds between server pings; unlike aiohttp's heartbeat a missing pong does
    #: not drop the connection (Binance allows a minute; clients may be slow readers)
    ping_seconds = PING_SECONDS

    def __init__(self, sim):
        self.sim = sim
        self.conns = []                 # StreamConn (market streams)
        self.api_conns = weakref.WeakSet()  # WS-API sockets
        self.user_subs = {}             # api key -> [(ws, subscriptionId)]
        self._outbox = []               # (ws, text) waiting for flush
        self._next_sub = 0

    #: path prefix -> venue.  Spot keeps Binance's root paths; USD-M futures use the
    #: split fstream paths (/market, /public; /private is the user stream); COIN-M,
    #: whose real host dstream.binance.com also uses the root paths, is moved under
    #: /dapi so one port serves all three without ambiguity.
    PREFIXES = {'': 'spot', '/market': 'fapi', '/public': 'fapi', '/dapi': 'dapi'}

    def add_routes(self, app):
        for prefix, venue in self.PREFIXES.items():
            raw = functools.partial(self.raw_stream, venue=venue)
            combined = functools.partial(self.combined_stream, venue=venue)
            app.router.add_get(prefix + '/ws', raw)
            app.router.add_get(prefix + '/ws/{names:.*}', raw)
            app.router.add_get(prefix + '/stream', combined)
            app.router.add_get(prefix + '/stream/{rest:.*}', combined)
        app.router.add_get('/ws-api/v3', self.ws_api)

    # -- stream names -----------------------------------------------------------------
    def parse_stream(self, name, venue='spot'):
        """(symbol id, kind, interval) of a stream name, or None if not served.

        ``kind`` is the name's part after the symbol (``kline``, ``depth5``,
        ``depth@100ms``...); a futures ``<pair>_<contractType>@continuousKline_<i>``
        maps to the perpetual of that pair."""
        sym, _, kind = name.partition('@')
        symbol = self._stream_symbol(sym, kind, venue)
        if symbol is None:
            return None
        for prefix in ('kline_', 'continuousKline_'):
            if kind.startswith(prefix):
                interval = kind[len(prefix):]
                if interval not in cd.INTERVALS:
                    return None
                return symbol, prefix[:-1], interval
        base, _, speed = kind.partition('@')
        if speed and speed not in SPEEDS.get(base.rstrip('0123456789'), ()):
            return None
        if base in STREAM_KINDS or (venue != 'spot' and base in FUTURES_KINDS):
            return symbol, kind, None
        return None

    def _stream_symbol(self, sym, kind, venue):
        markets = self.sim.venue_markets(venue)
        if kind.startswith('continuousKline_'):
            pair, _, contract = sym.upper().rpartition('_')
            if venue == 'spot' or contract != 'PERPETUAL':
                return None
            sym = pair + ('_PERP' if venue == 'dapi' else '')
        symbol = sym.upper()
        return symbol if symbol in markets else None

    def feed_of(self, symbol, venue):
        rules = self.sim.venue_markets(venue)[symbol]
        return self.sim.clock.feeds[rules.feed or symbol]

    def subscribe(self, conn, names):
        """Add streams; a kline stream remembers which closed bar it saw last.
        On futures, a live listenKey is a stream too: the account's user data."""
        for name in names:
            if self._user_stream(conn, name):
                continue
            parsed = self.parse_stream(name, conn.venue)
            if parsed is None:
                raise ValueError('Invalid request: unknown stream %r' % name)
            symbol, kind, interval = parsed
            last = None
            if kind in ('kline', 'continuousKline'):
                rows, closed = self.feed_of(symbol, conn.venue).bars(
                    interval, self.sim.clock.now, start=self.sim.clock.now - _span(interval))
                done = rows if closed else rows[:-1]
                last = done[-1][0] if done else -1
            conn.streams[name] = last

    def _user_stream(self, conn, name):
        users = self.sim.futures_streams
        if conn.venue == 'spot' or not users.is_live_key(conn.venue, name):
            return False
        users.attach(conn.venue, name, conn.ws, conn.combined)
        conn.streams[name] = USER
        return True

    def _unsubscribe(self, conn, names):
        for name in names:
            if conn.streams.pop(name, None) is USER:
                self.sim.futures_streams.detach(conn.venue, name, conn.ws)

    def subscriber_count(self, name):
        return sum(1 for c in self.conns if name in c.streams)

    # -- market stream handlers ---------------------------------------------------------
    async def raw_stream(self, request, venue='spot'):
        names = [n for n in request.match_info.get('names', '').split('/') if n]
        if venue == 'dapi' and len(names) == 1 and \
                self.sim.futures_streams.is_listen_key('dapi', names[0]):
            # COIN-M user data keeps the <base>/ws/<listenKey> form
            return await self.sim.futures_streams.serve_user(request, 'dapi', names[0])
        return await self._serve(request, names, combined=False, venue=venue)

    async def combined_stream(self, request, venue='spot'):
        names = [n for n in request.query.get('streams', '').split('/') if n]
        return await self._serve(request, names, combined=True, venue=venue)

    async def _open(self, request, channel='public'):
        """Accept a WebSocket and start pinging it; returns (ws, pinger task).

        ``channel`` ('public' market data, 'private' user data) is what the
        fault injection (sim/faults.py) drops, stalls or scrambles.
        """
        self.sim.faults.admit_ws(channel)
        ws = web.WebSocketResponse(autoping=True)  # answers client pings itself
        await ws.prepare(request)
        self.sim.faults.track_ws(ws, channel)
        return ws, asyncio.get_running_loop().create_task(self._pinger(ws))

    async def _pinger(self, ws):
        while not ws.closed:
            await asyncio.sleep(self.ping_seconds)
            try:
                await ws.ping(b'sim')
            except (ConnectionError, RuntimeError):
                return

    async def _serve(self, request, names, combined, venue='spot'):
        ws, pinger = await self._open(request)
        conn = StreamConn(ws, combined, venue)
        # ccxt.pro opens <base>/<number> and subscribes later: ignore unknown path names
        self.subscribe(conn, [n for n in names if self.parse_stream(n, venue) or (
            venue != 'spot' and self.sim.futures_streams.is_live_key(venue, n))])
        self.conns.append(conn)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._control(conn, msg.data)
        finally:
            pinger.cancel()
            self._unsubscribe(conn, list(conn.streams))
            if conn in self.conns:
                self.conns.remove(conn)
        return ws

    async def _control(self, conn, text):
        """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS requests."""
        try:
            req = json.loads(text)
            method, params, rid = req.get('method'), req.get('params') or [], req.get('id')
        except (ValueError, AttributeError):
            await conn.ws.send_str(dumps({'error': {'code': 3, 'msg': 'Invalid JSON'}}))
            return
        try:
            if method == 'SUBSCRIBE':
                self.subscribe(conn, params)
                reply = {'result': None, 'id': rid}
            elif method == 'UNSUBSCRIBE':
                self._unsubscribe(conn, params)
                reply = {'result': None, 'id': rid}
            elif method == 'LIST_SUBSCRIPTIONS':
                reply = {'result': list(conn.streams), 'id': rid}
            else:
                raise ValueError('Invalid request: unknown method %r' % method)
        except ValueError as err:
            reply = {'error': {'code': 2, 'msg': str(err)}, 'id': rid}
        await conn.ws.send_str(dumps(reply))

    # -- publishing market data ------------------------------------------------------------
    def publish(self, before, now, segments):
        """Queue the stream messages for a clock move from ``before`` to ``now``."""
        cache = {}
        for conn in list(self.conns):
            for name, last in list(conn.streams.items()):
                if last is USER:  # user data goes out as the engines emit it
                    continue
                symbol, kind, interval = self.parse_stream(name, conn.venue)
                if kind in ('kline', 'continuousKline'):
                    msgs = self._kline_msgs(conn, name, symbol, interval, before, now, cache)
                    if kind == 'continuousKline':
                        msgs = [continuous(m, conn.venue) for m in msgs]
                elif kind.startswith('markPrice'):
                    msgs = [self.sim.futures_streams.mark_price_event(conn.venue, symbol)]
                elif kind.partition('@')[0] in BOOK_KINDS:
                    msgs = self.sim.market_streams.messages(conn.venue, symbol, kind,
                                                            before, now)
                else:
                    msgs = self._tick_msgs(symbol, kind, segments, now, conn.venue)
                for data in msgs:
                    payload = {'stream': name, 'data': data} if conn.combined else data
                    self._outbox.append((conn.ws, dumps(payload)))

    def _kline_msgs(self, conn, name, symbol, interval, before, now, cache):
        feed = self.feed_of(symbol, conn.venue)
        key = (conn.venue, symbol, interval)
        if key not in cache:
            closed = feed.closed_between(interval, before, now)
            rows, last_closed = feed.bars(interval, now, start=now - _span(interval))
            forming = rows[-1] if rows and not last_closed else None
            cache[key] = (closed, forming)
        closed, forming = cache[key]
        out = []
        for row in closed:
            if row[0] > conn.streams[name]:
                # a last in-progress update, then the final one: clients that keep
                # only x:true bars must see and skip the x:false kind
                out.append(kline_event(symbol, interval, row, feed, now, False))
                out.append(kline_event(symbol, interval, row, feed, now, True))
                conn.streams[name] = row[0]
        if forming is not None:
            out.append(kline_event(symbol, interval, forming, feed, now, False))
        return out

    def _tick_msgs(self, symbol, kind, segments, now, venue='spot'):
        out = []
        feed = self.feed_of(symbol, venue).symbol
        for seg in segments:
            if seg.symbol != feed:
                continue
            # one synthetic print per bar segment the clock crossed
            qty = seg.volume / 100.0
            tid = seg.index * 1000 + int(seg.end % 1000)
            data = {'e': kind, 'E': now, 's': symbol, 'p': '%.8f' % seg.last,
                    'q': '%.8f' % qty, 'T': seg.end, 'm': seg.last < seg.first,
                    'M': True}
            if kind == 'trade':
                data['t'] = tid
            else:
                data.update({'a': tid, 'f': tid, 'l': tid})
            out.append(data)
        return out

    # -- the WS-API (user data) --------------------------------------------------------
    async def ws_api(self, request):
        ws, pinger = await self._open(request, 'private')
        self.api_conns.add(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    if request_field(msg.data, 'method') == 'userDataStream.subscribe.signature':
                        await self.sim.faults.user_subscription_gate()     # a fault's hold
                    await ws.send_str(dumps(self._api_call(ws, msg.data)))
        finally:
            pinger.cancel()
            for key, subs in list(self.user_subs.items()):
                self.user_subs[key] = [s for s in subs if s[0] is not ws]
        return ws

    def _api_call(self, ws, text):
        try:
            req = json.loads(text)
        except ValueError:
            return {'id': None, 'status': 400, 'error': {'code': -1100, 'msg': 'Invalid JSON.'}}
        rid, method, params = req.get('id'), req.get('method'), req.get('params') or {}
        try:
            result = self._api_method(ws, method, params)
        except ApiError as err:
            return {'id': rid, 'status': err.status,
                    'error': {'code': err.code, 'msg': err.msg}}
        return {'id': rid, 'status': 200, 'result': result,
                'rateLimits': [{'rateLimitType': 'REQUEST_WEIGHT', 'interval': 'MINUTE',
                                'intervalNum': 1, 'limit': 6000, 'count': 2}]}

    def _api_method(self, ws, method, params):
        if method == 'ping':
            return {}
        if method == 'time':
            return {'serverTime': wall_ms()}
        if method == 'userDataStream.subscribe.signature':
            acct = self._verify(params)
            sub = self._next_sub
            self._next_sub += 1
            self.user_subs.setdefault(acct.key, []).append((ws, sub))
            return {'subscriptionId': sub}
        if method == 'userDataStream.unsubscribe':
            wanted = params.get('subscriptionId')
            for key, subs in list(self.user_subs.items()):
                self.user_subs[key] = [s for s in subs if s[0] is not ws or
                                       (wanted is not None and s[1] != wanted)]
            return {}
        # Binance's answer to a well-formed call of a method it does not serve
        # (errors.md -1020 UNSUPPORTED_OPERATION), not a complaint about characters
        raise ApiError(400, -1020, 'This operation is not supported.')

    def _verify(self, params):
        """WS-API signature: HMAC over the other params sorted by key, ``k=v&...``."""
        acct = self.sim.engine.accounts.get(params.get('apiKey'))
        if acct is None:
            raise ApiError(401, -2015, 'Invalid API-key, IP, or permissions for action.')
        payload = '&'.join('%s=%s' % (k, _wsval(params[k]))
                           for k in sorted(params) if k != 'signature')
        if hmac_hex(acct.secret, payload) != params.get('signature'):
            raise ApiError(400, -1022, 'Signature for this request is not valid.')
        check_timestamp(params)
        return acct

    def end_user_subscriptions(self):
        """Fault: terminate every WS-API user-data subscription (Binance says so
        with an ``eventStreamTerminated`` event). Returns how many ended."""
        count = 0
        for subs in self.user_subs.values():
            for ws, sub in subs:
                event = {'e': 'eventStreamTerminated', 'E': wall_ms()}
                self._outbox.append((ws, dumps({'subscriptionId': sub, 'event': event})))
                count += 1
        self.user_subs = {}
        return count

    def subscriber_sockets(self, key):
        return self.user_subs.get(key, [])

    def on_engine_event(self, kind, payload):
        """Engine listener: user-data events for the account's subscribers."""
        if kind == 'order':
            order, exec_type, trade = payload
            key, event = order.account, execution_report(order, exec_type, trade,
                                                         self.sim.clock.now)
        else:
            key, changed = payload
            event = {'e': 'outboundAccountPosition', 'E': self.sim.clock.now,
                     'u': self.sim.clock.now,
                     'B': [{'a': a, 'f': fmt(f), 'l': fmt(l)} for a, (f, l) in changed.items()]}
        for ws, sub in self.user_subs.get(key, []):
            self._outbox.append((ws, dumps({'subscriptionId': sub, 'event': event})))

    # -- writing -------------------------------------------------------------------------
    async def flush(self):
        """Hand every queued message to its socket (in order)."""
        while self._outbox:
            # fault injection may duplicate or reorder messages (sim/faults.py)
            batch, self._outbox = self.sim.faults.outgoing(self._outbox), []
            for ws, text in batch:
                if ws.closed:
                    continue
                try:
                    await ws.send_str(text)
                except (ConnectionError, RuntimeError) as err:  # peer went away mid-send
                    log.debug('dropping a message to a closed socket: %s', err)

    async def close_all(self, code=1001):
        """Close every stream and WS-API connection (reconnect tests, shutdown)."""
        sockets = [c.ws for c in self.conns] + list(self.api_conns)
        sockets += self.sim.futures_streams.all_sockets()
        self.conns = []
        self.user_subs = {}
        self.sim.futures_streams.forget_sockets()
        await asyncio.gather(*(ws.close(code=code, message=b'server closing')
                               for ws in sockets if not ws.closed),
                             return_exceptions=True)


#: kinds built by .binance_market_ws (book and ticker streams)
BOOK_KINDS = ('bookTicker', 'ticker', 'miniTicker', 'depth', 'depth5', 'depth10', 'depth20')


def continuous(msg, venue):
    """A kline event as ``continuous_kline``: pair and contract type, no symbol."""
    k = dict(msg['k'])
    pair = k.pop('s').split('_')[0]
    return {'e': 'continuous_kline', 'E': msg['E'], 'ps': pair, 'ct': 'PERPETUAL', 'k': k}


def _span(interval):
    return 2 * cd.INTERVAL_MS.get(interval, 31 * 86400000)


def _wsval(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def kline_event(symbol, interval, row, feed, now, closed):
    t, o, h, l, c, v = row
    n = trade_count(v)
    first = t // 1000
    k = kline_row(row, feed.bar_end(t, interval))
    return {'e': 'kline', 'E': now, 's': symbol, 'k': {
        't': t, 'T': k[6], 's': symbol, 'i': interval, 'f': first, 'L': first + n - 1,
        'o': k[1], 'c': k[4], 'h': k[2], 'l': k[3], 'v': k[5], 'n': n, 'x': closed,
        'q': k[7], 'V': k[9], 'Q': k[10], 'B': '0'}}


def execution_report(o, exec_type, trade, now):
    """Binance's executionReport for one order event (``d``: a trailing delta)."""
    canceled = exec_type == 'CANCELED'
    extra = {'d': o.extra['trailing_delta']} if 'trailing_delta' in o.extra else {}
    return {**extra, 
        'e': 'executionReport', 'E': now, 's': o.symbol,
        'c': o.cancel_tag if canceled else o.client_id, 'S': o.side, 'o': o.type,
        'f': o.tif, 'q': fmt(o.qty), 'p': fmt(o.price), 'P': fmt(o.stop_price),
        'F': fmt(0), 'g': -1, 'C': o.client_id if canceled else '', 'x': exec_type,
        'X': o.status, 'r': 'NONE', 'i': o.id,
        'l': fmt(trade.qty if trade else 0), 'z': fmt(o.executed),
        'L': fmt(trade.price if trade else 0),
        'n': fmt(trade.commission if trade else 0),
        'N': trade.commission_asset if trade else None,
        'T': trade.time if trade else o.update_time, 't': trade.id if trade else -1,
        'I': o.id * 1000 + (trade.id % 1000 if trade else 0), 'w': o.is_open and o.triggered,
        'm': bool(trade and trade.is_maker), 'M': False, 'O': o.time, 'Z': fmt(o.cum_quote),
        'Y': fmt(trade.quote_qty if trade else 0), 'Q': fmt(o.quote_qty),
        'W': o.working_time, 'V': 'EXPIRE_MAKER'}
