"""Several live feeds in one run: bars are released in close-time order.

backtrader's loop (``Cerebro._runnext``) asks every data for a bar each
round and delivers the earliest datetime; a data with no bar *yet*
(``_load`` returned None) is simply skipped. In a backtest every bar is
there, so two feeds' 10:00 bars meet in one ``next()``. Live, the bars of
two symbols arrive a few milliseconds apart: left alone, the first would be
delivered in a ``next()`` of its own, with the other symbol still at 09:00,
and a feed whose bar is late (a slow message, a reconnect filling a gap over
REST) would let the others run ahead of it.

A :class:`FeedGroup` links the live feeds of a run. A feed holds its next
bar (its ``_load`` returns None, the loop keeps running for notifications)
until no other feed can still produce a bar that closes earlier or at the
same time; then they are released in the same round and upstream's loop
puts them in one ``next()`` exactly as in a backtest. A feed that stays
late longer than ``sync_timeout`` seconds no longer holds the others back
(logged with its name): a silent market must not freeze a run.

Feeds of a longer timeframe than the group's shortest (``timeframe=['1h',
'4h']``, ``cerebro.resampledata(feed, ...)``) are stamped with their open
time like every feed here, and are flagged as resampled for upstream's loop
(``resampling``): the 4h bar of 08:00, which closes at 12:00, comes in the
same ``next()`` as the 1h bar of 11:00, which closes then too; it never
comes alone (upstream's loop needs a bar of a base feed in every round), and
never before it has closed.
"""
import logging
import threading
import time

from .errors import ConfigError

log = logging.getLogger(__name__)

#: default seconds a feed waits for a late one before going on without it
SYNC_TIMEOUT = 10.0


