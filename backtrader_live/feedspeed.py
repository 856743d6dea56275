"""Exact, cheaper equivalents of upstream work done per data per round.

backtrader's loop runs a few helpers on every data in every round; with 20
symbols in one run (issue 14) they are a measurable part of a bar's latency
(docs/benchmarks.md, "Bar latency with several symbols"). The live feed
(feed.py) calls these instead. Each gives bit-for-bit what upstream's code
gives (tests/test_feedspeed.py compares them with upstream's own methods):

- :func:`tick_fill` for ``AbstractDataBase._tick_fill`` (upstream's loop calls
  it with ``force=True`` on every data that has a bar): upstream finds each
  line's alias by name on every call (``getlinealiases()`` and ``getattr`` on
  the data go through ``LineSeries.__getattr__``); here the aliases are read
  once per class.
- :func:`bar_stamp` for ``data.date2num(utc_from_ms(ms))``: the 20 bars of one
  minute share their open time, so the last conversion is kept and reused.
- :func:`forward` for ``LineSeries.forward`` (upstream's ``load()`` calls it on
  every data in every round): ``LineBuffer.forward`` inlined for each line,
  without the two proxy calls and the ``idx`` property. It leans on
  ``LineBuffer``'s internals (``_idx``, ``lenmark``, ``lencount``, ``array``,
  ``mode``) as linewindow.py does; a line of another class goes through its
  own ``forward``.
"""
import datetime

from backtrader.feed import AbstractDataBase
from backtrader.linebuffer import NAN, LineBuffer
from backtrader.utils.dateintern import date2num

_SPECS = {}     # data class -> (tick name of line 0, ((tick name, line index), ...))


def _tick_spec(cls):
    spec = _SPECS.get(cls)
    if spec is None:
        aliases = cls.lines.getlinealiases()
        spec = ('tick_' + cls.lines._getlinealias(0),
                tuple(('tick_' + a, i) for i, a in enumerate(aliases) if a != 'datetime'))
        _SPECS[cls] = spec
    return spec


def tick_fill(data, force=False):
    """Upstream's ``_tick_fill``: each ``tick_<alias>`` (but datetime) and
    ``tick_last`` set to the current value of its line, if ``force`` or
    nothing set them yet."""
    first, pairs = _tick_spec(type(data))
    if force or getattr(data, first, None) is None:
        lines = data.lines.lines        # what upstream's alias descriptors return
        for name, i in pairs:
            setattr(data, name, lines[i][0])
        data.tick_last = lines[0][0]


_QBUFFER = LineBuffer.QBuffer


def forward(data, value=NAN, size=1):
    """``data.forward(value, size)`` as upstream's ``LineBuffer.forward`` does it
    on each of its lines: the index (in ``QBuffer`` mode only below its
    ``lenmark``, as the ``idx`` setter), the length, ``size`` new values."""
    for buf in data.lines.lines:
        if type(buf) is not LineBuffer:
            buf.forward(value, size=size)
            continue
        if buf.mode != _QBUFFER or buf._idx < buf.lenmark:
            buf._idx += size
        buf.lencount += size
        if size == 1:
            buf.array.append(value)
        else:
            for _ in range(size):
                buf.array.append(value)


def utc_from_ms(ms):
    """A naive UTC datetime for ``ms`` since the epoch (the feeds' bar stamps)."""
    return datetime.datetime.fromtimestamp(ms / 1000.0, datetime.timezone.utc).replace(tzinfo=None)


_UPSTREAM_DATE2NUM = AbstractDataBase.date2num
_last = (None, None)        # (open time ms, its backtrader date number), Cerebro's thread


def bar_stamp(data, ms):
    """``data.date2num(<ms as a naive UTC datetime>)``; the last one is reused
    when the data has no timezone and upstream's ``date2num`` (then the
    number depends on ``ms`` alone)."""
    global _last
    if data._tz is not None or type(data).date2num is not _UPSTREAM_DATE2NUM:
        return data.date2num(utc_from_ms(ms))
    last = _last
    if last[0] == ms:
        return last[1]
    num = date2num(utc_from_ms(ms))
    _last = (ms, num)       # one tuple: another thread's run reads a matching pair
    return num
