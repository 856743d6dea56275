"""A websocket stream in one named thread, with reconnect and explicit state.

Exchange modules supply what differs (URL, what to send on open, how to
parse and how to ping); this class owns what every stream needs: connect,
re-authenticate/resubscribe via ``on_open`` after every reconnect, backoff,
a stop event that ends the thread promptly, and a join with a timeout.
"""
import json
import logging
import select
import threading
import time

import websocket

from .backoff import Backoff
from .errors import redact

log = logging.getLogger(__name__)

CONNECTING, LIVE, RECONNECTING, STOPPED = ('connecting', 'live',
                                           'reconnecting', 'stopped')
RECONNECT_CAP = 5.0     # longest wait (s) between reconnect attempts


class WsStream:
    """One websocket connection kept alive until ``stop()``.

    - ``url``: a string or a callable returning one (a callable lets a stream
      reconnect to a URL that changes, e.g. one carrying a fresh token).
    - ``on_open(stream)``: called after every (re)connect, before messages
      are read: send subscriptions/auth with ``stream.send``.
    - ``on_message(stream, obj)``: called with each decoded JSON message.
    - ``on_state(stream, state, reconnected)``: told of every state change;
      ``reconnected`` is true for a LIVE that follows a failed or lost
      connection (refused first attempts too): messages may have been missed.
    - ``ping``: optional ``(interval_seconds, payload_fn)`` for exchanges
      that want application-level pings (Bybit), or keep-alives done another
      way (a payload of None sends nothing); protocol pings from the server
      are answered by websocket-client itself.
    - ``heartbeat`` / ``stale_after``: after ``heartbeat`` seconds without a
      frame the stream sends a protocol ping; after ``stale_after`` seconds
      without any frame (not even the pong) the peer is taken for dead and
      the stream reconnects: a connection that stalls silently is not live.
    - ``texts``: plain-text frames that are protocol chatter, not JSON (an
      exchange answering a text ``ping`` with ``pong``): they prove the peer
      alive and are not handed to ``on_message`` (the exchange profile's
      ``stream['texts']``). A ping payload that is a string is sent as is.
    - ``skip``: a text that marks a message ``on_message`` would discard (a
      forming candle: the profile's ``stream['forming']``); such a message is
      counted in ``skipped`` and not decoded (the JSON decode and the parse
      were two thirds of a minute's work with 20 symbols on Binance).
    """

    def __init__(self, name, url, on_message, on_open=None, on_state=None,
                 ping=None, backoff=None, proxy=None, recv_timeout=1.0,
                 connect_timeout=10.0, heartbeat=None, stale_after=None, texts=(),
                 skip=None):
        self.name = name
        self._url = url
        self._on_message = on_message
        self._on_open = on_open
        self._on_state = on_state
        self._ping = ping
        self._texts = frozenset(texts or ())
        # frames come as bytes (plain frames, websocket-client) or str
        self._skip = (skip, skip.encode()) if skip else None
        self.skipped = 0           # messages not decoded (``skip``)
        # A short cap: after an outage, the stream is back within ~5 s of the
        # network (a handshake every few seconds is cheap for both sides).
        self._backoff = backoff or Backoff(base=0.25, cap=RECONNECT_CAP)
        self._proxy = proxy or {}
        # select() must wake often enough to send the heartbeat in time
        self._recv_timeout = min(recv_timeout, heartbeat / 2.0) if heartbeat else recv_timeout
        self._connect_timeout = connect_timeout
        self._heartbeat, self._stale_after = heartbeat, stale_after
        self._last_heartbeat = 0.0
        self._stop = threading.Event()
        self._ws = None
        self._reader = None         # the connection's ChunkReader (None: not installed)
        self._send_lock = threading.Lock()
        self._thread = None
        self.state = STOPPED
        self.connects = 0          # how many times a connection was opened
        # a connection failed or was lost: the next LIVE is a reconnect (its
        # listeners may have missed messages), the first one included
        self._broken = False
        self.last_message = 0.0    # monotonic time of the last message

    # -- lifecycle --------------------------------------------------------
    def start(self):
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name,
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout=5.0):
        """Close the socket, end the thread and join it (bounded)."""
        self._stop.set()
        ws = self._ws
        if ws is not None:
            try:
                ws.abort()   # unblocks a recv() in the stream thread now
            except Exception:  # already closed: nothing to unblock
                log.debug('%s: abort on a closed socket', self.name)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error('%s: thread did not stop within %.1fs', self.name, timeout)
            self._thread = None
        self._set_state(STOPPED)

    @property
    def is_live(self):
        return self.state == LIVE

    def reconnect(self):
        """Drop the current connection; the thread reconnects by itself."""
        ws = self._ws
        if ws is not None:
            ws.abort()

    def send(self, obj):
        """Send ``obj`` JSON-encoded, or a string as it is (a text ping)."""
        ws = self._ws
        if ws is None:
            raise ConnectionError('%s is not connected' % self.name)
        text = obj if isinstance(obj, str) else json.dumps(obj, separators=(',', ':'))
        with self._send_lock:
            ws.send(text)

    # -- the thread -------------------------------------------------------
    def _set_state(self, state, reconnected=False):
        if state == self.state:
            return
        self.state = state
        if self._on_state is not None:
            try:
                self._on_state(self, state, reconnected)
            except Exception:
                log.exception('%s: state callback failed', self.name)

    def _run(self):
        attempt = 0
        while not self._stop.is_set():
            self._set_state(CONNECTING if self.connects == 0 else RECONNECTING)
            try:
                self._connect()
                attempt = 0
                self._read_loop()
            except Exception as exc:  # keep going: a stream must not die
                if self._stop.is_set():
                    break
                log.warning('%s: connection lost (%s); reconnecting',
                            self.name, redact(exc))
            finally:
                self._close()
            if self._stop.is_set():
                break
            self._broken = True
            self._set_state(RECONNECTING)
            if self._backoff.wait(attempt, self._stop):
                break
            attempt += 1

    def _connect(self):
        url = self._url() if callable(self._url) else self._url
        ws = websocket.create_connection(
            url, timeout=self._connect_timeout, enable_multithread=True,
            skip_utf8_validation=True, **self._proxy)
        # A read that has started must finish (a timeout mid-frame would lose
        # data), so idleness is detected with select() and reads get a long
        # timeout that only catches a dead peer.
        ws.settimeout(self._connect_timeout)
        self._reader = ChunkReader.install(ws)
        self._ws = ws
        self.connects += 1
        if self._stop.is_set():
            raise ConnectionAbortedError('stopping')
        if self._on_open is not None:
            self._on_open(self)
        self.last_message = time.monotonic()
        self._set_state(LIVE, reconnected=self._broken)

    def _read_loop(self):
        next_ping = self._next_ping_time()
        while not self._stop.is_set():
            if self._readable():
                self._receive_one()
            else:
                self._check_alive()
            if next_ping is not None and time.monotonic() >= next_ping:
                payload = self._ping[1]()
                if payload is not None:     # None: the hook did its own work
                    self.send(payload)
                next_ping = self._next_ping_time()

    def _receive_one(self):
        # control_frame=True: a lone ping must not block us until the next
        # data frame (websocket-client still answers it with a pong).
        reader = self._reader
        simple = None
        if reader is not None:
            reader.fill()       # the socket is readable: the chunk's first frame too
            simple = reader.simple_frame()
        if simple is not None:      # a whole unfragmented data frame, already read
            self.last_message = time.monotonic()
            # and every plain frame after it in the chunk read: 20 symbols
            # closing at once are 60 messages in a few chunks, and a pass of
            # the read loop per message cost ~1 us each (20-symbol latency)
            dispatch, stopping = self._dispatch, self._stop.is_set
            while simple is not None:
                dispatch(simple)
                if stopping():
                    return
                simple = reader.simple_frame()
            return
        opcode, frame = self._ws.recv_data_frame(control_frame=True)
        self.last_message = time.monotonic()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise ConnectionError('closed by peer')
        if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
            data = frame if isinstance(frame, (bytes, str)) else frame.data
            self._dispatch(data)

    def _check_alive(self):
        """Ping a quiet peer; give up on a silent one (raises: reconnect)."""
        now = time.monotonic()
        silence = now - self.last_message
        if self._stale_after and silence > self._stale_after:
            raise ConnectionError('no data for %.1fs: the connection is stale' % silence)
        if self._heartbeat and silence > self._heartbeat and \
                now - self._last_heartbeat > self._heartbeat:
            self._last_heartbeat = now
            with self._send_lock:
                self._ws.ping()

    def _readable(self):
        sock = self._ws.sock
        if sock is None:
            raise ConnectionError('socket closed')
        reader = self._reader
        if reader is not None and reader.buffered():
            return True     # frames already read from the socket in one chunk
        pending = getattr(sock, 'pending', None)   # TLS keeps its own buffer
        if pending is not None and pending():
            return True
        return bool(select.select([sock], [], [], self._recv_timeout)[0])

    def _next_ping_time(self):
        return None if not self._ping else time.monotonic() + self._ping[0]

    def _dispatch(self, raw):
        skip = self._skip
        if skip is not None and skip[isinstance(raw, bytes)] in raw:
            self.skipped += 1
            return
        if self._texts and (raw.decode('utf-8', 'replace') if isinstance(raw, bytes)
                            else raw).strip() in self._texts:
            return      # a text pong: liveness only (last_message is set)
        try:
            obj = json.loads(raw)
        except ValueError:
            log.warning('%s: ignoring a non-JSON message (%d bytes)',
                        self.name, len(raw))
            return
        try:
            self._on_message(self, obj)
        except Exception:
            # One bad message must not kill the stream: log it with context.
            log.exception('%s: failed to handle a message', self.name)

    def _close(self):
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.close(timeout=0.2)
            except Exception:
                log.debug('%s: close on a dead socket', self.name)


