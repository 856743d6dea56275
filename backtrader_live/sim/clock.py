"""The market clock: replays real candles re-dated so that one bar forms now.

Every bar of a symbol is shifted by one constant offset, a multiple of the
data's timeframe, so the real gaps in the data stay gaps and bar opens stay
aligned on interval boundaries.  Bar ``start_index`` is the bar forming at
the moment the simulator starts; earlier bars are history.

Inside a bar the price follows open -> high -> low -> close (open -> low ->
high -> close for a falling bar), piecewise linear over the bar, so market
orders and stop triggers placed mid-bar see a plausible price.
"""
import bisect
import datetime
import logging
import numbers
import time
from collections import namedtuple

from . import candles as cd

log = logging.getLogger(__name__)

#: the part of one bar the clock crossed in one move (prices are floats)
Segment = namedtuple('Segment',
                     'symbol index start end first last low high closed volume')


def market_start_ms(start):
    """Where the market clock starts, in epoch ms: ``None`` (now, the default),
    epoch milliseconds, or a datetime (naive means UTC).

    Why pin it: bars of 4h or 1d fall on UTC boundaries, so which 1h bars a
    4h bar spans, or when a session ends, depends on the hour the clock
    started; a test or a demo that needs the same alignment each run passes
    a start. The signed requests' clock (``serverTime``, ``recvWindow``)
    stays the wall clock, as on the real exchange, so a start ahead of the
    wall clock is what step mode does anyway."""
    if start is None:
        return int(time.time() * 1000)
    if isinstance(start, datetime.datetime):
        if start.tzinfo is None:
            start = start.replace(tzinfo=datetime.timezone.utc)
        return int(start.timestamp() * 1000)
    if isinstance(start, numbers.Real) and not isinstance(start, bool) and start > 0:
        return int(start)
    raise ValueError('start must be None (now), epoch milliseconds or a datetime, got %r'
                     % (start,))


