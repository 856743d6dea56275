"""The dispatcher: non-blocking delivery, filters, de-duplication, retries,
failure isolation, bounded queues and a bounded drain at shutdown."""
import dataclasses
import datetime
import logging
import math
import pickle
import threading
import time

import pytest
from hypothesis import given, settings, strategies as st

from backtrader_live.backoff import Backoff
from backtrader_live.errors import ConfigError
from backtrader_live.notifications import (CallbackChannel, Channel, Deduper, LogChannel,
                                           Notification, Notifier, parse_level, to_jsonable)
from notifykit import Blocker, Collector, bt_live_threads

FAST = dict(backoff=Backoff(base=0.01, cap=0.02))


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


# -- the notification itself -------------------------------------------------------------
def test_a_notification_is_its_text_plus_metadata():
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    n = Notification('BUY 0.01 BTC/USDT @ 42000 completed', logging.INFO, 'order',
                     {'ref': 1}, time=when)
    assert n == 'BUY 0.01 BTC/USDT @ 42000 completed' and 'BUY' in n
    assert (n.level, n.levelname, n.kind, n.data, n.suppressed) == (20, 'INFO', 'order',
                                                                    {'ref': 1}, 0)
    assert n.title('[bot]') == '[bot] INFO: BUY 0.01 BTC/USDT @ 42000 completed'
    assert n.to_dict() == {'text': str(n), 'message': str(n), 'level': 'INFO', 'kind': 'order',
                           'time': '2024-01-02T03:04:05+00:00', 'suppressed': 0,
                           'data': {'ref': 1}}
    assert pickle.loads(pickle.dumps(n)).to_dict() == n.to_dict()
    assert repr(n) == "Notification('BUY 0.01 BTC/USDT @ 42000 completed', level=INFO, " \
                      "kind='order')"
    long = Notification('x' * 300 + '\nsecond line', logging.ERROR)
    assert long.title('') == 'ERROR: ' + 'x' * 97 + '...'


def test_a_suppressed_count_shows_in_the_text_not_in_the_message():
    n = Notification('feed down', logging.WARNING, suppressed=3, interval=60)
    assert str(n) == 'feed down (repeated 3 more times within 60s)'
    assert n.message == 'feed down' and n.to_dict()['suppressed'] == 3
    assert str(Notification('x', suppressed=1, interval=5)) == 'x (repeated 1 more time within 5s)'


def test_data_of_any_shape_becomes_json():
    @dataclasses.dataclass
    class Alert:
        rule: str
        value: float
        at: datetime.date

    class NumpyLike:
        def item(self):
            return 2.5

    class BadItem:
        def item(self):
            raise TypeError('no')

        def __str__(self):
            return 'bad-item'

    deep = current = {}
    for _ in range(12):
        current['x'] = current = {}
    out = to_jsonable({'alert': Alert('drawdown', math.nan, datetime.date(2024, 1, 1)),
                       1: (NumpyLike(), {3}, None, True), 'other': BadItem(), 'deep': deep,
                       'inf': math.inf})
    assert out['alert'] == {'rule': 'drawdown', 'value': 'nan', 'at': '2024-01-01'}
    assert out['1'] == [2.5, [3], None, True]
    assert out['other'] == 'bad-item' and out['inf'] == 'inf'
    assert 'x' in str(out['deep'])


@pytest.mark.parametrize('given_level,expected', [
    ('INFO', 20), ('warning', 30), (' Warn ', 30), ('fatal', 50), (logging.ERROR, 40), (15, 15)])
def test_levels_read_like_logging(given_level, expected):
    assert parse_level(given_level) == expected


@pytest.mark.parametrize('bad', ['LOUD', None, True, 2.5])
def test_unknown_levels_are_a_clear_error(bad):
    with pytest.raises(ConfigError, match='notification level'):
        parse_level(bad)


@pytest.mark.parametrize('kwargs,match', [
    (dict(timeout=0), 'timeout'), (dict(retries=-1), 'retries'),
    (dict(queue_size=0), 'queue_size'), (dict(level='LOUD'), 'unknown notification level')])