#: first byte of a final text (0x81) or binary (0x82) frame without extension bits
_PLAIN_FIRST_BYTES = frozenset((0x81, 0x82))


class ChunkReader:
    """Socket reads in chunks for websocket-client's frame parser.

    websocket-client asks the socket for exactly the bytes it needs next: the
    2 header bytes, the extended length, then the payload, so three ``recv``
    calls per message. Each is a system call that releases the GIL, and
    while Cerebro's thread runs (it has the first bars of a minute to work
    on) every release hands it the GIL for up to a switch interval (5 ms):
    with 20 symbols closing at once (60 messages on Binance) that was most
    of the last bar's latency. This reads whatever the socket has, up to
    ``CHUNK`` bytes, and serves the parser's small reads from it: one system
    call for a burst of messages.

    It replaces the ``recv`` function of websocket-client's ``frame_buffer``
    (an internal, guarded by tests/test_stream.py); without one, the stream
    reads as before.
    """

    CHUNK = 65536

    def __init__(self, recv, frames=None):
        self._recv = recv           # websocket-client's own recv (timeouts, TLS, closed)
        self._frames = frames       # its frame_buffer: idle between frames for simple_frame
        self._buf = b''
        self._pos = 0

    @classmethod
    def install(cls, ws):
        frames = getattr(ws, 'frame_buffer', None)
        recv = getattr(ws, '_recv', None)
        if frames is None or not callable(getattr(frames, 'recv', None)) or recv is None:
            log.debug('websocket-client without frame_buffer.recv: unbuffered reads')
            return None
        reader = cls(recv, frames)
        frames.recv = reader.recv
        return reader

    def buffered(self):
        """True if bytes read from the socket wait for the parser."""
        return self._pos < len(self._buf)

    def simple_frame(self):
        """The payload of the next frame if the chunk holds all of it and it is
        a plain one: final, unmasked, text or binary, no extension bits (what
        exchanges send for every market message). None otherwise (a control
        frame, a fragment, a frame not all read yet): websocket-client reads
        it, with everything the protocol asks (pongs, close, continuation).
        websocket-client's parser costs ~10 us a frame in Python; this ~1 us."""
        buf, pos = self._buf, self._pos
        end = len(buf)
        if end - pos < 2 or not self._frames_idle():
            return None
        b1, b2 = buf[pos], buf[pos + 1]
        if b1 not in _PLAIN_FIRST_BYTES or b2 & 0x80:
            return None
        length, start = b2, pos + 2
        if length == 126:
            if end - start < 2:
                return None
            length, start = int.from_bytes(buf[start:start + 2], 'big'), start + 2
        elif length == 127:
            if end - start < 8:
                return None
            length, start = int.from_bytes(buf[start:start + 8], 'big'), start + 8
        if end - start < length:
            return None
        self._pos = start + length
        return buf[start:self._pos]

    def fill(self):
        """Read a chunk now if nothing is buffered and websocket-client is
        between frames (the stream found the socket readable). Otherwise
        websocket-client's parser made that read, and the chunk's first frame
        went through it (~10 us) instead of simple_frame (~1.5 us): one frame in
        every chunk, most of them with a few messages each. The read and its
        errors are websocket-client's (a closed socket raises, as before)."""
        if self._pos >= len(self._buf) and self._frames_idle():
            self._buf = self._recv(self.CHUNK)
            self._pos = 0

    def _frames_idle(self):
        # websocket-client between two frames: no header, no bytes of its own
        frames = self._frames
        return frames is None or (frames.header is None and not frames.recv_buffer)

    def recv(self, bufsize):
        """Up to ``bufsize`` bytes: from the chunk, or a new chunk when it is used up."""
        if self._pos >= len(self._buf):
            self._buf = self._recv(self.CHUNK)
            self._pos = 0
            if not self._buf:
                return self._buf    # closed: websocket-client raises on empty
        start = self._pos
        self._pos = min(start + bufsize, len(self._buf))
        if start == 0 and self._pos == len(self._buf):
            return self._buf
        return self._buf[start:self._pos]