class SymbolFeed:
    """One symbol's re-dated candles and their intrabar price path."""

    def __init__(self, symbol, rows, start_index, now_ms):
        if not 0 <= start_index < len(rows):
            raise ValueError('start_index %d outside the %d candles of %s'
                             % (start_index, len(rows), symbol))
        self.symbol = symbol
        self.tf = cd.detect_timeframe(rows)
        self.interval = cd.interval_for_ms(self.tf)
        forming_open = now_ms // self.tf * self.tf
        self.offset = forming_open - rows[start_index][0] // self.tf * self.tf
        self.rows = [(r[0] + self.offset,) + r[1:] for r in rows]
        self.times = [r[0] for r in self.rows]
        # a few real bars overlap their successor: a bar ends where the next begins
        self.ends = [min(t + self.tf, n) for t, n in zip(self.times, self.times[1:])]
        self.ends.append(self.times[-1] + self.tf)
        self._agg = {}

    # -- where is the clock ---------------------------------------------
    def index_at(self, ms):
        """Index of the bar forming at ``ms``, or None (gap, before or after data)."""
        i = bisect.bisect_right(self.times, ms) - 1
        if i >= 0 and ms < self.ends[i]:
            return i
        return None

    def visible_count(self, ms):
        """How many bars have opened by ``ms`` (the last may be forming)."""
        return bisect.bisect_right(self.times, ms)

    def last_end(self):
        return self.ends[-1]

    # -- the intrabar path ------------------------------------------------
    def _points(self, i):
        return cd.path_points(self.rows[i], self.ends[i])

    def path_price(self, i, ms):
        return cd.path_price(self._points(i), ms)

    def path_range(self, i, a, b):
        """(low, high) of the path of bar ``i`` between times a and b."""
        return cd.path_range(self._points(i), a, b)

    def price(self, ms):
        """The market price at ``ms``: on the path, else the last close."""
        i = self.index_at(ms)
        if i is not None:
            return self.path_price(i, ms)
        n = self.visible_count(ms)
        return self.rows[n - 1][cd.C] if n else self.rows[0][cd.O]

    def partial(self, i, ms):
        """Bar ``i`` as seen at ``ms``: high/low/close so far, volume pro rata."""
        t, o, _, _, _, v = self.rows[i]
        if ms >= self.ends[i]:
            return self.rows[i]
        low, high = self.path_range(i, t, ms)
        frac = (ms - t) / float(self.ends[i] - t)
        return (t, o, high, low, self.path_price(i, ms), v * frac)

    def segments(self, a, b):
        """The bars the clock crosses moving from a to b, as Segments."""
        out = []
        i = max(bisect.bisect_right(self.times, a) - 1, 0)
        while i < len(self.rows) and self.times[i] < b:
            start, end = max(a, self.times[i]), min(b, self.ends[i])
            if start < end:
                low, high = self.path_range(i, start, end)
                out.append(Segment(self.symbol, i, start, end,
                                   self.path_price(i, start), self.path_price(i, end),
                                   low, high, b >= self.ends[i], self.rows[i][cd.V]))
            i += 1
        return out

    # -- bars as served -----------------------------------------------------
    def bars(self, interval, now, start=None, limit=None, end=None):
        """Bars of ``interval`` opened by ``now`` (and at or after ``start``).

        Returns ``(rows, last_closed)``: rows oldest first, every row but the
        last is closed; the last one is still forming unless ``last_closed``.
        ``limit`` and ``end`` (latest open time) bound the work of slicing
        candles into finer bars; callers still apply them to every result.
        """
        cd.check_interval(interval)
        n = self.visible_count(now)
        if n == 0:
            return [], True
        if not cd.aggregates(interval, self.tf):
            return self._derived(interval, now, start, limit, end)
        if interval == self.interval:
            i0 = 0 if start is None else bisect.bisect_left(self.times, start)
            if i0 >= n:
                return [], True
            rows = self.rows[i0:n - 1] + [self.partial(n - 1, now)]
            return rows, now >= self.ends[n - 1]
        return self._aggregated(interval, n, now, start)

    def _aggregated(self, interval, n, now, start):
        buckets, firsts, starts = self._agg_table(interval)
        j = bisect.bisect_right(firsts, n - 1)  # buckets that have begun
        j0 = 0 if start is None else bisect.bisect_left(starts, start)
        if j0 >= j:
            return [], True
        first = buckets[j - 1][0]
        part = list(self.rows[firsts[j - 1]:n - 1]) + [self.partial(n - 1, now)]
        merged = (first,) + cd.merge(part)[1:]
        return buckets[j0:j - 1] + [merged], now >= cd.bucket_end(first, interval)

    #: newest bars served when a finer interval is asked without a start or limit
    DERIVED_DEFAULT = 1500

    def _derived(self, interval, now, start, limit, end):
        """Bars sliced from the candles' paths (finer or non-multiple intervals):
        forward from ``start``, else backward from ``end``/``now``."""
        stop = now if end is None else min(now, end)
        rows = []
        if start is not None:
            b = cd.bucket_start(max(start, self.times[0]), interval)
            b = b if b >= start else cd.bucket_end(b, interval)
            while b <= stop and (limit is None or len(rows) < limit):
                row = self._bucket(b, interval, now)
                if row is not None:
                    rows.append(row)
                b = self._skip_gap(cd.bucket_end(b, interval), interval, forward=True)
        else:
            b, want = cd.bucket_start(stop, interval), limit or self.DERIVED_DEFAULT
            while b is not None and b + cd.INTERVAL_MS.get(interval, 0) > self.times[0] \
                    and len(rows) < want:
                row = self._bucket(b, interval, now)
                if row is not None:
                    rows.append(row)
                b = self._skip_gap(cd.bucket_before(b, interval), interval, forward=False)
            rows.reverse()
        if not rows:
            return [], True
        return rows, now >= cd.bucket_end(rows[-1][0], interval)

    def _skip_gap(self, b, interval, forward):
        """``b``, or past a gap in the data (no bar covers b) the bucket where
        data resumes (forward) or last was (backward); None before the data."""
        i = bisect.bisect_right(self.times, b) - 1
        if i >= 0 and b < self.ends[i]:
            return b
        if forward:
            return b if i + 1 >= len(self.times) else max(
                b, cd.bucket_start(self.times[i + 1], interval))
        return None if i < 0 else min(b, cd.bucket_start(self.ends[i] - 1, interval))

    def _bucket(self, b, interval, now):
        """One finer bar opening at ``b``: the candles' path slices it covers,
        clipped at ``now`` while it forms; None where the data has no bar."""
        be = min(cd.bucket_end(b, interval), now)
        parts = []
        i = max(bisect.bisect_right(self.times, b) - 1, 0)
        while i < len(self.rows) and self.times[i] <= be:
            a0, b0 = max(b, self.times[i]), min(be, self.ends[i])
            # a bar that has just opened (now == b) is one point of the path
            if a0 < b0 or (a0 == b0 == b == now and self.times[i] <= now < self.ends[i]):
                parts.append(cd.slice_bar(self.rows[i], self.ends[i], a0, b0))
            i += 1
        if not parts:
            return None
        return (b,) + cd.merge(parts)[1:]

    def _agg_table(self, interval):
        """Aggregated buckets of the whole file, each one's first row, starts."""
        if interval not in self._agg:
            buckets = cd.aggregate(self.rows, interval)
            firsts, k = [], 0
            for b in buckets:
                while cd.bucket_start(self.times[k], interval) != b[0]:
                    k += 1
                firsts.append(k)
            self._agg[interval] = (buckets, firsts, [b[0] for b in buckets])
        return self._agg[interval]

    def closed_between(self, interval, a, b):
        """Bars of ``interval`` whose close falls in (a, b], oldest first."""
        longest = cd.INTERVAL_MS.get(interval, 31 * 86400000)
        rows, last_closed = self.bars(interval, b, start=a - longest + 1)
        if not last_closed:
            rows = rows[:-1]
        return [r for r in rows if a < self.bar_end(r[0], interval) <= b]

    def bar_end(self, start, interval):
        """Close time (exclusive) of the bar opening at ``start``."""
        if interval == self.interval:
            i = bisect.bisect_left(self.times, start)
            if i < len(self.times) and self.times[i] == start:
                return self.ends[i]
        return cd.bucket_end(start, interval)


class MarketClock:
    """Market time for all symbols; moved only by :meth:`advance_to`."""

    def __init__(self, feeds, now_ms):
        self.feeds = feeds  # symbol id -> SymbolFeed; the first one paces steps
        self.primary = next(iter(feeds.values()))
        self.now = now_ms
        self.finished = False

    def next_close(self):
        """When the primary symbol's current (or next) bar closes, or None."""
        p = self.primary
        i = p.index_at(self.now)
        if i is None:
            i = p.visible_count(self.now)
            if i >= len(p.rows):
                return None
        return p.ends[i]

    def advance_to(self, target):
        """Move the clock forward; returns the Segments crossed, per symbol."""
        end = self.primary.last_end()
        target = min(target, end)
        if target <= self.now:
            self._check_finished()
            return []
        a, self.now = self.now, target
        segs = []
        for feed in self.feeds.values():
            segs.extend(feed.segments(a, target))
        self._check_finished()
        return segs

    def _check_finished(self):
        if not self.finished and self.now >= self.primary.last_end():
            self.finished = True
            log.info('market clock reached the end of the data at %d; it stops here',
                     self.now)