def test_channel_limits_are_checked(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        CallbackChannel(print, **kwargs)
    with pytest.raises(ConfigError, match='callable'):
        CallbackChannel('not callable')


# -- delivery and filters -----------------------------------------------------------------
def test_each_channel_gets_what_its_level_and_kinds_allow():
    everything, warnings, orders = Collector(), Collector(), Collector()
    with Notifier([CallbackChannel(everything, level='DEBUG'),
                   CallbackChannel(warnings, level='WARNING', name='warn'),
                   CallbackChannel(orders, kinds='order', name='orders')]) as notifier:
        assert notifier.notify('debug detail', 'DEBUG') == 1
        assert notifier.notify('filled', 'INFO', kind='order') == 2
        assert notifier.notify('feed down', 'WARNING', kind='data_status') == 2
        assert notifier.flush(5)
        assert everything.texts() == ['debug detail', 'filled', 'feed down']
        assert warnings.texts() == ['feed down'] and orders.texts() == ['filled']
        assert notifier.stats()['warn'] == {'sent': 1, 'failed': 0, 'dropped': 0, 'queued': 0}


def test_threads_start_on_the_first_notification_and_stop_with_the_notifier():
    got = Collector()
    notifier = Notifier([CallbackChannel(got, name='cb')])
    assert bt_live_threads() == []                   # nothing started by building it
    assert notifier.flush(1) and notifier.stop(1)    # and nothing to stop yet
    notifier.notify('one')
    assert bt_live_threads() == ['bt-live-notify-cb']
    assert notifier.stop(2) and bt_live_threads() == []
    notifier.notify('two')                           # a later run starts afresh
    assert got.wait(2) and notifier.stop(2)
    assert got.texts() == ['one', 'two'] and bt_live_threads() == []


def test_plain_callables_become_callback_channels_with_unique_names():
    def hook(n):
        pass
    notifier = Notifier([hook, hook])
    assert [c.name for c in notifier.channels] == [
        'callback:test_plain_callables_become_callback_channels_with_unique_names.<locals>.hook',
        'callback:test_plain_callables_become_callback_channels_with_unique_names.<locals>.'
        'hook#2']
    log_channel = notifier.add_channel(LogChannel())
    assert log_channel.name == 'log' and 'LogChannel' in repr(notifier)
    with pytest.raises(TypeError, match='cannot be pickled'):
        pickle.dumps(notifier)


def test_log_channel_writes_at_the_notification_level(caplog):
    caplog.set_level(logging.DEBUG, logger='alerts')
    with Notifier([LogChannel('alerts', level='INFO')]) as notifier:
        notifier.notify('drawdown 12%', 'ERROR', kind='risk_alert')
        notifier.flush(5)
    (record,) = [r for r in caplog.records if r.name == 'alerts']
    assert record.levelno == logging.ERROR and record.getMessage() == '[risk_alert] drawdown 12%'


# -- de-duplication -------------------------------------------------------------------------
def test_the_same_alert_goes_out_at_most_once_per_interval():
    clock, got = FakeClock(), Collector()
    with Notifier([got], dedupe_interval=60, clock=clock) as notifier:
        assert notifier.notify('BTC/USDT: connection lost', 'WARNING', 'data_status') == 1
        for _ in range(5):
            clock.now += 10                              # still within the minute
            assert notifier.notify('BTC/USDT: connection lost', 'WARNING', 'data_status') == 0
        assert notifier.notify('BTC/USDT: reconnected', 'INFO', 'data_status') == 1
        clock.now += 11                                  # 61 s after the first one
        assert notifier.notify('BTC/USDT: connection lost', 'WARNING', 'data_status') == 1
        got.wait(3)
    assert got.texts() == ['BTC/USDT: connection lost', 'BTC/USDT: reconnected',
                           'BTC/USDT: connection lost (repeated 5 more times within 60s)']
    assert notifier.suppressed == 5


def test_a_dedupe_key_decides_what_counts_as_the_same():
    got = Collector()
    with Notifier([got], dedupe_interval=60) as notifier:
        # two identical-looking fills are different events: different keys
        assert notifier.notify('BUY 0.01 @ 100 completed', dedupe_key=('order', 1)) == 1
        assert notifier.notify('BUY 0.01 @ 100 completed', dedupe_key=('order', 2)) == 1
        # differently worded texts of one event: one key
        assert notifier.notify('rejected: funds', dedupe_key='reject') == 1
        assert notifier.notify('rejected: funds!', dedupe_key='reject') == 0
        got.wait(3)


def test_dedupe_can_be_switched_off_and_stays_bounded():
    got = Collector()
    with Notifier([got], dedupe_interval=0) as notifier:
        assert [notifier.notify('same') for _ in range(3)] == [1, 1, 1]
        got.wait(3)
    deduper = Deduper(60, clock=FakeClock(), max_keys=3)
    for key in 'abcde':
        assert deduper.admit(key) == (True, 0)
    assert list(deduper._seen) == ['c', 'd', 'e']       # oldest forgotten first
    with pytest.raises(ValueError):
        Deduper(-1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from('abc'), st.floats(0, 40)), max_size=60),
       st.floats(1, 100))
