"""A live run keeps a recent window of every line, not every value since start.

backtrader keeps each line's values in an ``array('d')`` that grows by one
value per bar, for the data, every indicator, observer and operation: over a
year of 1m bars that is most of a bot's memory. ``exactbars=1`` bounds it but
turns plotting off and is not the default, so users never pass it.

:class:`LineWindow` trims, every ``every`` bars, each unbounded line buffer to
its last ``keep`` values. What code sees does not change:

- ``len(line)`` still counts every bar since the start (backtrader keeps it
  in ``lencount``, which is not touched): ``len(self)`` in a strategy, the
  minimum-period checks and the feed's "load a new bar?" test stay as they are.
- ``line[0]``, ``line[-n]`` and ``line.get(size=n)`` read the same values for
  any ``n < keep``: the buffer's index moves with its front.
- ``buflen()`` stays equal to ``len()``: the dropped values are booked as a
  negative ``extension`` (the count backtrader subtracts from the array's
  length for values appended by replay), so a feed never mistakes a trimmed
  buffer for one holding bars not yet delivered.
- A plot shows the last ``keep`` bars.

Buffers in backtrader's own bounded mode (``exactbars``) are left alone.
This leans on backtrader 1.9.78.123's LineBuffer internals (``array``,
``idx``, ``extension``, ``mode``): tests/test_linewindow.py guards them.
"""
from backtrader.linebuffer import LineBuffer

from .errors import ConfigError


class LineWindow:
    """Trim the lines of running strategies to their last ``keep`` values."""

    def __init__(self, keep, every=None):
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 100:
            raise ConfigError('keep_bars must be an integer >= 100 (bars of every line kept '
                              'for indicators and plots) or None (keep all), got %r' % (keep,))
        self.keep = keep
        # Trimming walks every line: do it in batches so it costs ~nothing per bar.
        self.every = every or max(10, keep // 10)
        self._bars = 0
        self.dropped = 0        # values dropped so far, all buffers together

    def tick(self, strategies):
        """Called once per bar (Cerebro's thread); trims every ``every`` bars."""
        self._bars += 1
        if self._bars % self.every == 0:
            self.trim(strategies)

    def trim(self, strategies):
        limit = self.keep
        seen = set()
        for buf in _buffers(strategies, seen):
            excess = len(buf.array) - limit
            if excess > 0 and buf.mode == LineBuffer.UnBounded:
                del buf.array[:excess]
                buf.idx = buf.idx - excess
                buf.extension -= excess
                self.dropped += excess


def _buffers(strategies, seen):
    """Every LineBuffer reachable from the strategies, once each."""
    stack = []
    for strategy in strategies:
        stack.append(strategy)
        stack.extend(strategy.datas)
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, LineBuffer):
            yield obj
        lines = getattr(obj, 'lines', None)
        for buf in getattr(lines, 'lines', ()):
            if id(buf) not in seen:
                stack.append(buf)
        for group in getattr(obj, '_lineiterators', {}).values():
            stack.extend(group)
