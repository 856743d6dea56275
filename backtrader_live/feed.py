"""The generic live feed: paged REST backfill, then closed bars from a stream.

Contract with Cerebro (backtrader's ``_load``): True = a bar was loaded,
None = nothing yet (the loop runs for notifications and comes back),
False = the feed is done. Bars are keyed by open time: each is delivered
once, in order; a hole between the last delivered bar and a new one (a
dropped connection, a full queue) is filled over REST before going on, and
so is one left by a first subscription that came after the history was read.

Status: bars from REST (the history at start, a hole filled after an outage)
arrive as DELAYED; the feed is LIVE again only with a bar from the stream,
the one that just closed. Each change is announced one empty round before
the bar it concerns, so a strategy that trades only while LIVE (told in
``notify_data``) never acts on a replayed, stale bar.
"""
import collections
import datetime
import logging
import queue
import threading
import time

import backtrader as bt

from . import feedspeed, replay
from .errors import ConfigError, LiveError
from .events import Bar
from .feedspeed import utc_from_ms
from .stream import LIVE, RECONNECTING
from .timeframes import TIMEFRAME_MAP, TIMEFRAME_SPECS, parse_timeframe

log = logging.getLogger(__name__)

_BACKFILL, _LIVE, _DONE = 'backfill', 'live', 'done'
_INF = float('inf')
_RECONNECTED = object()     # queue marker: the stream came back
_BROKEN = object()          # queue marker: the stream dropped
_SUBSCRIBED = object()      # queue marker: first subscription, sent after the history was read


def ms_from_datetime(dt):
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return int(dt.timestamp() * 1000)