def test_dedupe_property_no_key_twice_within_the_interval(events, interval):
    clock = FakeClock()
    deduper = Deduper(interval, clock=clock)
    admitted, suppressed_reported, dropped = {}, 0, 0
    for key, step in events:
        clock.now += step
        ok, suppressed = deduper.admit(key)
        if ok:
            last = admitted.get(key)
            assert last is None or clock.now - last >= interval
            admitted[key] = clock.now
            suppressed_reported += suppressed
        else:
            dropped += 1
    pending = sum(entry[1] for entry in deduper._seen.values())
    assert suppressed_reported + pending == dropped     # every drop is counted once


# -- retries and failure isolation ----------------------------------------------------------
def test_network_errors_are_retried_with_backoff_then_delivered():
    calls = []

    def flaky(n):
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ConnectionResetError('peer went away')

    with Notifier([CallbackChannel(flaky, retries=3, name='flaky', **FAST)]) as notifier:
        notifier.notify('fill')
        assert notifier.flush(5)
        assert len(calls) == 3
        assert notifier.stats()['flaky'] == {'sent': 1, 'failed': 0, 'dropped': 0, 'queued': 0}


def test_a_broken_channel_never_raises_and_never_starves_the_others(caplog):
    got = Collector()

    def broken(n):
        raise ValueError('bug in my callback')

    with Notifier([CallbackChannel(broken, name='broken', **FAST), got]) as notifier:
        for i in range(3):
            assert notifier.notify('event %d' % i) == 2
        got.wait(3)
        assert notifier.flush(5)
        assert notifier.stats()['broken']['failed'] == 3     # each tried once: a bug
    errors = [r for r in caplog.records if 'broken failed' in r.getMessage()]
    assert len(errors) == 3 and 'not retryable' in errors[0].getMessage()
    assert errors[0].exc_info is not None                    # a callback bug shows its traceback


def test_retries_stop_at_the_limit():
    calls = []

    def down(n):
        calls.append(1)
        raise TimeoutError('timed out')

    with Notifier([CallbackChannel(down, retries=2, name='down', **FAST)]) as notifier:
        notifier.notify('x')
        assert notifier.flush(5)
        assert len(calls) == 3 and notifier.stats()['down']['failed'] == 1


def test_notify_survives_a_broken_channel_filter_and_a_bad_level(caplog):
    class BrokenFilter(Channel):
        def accepts(self, notification):
            raise RuntimeError('filter bug')

    got = Collector()
    with Notifier([got]) as notifier:
        assert notifier.notify('odd level', level='LOUD') == 1
        got.wait(1)
        assert got.items[0].levelname == 'WARNING'
        notifier.add_channel(BrokenFilter(name='bad'))
        assert notifier.notify('anything') == 0             # logged, not raised
    assert 'could not be queued' in caplog.text and 'unknown notification level' in caplog.text


