"""Closed bars from ccxt.pro's ``watch_ohlcv``, or from REST polling.

ccxt.pro hands out the forming candle with every trade and keeps no
"closed" flag. A candle is closed here once a later candle has been seen for
a short settle time, or once its end has passed on the exchange's clock
(plus a grace for the last update in flight): see ClosedBars for why both.
Only closed candles reach the feed, which keeps its own promises (each bar
once, in order, holes filled over REST as DELAYED).

ccxt.pro does not backfill after a reconnect (ccxt issue 26945) and a socket
can hang silently (ccxt issue 20946): a watch silent for ``silence`` seconds
is dropped and reconnected, and every reconnect is told to the feed through
``on_state(LIVE, reconnected=True)``, so the feed fills the hole over REST.
"""
import asyncio
import logging
import time

from ..backoff import Backoff
from ..events import Bar
from ..stream import CONNECTING, LIVE, RECONNECTING
from .loop import drop_dead, sockets_up

log = logging.getLogger(__name__)

TICK = 0.25          # seconds between clock checks while a watch is quiet
CLOSE_GRACE_MS = 2000    # a candle's last update may arrive this late after its end
SETTLE_MS = 250      # ... or this long after the next candle's first update
REVISED_KEEP = 8     # delivered bars remembered to tell a late revision


class ClosedBars:
    """Candle rows in (forming ones too), closed bars out, each once.

    Candle N is closed once a later candle was first seen ``settle_ms`` ago,
    or once N's end + ``grace_ms`` has passed, both on the exchange's clock,
    whichever comes first.

    Why the settle time: a stream may reorder, so N's final update can come
    after N+1's first one (seen on ccxt.pro's binance client against a
    scrambling simulator). Closing N the moment N+1 appears then hands out N
    with a stale close: a wrong bar, which "closed bars only" forbids. The
    reordered update comes in the same burst, so waiting a little after the
    sighting (never in the look that makes it) lets it land in ccxt.pro's
    cache first. The end + grace rule alone would cost every bar ``grace_ms``
    where the next candle is known sooner; "one more stream message" alone
    would hold the last bar of a quiet stream until the next trade (and a
    duplicate of N+1 would count as that message). Cost: ``settle_ms`` of bar
    latency where the stream is well-behaved; no REST call.

    A reorder longer than that cannot be undone (the bar is out), but it is
    never silent: a row for a delivered candle with other values is warned
    about once per candle, counted in ``revisions``, and doubles the settle
    time (up to ``grace_ms``) for this connection from then on. Confirming
    closes over REST instead was weighed and not taken: a REST call per bar,
    and an exchange's REST may itself still serve the forming candle for a
    moment after its end.
    """

    def __init__(self, tf_ms, grace_ms=CLOSE_GRACE_MS, settle_ms=SETTLE_MS):
        self.tf_ms = tf_ms
        self.grace_ms = grace_ms
        self.settle_ms = settle_ms
        self.last = None        # open time of the last bar handed out
        self.revisions = 0      # delivered candles that changed afterwards
        self._rows = {}         # open time -> latest row seen, not handed out
        self._seen = {}         # open time -> exchange ms it was first seen
        self._sent = {}         # open time -> values handed out (the last few)

    def update(self, rows, now_ms):
        """Take rows (any order, repeats fine); return the bars now closed."""
        for row in rows or ():
            t = int(row[0])
            if self.last is None or t > self.last:
                self._rows[t] = row
                self._seen.setdefault(t, now_ms)
            else:
                self._revised(t, row)
        return self.due(now_ms)

    def due(self, now_ms):
        """Bars closed by a later candle or by the clock, oldest first."""
        out = []
        for t in sorted(self._rows):
            if not self._closed(t, now_ms):
                break           # a later candle cannot be closed before this one
            bar = _bar(self._rows.pop(t))
            del self._seen[t]
            self._sent[t] = _values(bar)
            self.last = t
            out.append(bar)
        for t in sorted(self._sent)[:-REVISED_KEEP]:
            del self._sent[t]
        return out

    def wait_ms(self, now_ms):
        """Exchange ms until the next bar could close (None: nothing held)."""
        if not self._rows:
            return None
        first = min(self._rows)
        later = [self._seen[t] + self.settle_ms for t in self._rows if t > first]
        return max(0, min(later + [first + self.tf_ms + self.grace_ms]) - now_ms)

    def _closed(self, t, now_ms):
        if t + self.tf_ms + self.grace_ms <= now_ms:
            return True
        return any(later > t and seen + self.settle_ms <= now_ms
                   for later, seen in self._seen.items())

    def _revised(self, t, row):
        sent = self._sent.get(t)
        if sent is None or _values(_bar(row)) == sent:
            return
        self._sent[t] = None    # said once per candle
        self.revisions += 1
        was = self.settle_ms
        self.settle_ms = min(max(was, 1) * 2, max(self.grace_ms, was))
        log.warning('candle %d changed after it was handed out as a closed bar (close %s, '
                    'now %s): the stream reorders by more than %d ms; holding bars %d ms '
                    'after the next candle from now on', t, sent[3], row[4], was,
                    self.settle_ms)


