"""How Cerebro's thread waits for the bars of a minute with several feeds
(feedgroup.FeedGroup.await_round; issue 14, bar latency with 20 symbols).

Real feeds of the package, as after delivering the bar of minute 0, with
nothing queued: the test plays the stream thread (``_on_bar``,
``_on_stream_state``) and runs the first feed's ``_load`` in a thread of its
own, as Cerebro's loop does at the start of a round.
"""
import threading
import time

from backtrader_live import feed as feed_module
from backtrader_live.events import Bar
from backtrader_live.feedgroup import FeedGroup
from backtrader_live.stream import RECONNECTING
from helpers import eventually
from test_multi_feed import CountingCondition

MINUTE = 60000


def minute_feeds(n, sync_timeout=10.0):
    """n live feeds of one group that delivered the bar of minute 0."""
    feeds = [feed_module.DataBase(dataname='S%02d/USDT' % i, tf='1m') for i in range(n)]
    for f in feeds:
        f._state = feed_module._LIVE
        f._last_ts = 0
        f._laststatus = f.LIVE
        f.lines.forward()           # upstream's load() does this before _load
        f._tz = f._gettz()          # what upstream's _start_finish sets
    group = FeedGroup(feeds, sync_timeout=sync_timeout)
    for f in feeds:
        f._limit = f._group_limit()     # as after their _load of minute 0
    group.changed = CountingCondition()
    return feeds, group


def bar(i=1):
    return Bar(i * MINUTE, 10.0 + i, 11.0 + i, 9.0 + i, 10.5 + i, 3.0)


def load_in_thread(feed, qcheck=30.0):
    """feed._load() as Cerebro's loop runs it, with a round's wait of qcheck s."""
    feed._qcheck = qcheck
    out = []
    thread = threading.Thread(target=lambda: out.append(feed._load()), name='test-cerebro')
    thread.start()
    return thread, out


def test_the_minutes_first_bar_does_not_wake_cerebros_thread():
    # Waiting on its own queue, the first feed woke Cerebro's thread with the
    # minute's first bar, which then took the GIL from the stream thread still
    # reading the other 19 only to find them missing and wait again.
    feeds, group = minute_feeds(20)
    first = feeds[0]
    thread, out = load_in_thread(first)
    try:
        eventually(lambda: group.waiting and len(group._awaited) == 20,
                   message='Cerebro\'s thread does not wait on the group for the minute')
        first._on_bar(bar())                    # the stream thread, the minute's first bar
        for f in feeds[1:-1]:
            f._on_bar(bar())
        with group.changed:     # the waiter still waits for the last one, its bar not taken
            assert group.waiting and group._awaited == {id(feeds[-1])}
        assert group.changed.wakes == 0 and out == [] and first._q.qsize() == 1
        feeds[-1]._on_bar(bar())
        thread.join(10)
        assert out == [True] and group.changed.wakes == 1
    finally:
        group.wake()
        thread.join(10)
    assert first.lines.close[0] == 11.5 and first._last_ts == MINUTE
    # the others' bars were taken in the same pass: they deliver in this round
    assert all(f._pending and f._pending[0][0].open_time == MINUTE for f in feeds[1:])
    assert first._held_since is None


def test_a_late_feed_is_counted_from_when_our_bar_came():
    # The round's wait ends (qcheck) with our bar in and another's not: the
    # group holds our bar from the moment it was queued (sync_timeout counts
    # from there), as when Cerebro's thread woke on it.
    feeds, group = minute_feeds(3)
    first = feeds[0]
    thread, out = load_in_thread(first, qcheck=0.2)
    try:
        eventually(lambda: group.waiting)
        before = time.monotonic()
        first._on_bar(bar())
        after = time.monotonic()
        feeds[1]._on_bar(bar())
        thread.join(10)
    finally:
        group.wake()
        thread.join(10)
    assert out == [None]        # held: feeds[2]'s bar of minute 1 is not here
    assert before <= first._held_since <= after
    assert first._pending and first._pending[0][0].open_time == MINUTE


def test_a_late_feed_stops_holding_after_sync_timeout():
    feeds, group = minute_feeds(2, sync_timeout=0.3)
    first = feeds[0]
    queued = time.monotonic()
    thread, out = load_in_thread(first, qcheck=0.05)
    eventually(lambda: group.waiting)
    first._on_bar(bar())        # feeds[1] never sends its bar of minute 1
    thread.join(10)
    while not out[-1]:          # Cerebro's next rounds, until the group lets it go
        assert time.monotonic() - queued < 10, 'the late feed holds it for ever'
        first._qcheck = 0.05
        out.append(first._load())
    assert first._last_ts == MINUTE and time.monotonic() - queued >= 0.3


def test_a_stream_state_or_a_broker_event_ends_the_wait_at_once():
    for trigger, want in ((lambda f: f._on_stream_state(RECONNECTING, False), 'broken'),
                          (lambda f: f.wake(), 'woken')):
        feeds, group = minute_feeds(5)
        first = feeds[0]
        thread, out = load_in_thread(first)     # a 30 s round: only the trigger ends it
        try:
            eventually(lambda: group.waiting)
            trigger(first)
            thread.join(10)
            assert out == [None], want
        finally:
            group.wake()
            thread.join(10)
        if want == 'broken':
            assert first._laststatus == first.CONNBROKEN and not first._stream_up