class FeedGroup:
    """The live feeds of one run, released in close-time order."""

    def __init__(self, feeds, sync_timeout=SYNC_TIMEOUT):
        self.feeds = list(feeds)
        self.sync_timeout = sync_timeout
        self.changed = threading.Condition()
        shortest = min(f._tf_ms for f in self.feeds)
        for feed in self.feeds:
            feed._group = self
            # upstream's flag: not a clock of the loop (see the module's docstring)
            feed.resampling = 1 if feed._tf_ms > shortest else 0
        self.base = [f for f in self.feeds if not f.resampling]
        self._woken = False
        self.waiting = False     # a held feed waits: the stream threads must wake it
        self._awaited = set()    # ids of the feeds it waits for whose bar is not queued yet
        self._own = None         # the feed whose next bar await_round waits for, and
        self._own_at = None      # when (monotonic) that bar was queued, if it was

    # -- stream threads: something a held feed may wait for happened -------------------
    def notify(self, feed, bar=False):
        """``feed`` queued a bar or a stream state (a stream thread, while a
        held feed waits): wake the waiter when the last feed it waits for has
        queued. Waking it for each of 20 bars of one minute made Cerebro's
        thread take the GIL from the stream thread 19 times for nothing.
        ``bar``: what was queued is a bar (else a stream state)."""
        with self.changed:
            if feed is self._own:       # await_round's own feed
                if not bar:
                    self._woken = True      # its stream state: at once, as its queue did
                elif self._own_at is None:
                    self._own_at = time.monotonic()
            awaited = self._awaited
            awaited.discard(id(feed))
            if not awaited or self._woken:
                self.changed.notify_all()

    def wake(self):
        """A broker event or a stop: a held feed returns to Cerebro's loop now."""
        with self.changed:
            self._woken = True
            self.changed.notify_all()

    def wait_for(self, blockers, seconds):
        """Block (Cerebro's thread) until every one of ``blockers`` has its bar
        queued, a wake, or ``seconds``. Waking on each member's bar and going
        round Cerebro's loop for nothing would cost a round per symbol, in the
        thread that also parses the stream (one GIL)."""
        pending = list(blockers)

        def ready():
            # under the lock: a stream thread's notify() cannot run between
            # this look and the wait. A queued bar stays queued until this
            # thread takes it: a blocker that has one is not looked at again.
            pending[:] = [b for b in pending if not b._arriving()]
            self._awaited = {id(b) for b in pending}
            return self._woken or not pending

        with self.changed:
            self.waiting = True
            try:
                self.changed.wait_for(ready, seconds)
            finally:
                self.waiting = False
                self._awaited = set()
                # consumed here, not reset on entry: a wake (a fill to hand to
                # the strategy) that came just before the wait is not lost
                self._woken = False

    def await_round(self, feed):
        """Cerebro's thread: ``feed`` (a base feed, live, nothing pending) is
        about to wait on its own queue for its next bar. Wait instead until the
        other feeds whose bar of that time is not here yet have queued theirs
        too, bounded by the round's ``qcheck`` (a wake, a stream state end it
        at once). On its own queue, Cerebro's thread woke on the minute's first
        bar only to find the other 19 missing and wait again, meanwhile taking
        the GIL from the stream thread still reading them."""
        if feed._unfilled is not None or feed._qcheck <= 0 or not feed._q.empty():
            return
        others = self.blockers(feed, feed._next_unknown_close())
        if not others:
            return      # nobody to wait for with it: its own queue, as before
        self._own, self._own_at = feed, None
        try:
            self.wait_for(others + [feed], feed._qcheck)
            arrived = self._own_at
        finally:
            self._own = self._own_at = None
        # the round's wait is spent: a timeout does not wait on the queue again
        feed._qcheck = 0.0
        if arrived is not None and feed._held_since is None:
            # held from when its bar came (hold() counts sync_timeout from it)
            feed._held_since = arrived

    def stop_all(self):
        """One feed reached the run's end (max_bars): every feed finishes."""
        for feed in self.feeds:
            feed._stop_requested.set()
        self.wake()

    # -- Cerebro's thread: may this feed deliver its next bar now? ---------------------
    def blockers(self, feed, close_ms):
        """The other feeds that may still produce a bar that must come before or
        with ``feed``'s bar closing at ``close_ms`` (empty: release it)."""
        if feed.resampling:
            return self._rides_along(close_ms)
        # each feed's _limit says how far it lets the others go (feed.py):
        # an earlier bar of a base feed goes first, a bar of this time not
        # here yet is waited for; a resampled bar comes along in the round
        return [other for other in self.feeds
                if other._limit < close_ms and other is not feed]

    def _rides_along(self, close_ms):
        """A resampled bar comes with a base feed's bar closing at the same
        time or later, delivered in this round, never alone: upstream's loop
        takes a round's time from the base feeds (which come first: it sorts
        the datas by timeframe) and fails on a round without one."""
        for base in self.base:
            if base._delivered_now() and base._last_close() >= close_ms:
                return []
        return self.base

    def before_base(self, close_ms):
        """True for a longer timeframe's history bar that closed before the
        first bar of the base feeds opened: no round can carry it (a backtest
        resampling the same base bars would not have it either)."""
        if any(b._last_ts is not None for b in self.base):
            return False
        heads = [b._pending[0][0].open_time for b in self.base if b._pending]
        return len(heads) == len(self.base) and close_ms <= min(heads)

    def hold(self, feed, close_ms, blockers):
        """True to hold ``feed``'s bar (closing at ``close_ms``) this round;
        False to release it: the others' bars are in, or it waited longer than
        ``sync_timeout`` for ``blockers`` (logged) and goes on."""
        if feed.resampling:
            return True      # it never goes alone; the base feeds carry the timeout
        blockers = self._pull(feed, close_ms, blockers)
        if not blockers:
            return False
        now = time.monotonic()
        if feed._held_since is None:
            feed._held_since = now
        if now - feed._held_since > self.sync_timeout:
            log.warning('%s: no bar from %s for %.1fs after ours closed; going on '
                        'without waiting for it', feed._name or feed.p.dataname,
                        ', '.join(str(b._name or b.p.dataname) for b in blockers),
                        self.sync_timeout)
            return False
        # not all of theirs is queued: wait for it (or a broker event, a
        # stop), bounded, then look again
        self.wait_for(blockers, min(feed.p.qcheck, self.sync_timeout))
        return bool(self._pull(feed, close_ms, blockers))

    def _pull(self, feed, close_ms, blockers):
        """Have the blockers take what their streams queued (their own _load
        would, later in this round) and return those still late. Then the
        whole round's bars go in one pass of the loop: no feed says "nothing
        yet" only to be asked again, which costs upstream a rewind of every
        line and a second call per feed."""
        for other in blockers:
            other._prefetch()
        return self.blockers(feed, close_ms)
def link_feeds(datas, sync_timeout=SYNC_TIMEOUT):
    """Group the live feeds among ``datas`` (at least two); None otherwise.

    Feeds of one run must share one store (one exchange account, one market
    type): the broker trades through one store.
    """
    from .feed import DataBase
    feeds = [d for d in datas if isinstance(d, DataBase) and d.p.live]
    for feed in feeds:
        feed._group = None
    if len(feeds) < 2:
        return None
    stores = {id(f._store): f._store for f in feeds}
    if len(stores) > 1:
        raise ConfigError(
            'the live feeds of one run must come from one store (one exchange and market '
            'type; the broker trades through one account), got %s; run each market in its '
            'own Cerebro' % ', '.join(sorted({repr(s) for s in stores.values()})))
    return FeedGroup(feeds, sync_timeout)