def _values(bar):
    return (bar.open, bar.high, bar.low, bar.close, bar.volume)


def _bar(row):
    return Bar(int(row[0]), float(row[1]), float(row[2]), float(row[3]), float(row[4]),
               float(row[5] or 0.0), True)


class _Watch:
    """State shared by the stream and the polling kind: deliver and report."""

    settle_ms = SETTLE_MS

    def __init__(self, store, client, loop, symbol, tf, deliver, on_state):
        self.store, self.client, self.loop = store, client, loop
        self.symbol, self.tf = symbol, tf
        self.deliver, self.on_state = deliver, on_state
        self.bars = ClosedBars(store.parse_timeframe(tf)[2], settle_ms=self.settle_ms)
        self.state = CONNECTING
        self.broken = False
        self.backoff = Backoff(base=0.25, cap=5.0)

    def set_state(self, state):
        if state == self.state:
            return
        reconnected = state == LIVE and self.broken
        self.broken = self.broken or state == RECONNECTING
        if state == LIVE:
            self.broken = False
        self.state = state
        log.info('%s %s %s bars: %s%s', self.store.exchange_name, self.symbol, self.tf, state,
                 ' (reconnected)' if reconnected else '')
        self.on_state(state, reconnected)

    def emit(self, bars):
        for bar in bars:
            self.deliver(bar)

    async def failed(self, exc, attempt):
        """A watch or poll failed: report, wait (backoff); True to stop."""
        log.warning('%s %s %s bars: %r; reconnecting', self.store.exchange_name,
                    self.symbol, self.tf, exc)
        self.set_state(RECONNECTING)
        await drop_dead(self.client)
        return await self.loop.sleep(self.backoff.delay(attempt))


class StreamBars(_Watch):
    """``watch_ohlcv`` with the closed-bar rule and a silence watchdog."""

    def __init__(self, *args, silence=60.0):
        super().__init__(*args)
        self.silence = silence

    async def run(self):
        task, attempt, heard = None, 0, time.monotonic()
        try:
            while not self.loop.stopping.is_set():
                if task is None:
                    task = asyncio.ensure_future(self.client.watch_ohlcv(self.symbol, self.tf))
                done, _ = await asyncio.wait({task}, timeout=self._tick())
                if not done:
                    if self.state != LIVE and sockets_up(self.client):
                        # Subscribed again: LIVE now, not at the next candle, so
                        # the feed fills the hole over REST at once.
                        self.set_state(LIVE)
                    self.emit(self.bars.update(self._cached(), self.store.server_ms()))
                    if time.monotonic() - heard > self.silence:
                        heard = time.monotonic()
                        task.cancel()       # a closed client may never answer it
                        task = None
                        await self._drop()
                    continue
                finished, task = task, None
                try:
                    rows = finished.result()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:   # any ccxt/socket error: reconnect, never end
                    attempt += 1
                    if await self.failed(exc, attempt - 1):
                        return
                    continue
                attempt, heard = 0, time.monotonic()
                self.set_state(LIVE)
                self.emit(self.bars.update(list(rows) + self._cached(), self.store.server_ms()))
        finally:
            if task is not None:
                task.cancel()

    def _tick(self):
        """Look again in TICK, or sooner when a held bar is due before then."""
        wait = self.bars.wait_ms(self.store.server_ms())
        return TICK if wait is None else min(TICK, max(0.01, wait / 1000.0))

    def _cached(self):
        """Every candle ccxt.pro holds for the watch. A watch resolves on the
        first message of a batch (a closing candle), and with ``newUpdates`` the
        next one returns only what changed after it: the candle that opened in
        the same batch, which closes the previous one, would wait a whole bar.
        ccxt.pro keeps them all in ``ohlcvs[symbol][timeframe]``."""
        try:
            return list(self.client.ohlcvs[self.symbol][self.tf])
        except (AttributeError, KeyError, TypeError):
            return []

    async def _drop(self):
        """The socket went silent (a hang): close it; the watch then fails
        and is made again on a new connection."""
        log.warning('%s %s %s bars: no message for %.0fs; reconnecting',
                    self.store.exchange_name, self.symbol, self.tf, self.silence)
        self.set_state(RECONNECTING)
        await self.client.close_ws_clients()


class PolledBars(_Watch):
    """No ``watchOHLCV``: ``fetch_ohlcv`` every ``interval`` seconds."""

    # One answer is one snapshot: nothing of N can come after N+1 within it,
    # and a settle time would hold each bar a whole poll longer.
    settle_ms = 0

    def __init__(self, *args, interval=5.0):
        super().__init__(*args)
        self.interval = interval

    async def run(self):
        attempt = 0
        while not self.loop.stopping.is_set():
            since = self.bars.last + 1 if self.bars.last is not None else None
            try:
                rows = await self.client.fetch_ohlcv(self.symbol, self.tf, since, 100)
            except asyncio.CancelledError:
                raise
            except Exception as exc:   # network/exchange error: try again, never end
                attempt += 1
                if await self.failed(exc, attempt - 1):
                    return
                continue
            attempt = 0
            self.set_state(LIVE)
            self.emit(self.bars.update(rows, self.store.server_ms()))
            if await self.loop.sleep(self.interval):
                return
