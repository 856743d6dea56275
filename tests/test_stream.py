"""WsStream against a real local websocket server (aiohttp on loopback)."""
import asyncio
import json
import queue
import threading

import aiohttp
from aiohttp import web

from backtrader_live.backoff import Backoff
from backtrader_live.stream import LIVE, RECONNECTING, STOPPED, WsStream
from helpers import eventually


class TinyServer:
    """Sends whatever the test queues; records what clients send."""

    def __init__(self):
        self.outbox = asyncio.Queue
        self.received = queue.Queue()
        self.sockets = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name='test-ws-server', daemon=True)

    def _run(self):
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get('/ws', self._handler)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, '127.0.0.1', 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handler(self, request):
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.sockets.append(ws)
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.received.put(msg.data)
        return ws

    def __enter__(self):
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc):
        self.call(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(5)

    def send(self, text, binary=False):
        ws = self.sockets[-1]
        self.call(ws.send_bytes(text.encode()) if binary else ws.send_str(text))

    def ping(self):
        self.call(self.sockets[-1].ping(b'hi'))

    def drop_all(self):
        async def close():
            for ws in self.sockets:
                await ws.close()
        self.call(close())

    @property
    def url(self):
        return 'ws://127.0.0.1:%d/ws' % self.port


def _stream(server, **kwargs):
    got, states = [], []
    kwargs.setdefault('on_open', lambda s: s.send({'op': 'subscribe'}))
    stream = WsStream('bt-live-test-stream', server.url, lambda s, m: got.append(m),
                      on_state=lambda s, st, rc: states.append((st, rc)),
                      backoff=Backoff(base=0.01, cap=0.05), recv_timeout=0.05, **kwargs)
    return stream, got, states


def test_messages_subscriptions_and_stop():
    with TinyServer() as server:
        stream, got, states = _stream(server)
        stream.start()
        assert json.loads(server.received.get(timeout=5)) == {'op': 'subscribe'}
        eventually(lambda: stream.is_live)
        server.send('{"a": 1}')
        server.send('{"b": 2}', binary=True)
        server.send('not json')                  # logged and skipped, not fatal
        server.ping()                            # answered by websocket-client
        server.send('{"c": 3}')
        eventually(lambda: len(got) == 3)
        assert got == [{'a': 1}, {'b': 2}, {'c': 3}]
        stream.stop()
        assert stream.state == STOPPED and states[0] == ('connecting', False)


def test_reconnects_and_resubscribes_after_a_drop():
    with TinyServer() as server:
        stream, got, states = _stream(server)
        stream.start()
        server.received.get(timeout=5)
        eventually(lambda: stream.is_live)
        server.drop_all()
        assert json.loads(server.received.get(timeout=5)) == {'op': 'subscribe'}
        eventually(lambda: (LIVE, True) in states)
        assert (RECONNECTING, False) in states and stream.connects == 2
        stream.reconnect()                       # a forced reconnect works too
        server.received.get(timeout=5)
        eventually(lambda: stream.connects == 3 and stream.is_live)
        stream.stop()


def test_a_failing_handler_does_not_kill_the_stream():
    with TinyServer() as server:
        seen = []

        def handler(stream, msg):
            seen.append(msg)
            if msg.get('boom'):
                raise RuntimeError('handler bug')
        stream = WsStream('bt-live-test-stream', lambda: server.url, handler,
                          recv_timeout=0.05)
        stream.start()
        eventually(lambda: stream.is_live and server.sockets)
        server.send('{"boom": true}')
        server.send('{"ok": true}')
        eventually(lambda: len(seen) == 2)
        assert stream.is_live
        stream.stop()


def test_application_pings_are_sent():
    with TinyServer() as server:
        stream, _, _ = _stream(server, on_open=None, ping=(0.05, lambda: {'op': 'ping'}))
        stream.start()
        assert json.loads(server.received.get(timeout=5)) == {'op': 'ping'}
        stream.stop()


def test_unreachable_url_keeps_retrying_until_stopped():
    stream = WsStream('bt-live-test-stream', 'ws://127.0.0.1:9/ws', lambda s, m: None,
                      backoff=Backoff(base=0.01, cap=0.02))
    stream.start()
    eventually(lambda: stream.state == RECONNECTING)
    stream.stop()
    assert stream.state == STOPPED and stream.connects == 0
    try:
        stream.send({'x': 1})
    except ConnectionError as exc:
        assert 'not connected' in str(exc)
    else:
        raise AssertionError('send on a stopped stream must fail')
