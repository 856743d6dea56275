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


# -- reading a burst of messages (issue 14: 20 symbols closing at once) ---------------------
def _frame(payload, opcode=1, fin=1):
    """A server frame (unmasked) as RFC 6455 writes it."""
    n = len(payload)
    if n < 126:
        head = bytes([n])
    elif n < 65536:
        head = bytes([126]) + n.to_bytes(2, 'big')
    else:
        head = bytes([127]) + n.to_bytes(8, 'big')
    return bytes([fin << 7 | opcode]) + head + payload


def test_chunk_reader_serves_websocket_clients_parser_whole_frames_in_any_chunking():
    # websocket-client's frame_buffer (an internal the reader replaces the
    # recv of) over chunks cut anywhere: plain frames of every length form
    # come out whole from the fast path or the parser, control frames and
    # fragments always from the parser.
    from websocket._abnf import frame_buffer
    from backtrader_live.stream import ChunkReader
    frames = [(_frame(b'a' * 125), 1, b'a' * 125), (_frame(b'b' * 126), 1, b'b' * 126),
              (_frame(b'p', 9), 9, b'p'), (_frame(b'c' * 65535, 2), 2, b'c' * 65535),
              (_frame(b'd' * 70000), 1, b'd' * 70000), (_frame(b'frag', 1, 0), 1, b'frag'),
              (_frame(b'ment', 0), 0, b'ment'), (_frame(b'{}'), 1, b'{}')]
    data = b''.join(f for f, _, _ in frames)
    for size in (1, 3, 127, 1000, 65536, len(data)):
        chunks = [data[i:i + size] for i in range(0, len(data), size)][::-1]
        reader = ChunkReader(lambda n: chunks.pop())
        parser = frame_buffer(reader.recv, True)
        reader._frames = parser
        got, fast = [], 0
        while chunks or reader.buffered():
            payload = reader.simple_frame()
            if payload is not None:
                fast += 1
                got.append((1 if payload[:1] != b'c' else 2, payload))
                continue
            frame = parser.recv_frame()
            got.append((frame.opcode, frame.data))
        assert got == [(op, p) for _, op, p in frames], size
        if size == len(data):
            # all plain frames but the first (the parser's read brings the
            # chunk in) and the fragment's first part
            assert fast == 4


def test_the_stream_reads_a_burst_in_chunks_on_this_websocket_client():
    # The guard on websocket-client's internals: the reader is installed on a
    # real connection, and a burst of 60 messages (with a ping among them)
    # waiting in the socket comes whole, in order, in a few socket reads (it
    # took three per message: header, length, payload). The handler holds the
    # first message until the server has written the other 59.
    with TinyServer() as server:
        got, release = [], threading.Event()

        def handler(stream, msg):
            if msg['i'] == 0:
                release.wait(10)
            got.append(msg)
        stream = WsStream('bt-live-test-stream', server.url, handler, recv_timeout=0.05)
        stream.start()
        eventually(lambda: stream.is_live and server.sockets)
        reader = stream._reader
        assert reader is not None, 'ChunkReader not installed: websocket-client changed'
        reads = []
        recv = reader._recv
        reader._recv = lambda n: reads.append(n) or recv(n)

        async def burst():
            ws = server.sockets[-1]
            for i in range(60):
                if i == 30:
                    await ws.ping(b'hi')
                await ws.send_str(json.dumps({'i': i, 'pad': 'x' * (i * 7)}))
        server.call(burst())
        release.set()
        eventually(lambda: len(got) == 60)
        assert [m['i'] for m in got] == list(range(60))
        assert len(reads) <= 5, reads
        stream.stop()


def test_messages_carrying_the_skip_text_are_counted_not_decoded():
    # The market stream's forming candles (the profile's stream['forming']):
    # not handed on, counted; text and binary frames alike.
    with TinyServer() as server:
        stream, got, _ = _stream(server, skip='"x":false')
        stream.start()
        server.received.get(timeout=5)
        eventually(lambda: stream.is_live)
        server.send('{"k":{"x":false}}')
        server.send('{"k":{"x":false}}', binary=True)
        server.send('{"k":{"x":true}}')
        eventually(lambda: got)
        eventually(lambda: stream.skipped == 2)
        assert got == [{'k': {'x': True}}]
        stream.stop()


def test_a_stop_in_a_burst_hands_on_no_further_message():
    # The read loop hands on every plain frame of a chunk in one pass (20
    # symbols closing at once); a stop asked meanwhile still ends it at once.
    with TinyServer() as server:
        got, release = [], threading.Event()

        def handler(stream, msg):
            if msg['i'] == 0:
                release.wait(10)
            got.append(msg['i'])
            if msg['i'] == 1:
                stream._stop.set()      # what stop() sets first, from this thread
        stream = WsStream('bt-live-test-stream', server.url, handler, recv_timeout=0.05)
        stream.start()
        eventually(lambda: stream.is_live and server.sockets)

        async def burst():
            for i in range(20):
                await server.sockets[-1].send_str(json.dumps({'i': i}))
        server.call(burst())
        release.set()
        eventually(lambda: not stream._thread.is_alive())
        assert got == [0, 1]
        stream.stop()


def test_the_first_frame_of_a_chunk_comes_from_the_fast_path_too():
    # The read loop has the reader fetch the chunk (fill) when the socket is
    # readable; when websocket-client's parser made that read, every chunk's
    # first frame went through the parser (~10 us) instead of simple_frame.
    from websocket._abnf import frame_buffer
    from backtrader_live.stream import ChunkReader
    chunks = [b''.join(_frame(b'{"i":%d}' % (3 * c + i)) for i in range(3)) for c in range(4)]
    chunks.append(_frame(b'p', 9) + _frame(b'{"i":12}'))        # a ping, then data
    pending = chunks[::-1]
    reader = ChunkReader(lambda n: pending.pop())
    parser = frame_buffer(reader.recv, True)
    reader._frames = parser
    got, parsed = [], []
    while pending or reader.buffered():
        reader.fill()           # the stream found the socket readable
        payload = reader.simple_frame()
        if payload is None:
            frame = parser.recv_frame()
            parsed.append(frame.opcode)
            continue
        got.append(json.loads(payload)['i'])
    assert got == list(range(13)) and parsed == [9]     # only the ping went the slow way
    # no read while something is buffered, or while the parser is inside a frame
    pending[:] = [_frame(b'{"i":13}')]
    reader._buf, reader._pos = b'xy', 0
    reader.fill()
    assert pending and reader._buf == b'xy'
    reader._pos = 2
    parser.header = (1, 0, 0, 0, 1, 0, 5)     # websocket-client mid-frame
    reader.fill()
    assert pending
    parser.header = None
    reader.fill()
    assert not pending and reader.simple_frame() == b'{"i":13}'