class DataBase(bt.feed.DataBase):
    """Base of the exchange feeds (subclass of backtrader's DataBase).

    Params beyond backtrader's: ``store``, ``tf`` (exchange timeframe name,
    e.g. '1h'), ``backfill_bars`` (closed bars of history before going live),
    ``live`` (False: history only, then done), ``max_live_bars`` (stop after
    this many streamed bars), ``queue_size``. Bars are stamped with their
    open time, in UTC.
    """

    TIMEFRAME_MAP = TIMEFRAME_MAP        # '1m' -> '1min' ... '1w' -> '1week'
    TIMEFRAME_SPECS = TIMEFRAME_SPECS    # '1m' -> (backtrader timeframe, compression, ms)

    params = (
        ('store', None),
        ('tf', '1h'),
        ('backfill_bars', 0),
        ('live', True),
        ('max_live_bars', None),
        ('queue_size', 10000),
        ('qcheck', 0.5),
        ('settle_timeout', 5.0),   # at the end, seconds to wait for last fills
    )

    @classmethod
    def from_timeframe_string(cls, timeframe_str, store, symbol, **kwargs):
        """A feed for ``symbol`` at ``timeframe_str`` ('1m' ... '1M', the keys
        of ``TIMEFRAME_MAP``) on ``store``."""
        supported = store.TIMEFRAMES if store is not None else None
        parse_timeframe(timeframe_str, supported)
        return cls(dataname=symbol, store=store, tf=timeframe_str, **kwargs)

    def __init__(self):
        super().__init__()
        bars = self.p.backfill_bars
        if isinstance(bars, bool) or not isinstance(bars, int) or bars < 0:
            raise ConfigError('backfill_bars must be an integer >= 0, got %r' % (bars,))
        self._store = self.p.store
        # tf is the source of truth: plots/analyzers read timeframe/compression
        self.p.timeframe, self.p.compression, self._tf_ms = parse_timeframe(self.p.tf)
        self._q = queue.Queue(maxsize=self.p.queue_size)
        self._pending = collections.deque()
        self._last_ts = None
        self._state = _BACKFILL
        self._live_bars = 0
        self._live_from = None
        self._final_deadline = None
        self._stop_requested = threading.Event()
        self._unfilled = None       # (before_ms, held bar): a gap REST has not filled yet
        self._stream_up = True      # False from CONNBROKEN until the stream is back
        # set once the history is in (the stream thread reads it): a first
        # subscription after that may have come too late (_on_stream_state)
        self._history_read = False
        self._group = None          # FeedGroup of a run with several feeds (feedgroup.py)
        self._held_since = None     # monotonic time the group began holding our next bar
        self._rounds = 0            # rounds of Cerebro's loop (do_qcheck), and the
        self._delivered_round = -1  # one in which our last bar was delivered
        self._limit = -_INF         # _group_limit() as of our last _load
        self._broker = None         # the broker trading this data (attach_broker)
        self._replay_ms = None      # replaydata's target bar (ms): history from its start

    def __repr__(self):
        return '%s(%s %s, store=%r)' % (type(self).__name__, self.p.dataname,
                                        self.p.tf, self._store)

    # -- backtrader's live-feed protocol -----------------------------------------
    @property
    def live_bars(self):
        """Bars delivered after the backfill's history, from the stream or
        filled over REST (a bar closed while the stream was starting): what
        ``max_live_bars`` counts."""
        return self._live_bars

    def islive(self):
        return bool(self.p.live)

    def haslivedata(self):
        return bool(self._pending) or not self._q.empty()

    def start(self):
        super().start()
        if self._store is None:
            raise ConfigError('%s needs a store (use store.getdata(...))' % type(self).__name__)
        self._store.start(data=self)
        self._store.parse_timeframe(self.p.tf)           # clear error if unsupported
        self._store.market_rules(self.p.dataname)         # clear error if unknown
        self._stop_requested.clear()
        self._final_deadline = None
        self._state = _BACKFILL
        self._history_read = False
        if self.p.live:
            # Subscribe before backfilling so no bar closes unseen in between
            # (if the subscription goes out in time: _on_stream_state).
            self._store.subscribe_bars(self.p.dataname, self.p.tf, self._on_bar,
                                       on_state=self._on_stream_state)

    def stop(self):
        self._stop_requested.set()
        if self._state != _DONE:
            self._state = _DONE
            self.put_notification(self.DISCONNECTED)
        super().stop()

    def attach_broker(self, broker):
        """The broker trading this data says so as the data starts
        (``BrokerBase.data_started``): the end of the run waits for it."""
        self._broker = broker

    def request_stop(self):
        """Finish after the current bar (thread-safe; signal handlers)."""
        self._stop_requested.set()
        self.wake()

    def do_qcheck(self, onoff, qlapse):
        # upstream calls this on every data at the start of each round
        self._rounds += 1
        super().do_qcheck(onoff, qlapse)

    def forward(self, value=feedspeed.NAN, size=1):
        # upstream's load() moves every line on, for every data in every round:
        # the same, ~2.6 us a data cheaper (feedspeed.py)
        feedspeed.forward(self, value, size)

    def _tick_fill(self, force=False):
        # upstream's, run by its loop on every data in every round: the same
        # values, without its look-ups of the line aliases by name (feedspeed.py)
        feedspeed.tick_fill(self, force)

    def _notify_group(self, bar=False):
        # stream thread, every bar: the lock only when a held feed waits (it
        # sets ``waiting`` before it looks at our queue: no bar is missed)
        group = self._group
        if group is not None and group.waiting:
            group.notify(self, bar)

    def wake(self):
        """Make a waiting ``_load`` return None now (broker events).

        Only into an empty queue: anything already queued wakes the loop, and
        the event that asked for the wake was posted before this check, so the
        round the queued item starts sees it. (One fill used to queue ~8
        wakes, each an empty round of Cerebro's loop.)
        """
        if self._q.empty():
            try:
                self._q.put_nowait(None)
            except queue.Full:      # filled meanwhile by the stream thread: same
                pass
        group = self._group
        if group is not None:
            group.wake()    # a feed held by the group waits on it, not on its queue

    # -- stream thread side ---------------------------------------------------------
    def _on_bar(self, bar):
        if not bar.closed:
            return   # forming candles are never delivered
        try:
            self._q.put_nowait(bar)
        except queue.Full:
            # Not lost: the next bar reveals the hole and REST fills it.
            log.warning('%s: queue full, bar %s will be refetched', self.p.dataname, bar.open_time)
        self._notify_group(True)

    def _on_stream_state(self, state, reconnected):
        # CONNECTING is the first connection, not a broken one (a LIVE after
        # refused first attempts is a reconnect: stream.py). The first LIVE
        # is news too if it comes after the history was read: the
        # subscription goes out only as the connection opens, and a bar that
        # closed before it is never streamed (it would come with the next
        # bar, a whole bar late; never, in a simulator whose clock waits for
        # the test). A LIVE while the history is on its way leaves at most a
        # round trip in which the forming bar of the history would have to
        # close: the window subscribing first always had. Not worth a REST
        # call at every start.
        marker = None
        if state == RECONNECTING:
            marker = _BROKEN
        elif state == LIVE and reconnected:
            marker = _RECONNECTED
        elif state == LIVE and self._history_read and self._store.CATCH_UP_FIRST_SUBSCRIPTION:
            marker = _SUBSCRIBED
        if marker is not None:
            try:
                self._q.put_nowait(marker)
            except queue.Full:
                log.warning('%s: queue full, stream state %s not queued', self.p.dataname, state)
            self._notify_group()

    # -- Cerebro thread side ----------------------------------------------------------
    def _load(self):
        try:
            return self._load_next()
        finally:
            if self._group is not None:
                self._limit = self._group_limit()

    def _load_next(self):
        while True:
            if self._stop_requested.is_set() and not self._pending:
                return self._finishing()
            if self._pending:
                bar, live = self._pending[0]
                if self._last_ts is not None and bar.open_time <= self._last_ts:
                    self._pending.popleft()     # already delivered (backfill/stream overlap)
                    continue
                if self._group is not None and self._held_by_group(bar):
                    if self._pending and self._pending[0][0] is not bar:
                        continue    # that bar was not deliverable: look at the next
                    return None     # another feed's bar of this time is not here yet
                if self._announce(self.LIVE if live else self.DELAYED):
                    return None     # the strategy hears the status before the bar
                self._pending.popleft()
                self._deliver(bar)
                return True
            if self._state == _BACKFILL:
                self._backfill()
                continue
            if not self.p.live or self._state == _DONE:
                return False
            if self._group is not None and not self.resampling:
                self._group.await_round(self)   # with the others' bars (feedgroup.py)
            result = self._load_live_data()
            if result is not True:
                return result

    def _announce(self, status):
        """Put ``status`` if it is news; True if it was."""
        if self._laststatus == status:
            return False
        self.put_notification(status)
        return True

    def _finishing(self):
        """None while the last orders settle (bounded), then False.

        At least one empty round, so Cerebro hands the broker's last
        notifications (an order placed on the final bar, fills its final
        sync with the exchange found) to the strategy; more while the broker
        still waits for fills it was told about.
        """
        now = time.monotonic()
        broker = self._broker       # None: no broker of ours trades this data
        if self._final_deadline is None:
            if broker is not None:
                broker.sync_before_stop()
            # A cancel without an answer needs its receive window, then a look.
            needed = broker.settle_time_needed() if broker is not None else 0.0
            self._final_deadline = now + max(self.p.settle_timeout, needed)
            return None
        if broker is not None and not broker.settled() and now < self._final_deadline:
            self._stop_requested.wait(0.005)    # set: a short pause, no spin
            return None
        return False

    def _load_live_data(self):
        """Take one item from the stream queue: True to loop (a bar is
        pending), None to yield to Cerebro (nothing yet). The hook a feed
        with another live source overrides; gaps are filled over REST."""
        if self._unfilled is not None:
            return self._close_gap(*self._unfilled)
        try:
            item = self._q.get(timeout=self._qcheck)
        except queue.Empty:
            return None
        if item is None:
            return None
        if item is _BROKEN:
            self._stream_up = False
            if self._laststatus != self.CONNBROKEN:
                self.put_notification(self.CONNBROKEN)
            return None
        if item is _RECONNECTED:
            self._stream_up = True
            return self._close_gap(None, None)
        if item is _SUBSCRIBED:
            return self._catch_up()
        if self._last_ts is not None and item.open_time > self._last_ts + self._tf_ms:
            return self._close_gap(item.open_time, item)
        self._pending.append((item, True))     # from the stream: the current bar
        return True

    def _close_gap(self, before_ms, item):
        """Fill the hole before ``item`` (None: up to now) over REST, then
        queue ``item``. If REST fails, hold ``item`` back and try again on the
        next round: a later bar never jumps over a missing one."""
        if not self._fill_gap(before_ms):
            self._unfilled = (before_ms, item)
            self._stop_requested.wait(self._qcheck)     # no busy loop while REST is down
            return None
        self._unfilled = None
        if item is not None:
            self._pending.append((item, True))
        return True

    def _catch_up(self):
        """The first subscription went out after the history was read:
        fetch the bars that closed in between, but none the stream brings
        itself (LIVE, as it would have without the wait): the stream's first
        bar is looked at when it comes, and a hole before it filled then."""
        if self._streamed_from() is not None:
            return True
        if not self._close_gap(None, None):
            return None     # REST failed: _unfilled retries it, as any gap
        # a bar REST shows closed may be on its way on the stream too (its
        # thread had not queued it yet): give it the store's STREAM_BAR_LAG
        deadline = time.monotonic() + self._store.STREAM_BAR_LAG
        first = self._streamed_from()
        while first is None and self._pending and time.monotonic() < deadline \
                and not self._stop_requested.wait(0.01):
            first = self._streamed_from()
        while first is not None and self._pending and not self._pending[-1][1] \
                and self._pending[-1][0].open_time >= first:
            self._pending.pop()     # came on the stream meanwhile: that copy is LIVE
        return True

    def _streamed_from(self):
        """Open time (ms) of the first bar the stream has queued (None: none)."""
        with self._q.mutex:
            times = [item.open_time for item in self._q.queue if isinstance(item, Bar)]
        return min(times) if times else None

    def _held_by_group(self, bar):
        """True while the group holds ``bar`` back (feedgroup.py)."""
        group = self._group
        if self.resampling and group.before_base(bar.open_time + self._tf_ms):
            log.info('%s %s: bar of %s not delivered: it closed before the first bar of '
                     'the shorter timeframe opened', self.p.dataname, self.p.tf,
                     utc_from_ms(bar.open_time))
            self._pending.popleft()
            return True     # the next one may go: not a round of its own
        late = group.blockers(self, bar.open_time + self._tf_ms)
        if not late:
            return False
        if self.resampling and all(b._finished_feed() for b in group.base):
            # the run is ending: upstream's loop cannot deliver a bar of a
            # longer timeframe without one of the base feeds
            log.info('%s %s: %d bar(s) after the last bar of the base feeds not delivered '
                     '(the run ended)', self.p.dataname, self.p.tf, len(self._pending))
            self._pending.clear()
            self._stop_requested.set()
            return True
        return group.hold(self, bar.open_time + self._tf_ms, late)

    # -- what the group asks of a member (Cerebro's thread) ------------------------------
    def _prefetch(self):
        """Take what the stream queued into _pending now (Cerebro's thread,
        for a feed of the group waiting on ours); what our own _load would do
        later in this round."""
        if self._state != _LIVE or self._pending or self._stop_requested.is_set():
            return
        saved, self._qcheck = self._qcheck, 0.0
        try:
            while not self._pending and self._unfilled is None and not self._q.empty():
                self._load_live_data()
        finally:
            self._qcheck = saved
        self._limit = self._group_limit()

    def _group_limit(self):
        """How far we let the other feeds go: a bar of theirs closing at or
        before this time (ms) may be released now, a later one waits for ours
        (updated after each _load: only _load changes what a feed holds)."""
        if self._finished_feed():
            return _INF
        if self._pending:
            return _INF if self.resampling else self._head_close()
        return self._next_unknown_close() - 1

    def _finished_feed(self):
        if self._state == _DONE or (self._stop_requested.is_set() and not self._pending):
            return True
        return not self.p.live and self._state != _BACKFILL and not self._pending

    def _head_close(self):
        return self._pending[0][0].open_time + self._tf_ms if self._pending else None

    def _last_close(self):
        return self._last_ts + self._tf_ms if self._last_ts is not None else None

    def _next_unknown_close(self):
        """Close time of our next bar not yet received (-inf: nothing known yet)."""
        if self._state == _BACKFILL or self._last_ts is None:
            return float('-inf')
        return self._last_ts + 2 * self._tf_ms

    def _arriving(self):
        """True if our _load will have something this round (no need to wait)."""
        return self._state == _BACKFILL or bool(self._pending) or not self._q.empty()

    def _delivered_now(self):
        return self._delivered_round == self._rounds

    def _deliver(self, bar):
        self._last_ts = bar.open_time
        self._held_since = None
        self._delivered_round = self._rounds
        lines = self.lines
        # the 20 bars of a minute share one stamp: converted once (feedspeed.py)
        lines.datetime[0] = feedspeed.bar_stamp(self, bar.open_time)
        lines.open[0] = bar.open
        lines.high[0] = bar.high
        lines.low[0] = bar.low
        lines.close[0] = bar.close
        lines.volume[0] = bar.volume
        lines.openinterest[0] = 0.0
        if self._live_from is not None and bar.open_time > self._live_from:
            self._live_bars += 1
            if self.p.max_live_bars and self._live_bars >= self.p.max_live_bars:
                if self._group is not None:
                    self._group.stop_all()      # the whole run ends, not this feed alone
                else:
                    self._stop_requested.set()

    # -- REST history ------------------------------------------------------------------
    def _backfill(self):
        self.put_notification(self.DELAYED)
        try:
            rows = self._load_historical_data()
        except LiveError as exc:
            log.error('%s: backfill failed: %s', self.p.dataname, exc)
            self.put_notification(self.CONNBROKEN)
            raise
        # a first subscription from now on may miss a bar that closes after
        # the history's last one (_on_stream_state)
        self._history_read = True
        self._pending.extend((row, False) for row in rows)
        self._state = _LIVE
        # Bars after the history count as live (max_live_bars), gap fills too.
        self._live_from = rows[-1].open_time if rows else -1
        log.info('%s %s: backfilled %d closed bars', self.p.dataname, self.p.tf, len(rows))

    def _load_historical_data(self):
        """The closed bars of history delivered before going live (DELAYED):
        from ``fromdate``, else the last ``backfill_bars``. The hook a feed
        with another history source overrides."""
        if self.p.fromdate is not None:
            return self.fetch_range(ms_from_datetime(self.p.fromdate), None)
        if self._replay_ms:     # the first replayed bar a whole one (replay.py)
            return replay.whole_history(self, self._replay_ms)
        if self.p.backfill_bars:
            return self.fetch_last(self.p.backfill_bars)
        return []

    def _fill_gap(self, before_ms):
        """Fetch closed bars after the last delivered one (and before a bar);
        False if REST failed (the caller tries again later)."""
        if self._last_ts is None:
            return True
        try:
            rows = self.fetch_range(self._last_ts + 1, before_ms)
        except LiveError as exc:
            log.error('%s: could not fill a gap after %s (will retry): %s', self.p.dataname,
                      self._last_ts, exc)
            return False
        if rows:
            log.info('%s: filled %d missing bar(s) over REST (delivered as DELAYED)',
                     self.p.dataname, len(rows))
        self._pending.extend((row, False) for row in rows)     # replayed: not live
        return True

    def fetch_range(self, since_ms, before_ms):
        """Closed bars with since <= open time < before, paged forward.

        With ``before_ms`` None the range reaches the present, whose last
        row is the forming candle and is dropped.
        """
        limit = self._store.OHLCV_PAGE_LIMIT
        rows, since = [], since_ms
        while True:
            until = before_ms - 1 if before_ms is not None else None
            page = self._store.fetch_ohlcv(self.p.dataname, self.p.tf, since, limit, until)
            page = [r for r in page if (not rows or r[0] > rows[-1][0])
                    and (before_ms is None or r[0] < before_ms)]
            rows.extend(page)
            if len(page) < limit:
                break
            since = page[-1][0] + 1
        if before_ms is None and rows:
            rows.pop()        # the forming candle
        return [self._bar(r) for r in rows]

    def fetch_last(self, count):
        """The last ``count`` closed bars, paged backwards from now."""
        limit = self._store.OHLCV_PAGE_LIMIT
        rows, until, want = [], None, count + 1   # +1: the forming candle
        while len(rows) < want:
            n = min(limit, want - len(rows))
            page = self._store.fetch_ohlcv(self.p.dataname, self.p.tf, None, n, until)
            page = [r for r in page if not rows or r[0] < rows[0][0]]
            if not page:
                break
            rows[:0] = page
            if len(page) < n:
                break
            until = page[0][0] - 1
        rows = rows[:-1]   # the newest row came from the present: forming
        return [self._bar(r) for r in rows[-count:]]

    @staticmethod
    def _bar(row):
        return Bar(int(row[0]), float(row[1]), float(row[2]), float(row[3]),
                   float(row[4]), float(row[5] or 0.0))


# The rest of upstream's feed module (CSVDataBase, FeedBase...), for drop-in imports.
import backtrader.feed as _upstream_feed  # noqa: E402
from ._namespace import merge_into  # noqa: E402
merge_into(globals(), _upstream_feed)