# -- a hung channel: bounded queue, bounded drain -------------------------------------------
@pytest.mark.serial      # a latency/duration bound: alone, not beside other workers
def test_a_hung_channel_fills_only_its_own_bounded_queue(caplog):
    blocker, got = Blocker(), Collector()
    notifier = Notifier([CallbackChannel(blocker, name='hung', queue_size=3), got])
    try:
        notifier.notify('n0', dedupe_key=0)
        assert blocker.entered.wait(2)                       # n0 is being sent, stuck
        started = time.perf_counter()
        for i in range(1, 10):
            notifier.notify('n%d' % i, dedupe_key=i)
        assert time.perf_counter() - started < 0.1           # never waits for the hung one
        got.wait(10)                                         # the others are unaffected
        assert notifier.stats()['hung'] == {'sent': 0, 'failed': 0, 'dropped': 6, 'queued': 4}
        assert caplog.text.count('not keeping up') == 1      # one warning, not one per drop
        blocker.release.set()
        assert notifier.flush(5)
        assert [str(n) for n in blocker.items] == ['n0', 'n1', 'n2', 'n3']
        assert 'hung recovered (6 dropped so far)' in caplog.text
    finally:
        blocker.release.set()
        notifier.stop(2)


@pytest.mark.serial      # a latency/duration bound: alone, not beside other workers
def test_stop_drains_within_its_bound_even_if_a_channel_hangs(caplog):
    blocker, got = Blocker(), Collector()
    notifier = Notifier([CallbackChannel(blocker, name='hung'), got])
    for i in range(5):
        notifier.notify('n%d' % i)
    assert blocker.entered.wait(2)
    started = time.monotonic()
    assert notifier.stop(0.3) is False                  # could not finish: says so
    assert time.monotonic() - started < 1.5             # bounded: 0.3 s + 0.5 s grace
    assert got.texts() == ['n0', 'n1', 'n2', 'n3', 'n4']  # the healthy channel was drained
    assert 'hung is stuck in a send; 5 notification(s) left undelivered' in caplog.text
    blocker.release.set()                               # the send returns: the thread ends
    for t in [t for t in threading.enumerate() if t.name == 'bt-live-notify-hung']:
        t.join(2)
    assert 'hung: 4 notification(s) not delivered before the shutdown deadline' in caplog.text
    assert notifier.stats()['hung']['dropped'] == 4 and bt_live_threads() == []


@pytest.mark.serial      # a latency/duration bound: alone, not beside other workers
def test_retries_are_cut_short_by_the_shutdown_deadline():
    calls = []

    def down(n):
        calls.append(1)
        raise ConnectionRefusedError('refused')

    notifier = Notifier([CallbackChannel(down, retries=5, name='down',
                                         backoff=Backoff(base=5, cap=5))])
    notifier.notify('x')
    started = time.monotonic()
    assert notifier.stop(0.5)
    assert time.monotonic() - started < 1.0 and len(calls) == 1
    assert notifier.stats()['down']['failed'] == 1


def test_remove_channel_delivers_its_queue_first():
    got, other = Collector(), Collector()
    notifier = Notifier([got, other])
    channel = notifier.channels[0]
    notifier.notify('before')
    notifier.remove_channel(channel)
    notifier.notify('after')
    notifier.stop(2)
    assert got.texts() == ['before'] and other.texts() == ['before', 'after']
    assert list(notifier.stats()) == [notifier.channels[0].name]    # only the other left


def test_a_worker_survives_an_unexpected_error_and_goes_on(caplog):
    class Leaky(CallbackChannel):
        def secrets(self):            # used when reporting a failure: breaks that too
            raise RuntimeError('secrets() bug')

    got = Collector()

    def fail_once(n):
        if n == 'first':
            raise ConnectionError('down')
        got(n)

    with Notifier([Leaky(fail_once, name='leaky', **FAST)]) as notifier:
        notifier.notify('first')
        notifier.notify('second')
        got.wait(1)
    assert 'notification channel leaky: unexpected error' in caplog.text
    assert got.texts() == ['second']
