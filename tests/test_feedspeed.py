"""Guards for feedspeed.py: the live feed's shortcuts for upstream work done
per data per round give exactly what upstream's own code gives."""
import random

import backtrader as bt
import pytest
from backtrader.feed import AbstractDataBase

from backtrader_live import feedspeed
from backtrader_live.feed import DataBase


class WithExtraLine(DataBase):
    """A feed subclass with a line of its own: the aliases are the class's."""
    lines = ('funding',)


def _started(cls=DataBase, **kwargs):
    data = cls(dataname='BTC/USDT', **kwargs)
    bt.feed.DataBase.start(data)      # upstream's start (ours needs a store)
    data._tz = data._gettz()          # what upstream's _start_finish sets it to
    return data


def _with_bar(data, seed):
    rnd = random.Random(seed)
    data.lines.forward()
    for line in data.lines.lines:
        line[0] = rnd.uniform(1, 1e5)
    return data


def _ticks(data):
    names = ['tick_' + a for a in type(data).lines.getlinealiases()] + ['tick_last']
    return {n: getattr(data, n, 'unset') for n in names}


@pytest.mark.parametrize('cls', [DataBase, WithExtraLine])
@pytest.mark.parametrize('force', [False, True])
def test_tick_fill_sets_what_upstream_sets(cls, force):
    for seed in range(20):
        ours, theirs = _with_bar(_started(cls), seed), _with_bar(_started(cls), seed)
        assert _ticks(ours) == _ticks(theirs)
        ours._tick_fill(force=force)
        AbstractDataBase._tick_fill(theirs, force=force)
        assert _ticks(ours) == _ticks(theirs)
        assert ours.tick_close == ours.lines.close[0] and ours.tick_last == ours.lines.close[0]
        # a second bar: without force the ticks stay (set already), with force they move
        for data in (ours, theirs):
            data.lines.forward()
            for line in data.lines.lines:
                line[0] = seed + 0.5
        ours._tick_fill(force=force)
        AbstractDataBase._tick_fill(theirs, force=force)
        assert _ticks(ours) == _ticks(theirs)
        # after upstream's nullify (a new bar, ticks=True) it fills again
        ours._tick_nullify()
        theirs._tick_nullify()
        ours._tick_fill(force=force)
        AbstractDataBase._tick_fill(theirs, force=force)
        assert _ticks(ours) == _ticks(theirs) and ours.tick_close == seed + 0.5


def _upstream_stamp(data, ms):
    return AbstractDataBase.date2num(data, feedspeed.utc_from_ms(ms))


def _stamps():
    rnd = random.Random(7)
    minute = 60000
    start = 1_577_836_800_000          # 2020-01-01
    yield from (start + i * minute for i in range(20000))           # two weeks of minutes
    yield from (rnd.randrange(0, 4_102_444_800_000) for _ in range(20000))   # 1970-2100, any ms
    yield from (rnd.randrange(0, 4_102_444_800_000 // minute) * minute for _ in range(5000))
    yield from (0, 1, 999, 86_399_999, 86_400_000, 951_782_400_000, 4_102_444_799_999)


def test_bar_stamp_is_upstreams_date2num_bit_for_bit():
    data = _started()
    assert data._tz is None
    for ms in _stamps():
        want = _upstream_stamp(data, ms)
        # twice: the conversion, then the kept one (every feed of a minute)
        assert feedspeed.bar_stamp(data, ms).hex() == want.hex()
        assert feedspeed.bar_stamp(data, ms).hex() == want.hex()


def test_bar_stamp_with_a_timezone_or_own_date2num_takes_upstreams_path():
    class Shifted(DataBase):
        def date2num(self, dt):
            return super().date2num(dt) + 1.0

    tz_data, shifted, plain = _started(tz='Europe/Berlin'), _started(Shifted), _started()
    assert tz_data._tz is not None
    for ms in (1_577_836_800_000, 1_593_561_600_000, 1_593_561_660_000):
        feedspeed.bar_stamp(plain, ms)          # the kept stamp must not leak to these
        assert feedspeed.bar_stamp(tz_data, ms) == _upstream_stamp(tz_data, ms)
        assert _upstream_stamp(tz_data, ms) != _upstream_stamp(plain, ms)
        assert feedspeed.bar_stamp(shifted, ms) == _upstream_stamp(plain, ms) + 1.0


def test_a_full_feed_queue_warns_and_keeps_what_it_has(caplog):
    from backtrader_live.events import Bar
    data = DataBase(dataname='BTC/USDT', queue_size=1)
    data._on_bar(Bar(0, 1.0, 1.0, 1.0, 1.0, 1.0))
    data._on_bar(Bar(60000, 1.0, 1.0, 1.0, 1.0, 1.0))
    assert data._q.qsize() == 1 and data._q.get(timeout=0).open_time == 0
    assert 'queue full, bar 60000 will be refetched' in caplog.text


def _state(data):
    return [(type(b.array).__name__, list(b.array), b._idx, b.lencount, b.idx, len(b),
             b.buflen()) for b in data.lines.lines]


def _moves(data, forward, rnd, bounded):
    """A run of the line moves upstream's loop makes, ``forward`` as the data's:
    a bar loaded (forward, set), none (forward, backwards(force): load()'s
    undo), and in an unbounded buffer several values at once and rewinds."""
    for step in range(400):
        kind = rnd.random()
        if kind < 0.6:
            forward(data)
            for line in data.lines.lines:
                line[0] = rnd.random()
        elif kind < 0.8:
            forward(data)
            data.backwards(force=True)
        elif not bounded and kind < 0.9:
            forward(data, value=rnd.random(), size=rnd.randint(1, 3))
        elif not bounded and len(data) > 1:
            data.rewind()
        yield step


@pytest.mark.parametrize('mode', ['unbounded', 'qbuffer', 'qbuffer-replay'])
def test_forward_moves_every_line_as_upstreams(mode):
    from backtrader.lineseries import LineSeries
    ours, theirs = _started(WithExtraLine), _started(WithExtraLine)
    if mode != 'unbounded':
        for data in (ours, theirs):
            data.qbuffer(savemem=1, replaying=(mode == 'qbuffer-replay'))
            assert all(b.mode == b.QBuffer for b in data.lines.lines)
    rnd_ours, rnd_theirs = random.Random(3), random.Random(3)
    bounded = mode != 'unbounded'
    steps = zip(_moves(ours, lambda d, **kw: d.forward(**kw), rnd_ours, bounded),
                _moves(theirs, lambda d, **kw: LineSeries.forward(d, **kw), rnd_theirs, bounded))
    for _ in steps:
        assert repr(_state(ours)) == repr(_state(theirs))      # repr: NaN == NaN


def test_forward_leaves_a_line_of_another_class_to_its_own_forward():
    from backtrader.linebuffer import LineBuffer

    class Counting(LineBuffer):
        calls = 0

        def forward(self, value=float('nan'), size=1):
            Counting.calls += 1
            super().forward(value, size=size)

    data = _started()
    data.lines.lines[2] = Counting()
    data.forward()
    assert Counting.calls == 1 and len(data.lines.lines[2]) == 1 and len(data) == 1
