"""Candle files, interval arithmetic and the intrabar path, for every simulator.

A candle file is a JSON array (optionally gzipped) of
``[open_time_ms, open, high, low, close, volume]`` rows, oldest first.
Rows are kept as plain tuples: the simulator reads millions of fields while
serving klines and plain tuples keep that cheap.

Every interval is served, whatever the file's timeframe (real exchanges do):
coarser ones that are whole multiples of it by aggregation, the others
(finer, or not a multiple, e.g. 3m on 5m data) by slicing each candle along
its documented synthetic path (:func:`path_points`): open, then the high for
a rising candle (the low for a falling one) a third of the way in, the other
extreme at two thirds, the close at the end, straight lines between.  A slice's
open/close are the path's prices at its edges, its high/low the extremes the
path reaches inside it, its volume the candle's volume pro rata to time, in
whole 1e-8 units (:func:`volume_between`), so the slices of one candle give
back its open, high, low, close and volume exactly.  The market clock moves
prices along the same path, so finer klines agree with fills and triggers.
"""
import calendar
import datetime as _dt
import gzip
import json
import os

#: milliseconds per fixed-length Binance interval (``1M`` is calendar based)
INTERVAL_MS = {
    '1s': 1000, '1m': 60000, '3m': 180000, '5m': 300000, '15m': 900000,
    '30m': 1800000, '1h': 3600000, '2h': 7200000, '4h': 14400000,
    '6h': 21600000, '8h': 28800000, '12h': 43200000, '1d': 86400000,
    '3d': 259200000, '1w': 604800000,
}
#: every interval Binance spot serves, in its canonical order
INTERVALS = tuple(INTERVAL_MS) + ('1M',)
MONTH = '1M'
# 1970-01-01 was a Thursday: weekly buckets start 4 days after the epoch
_WEEK_ANCHOR_MS = 4 * 86400000

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')
#: packaged default data per unified symbol
DEFAULT_DATA = {
    'BTC/USDT': os.path.join(DATA_DIR, 'binance_BTCUSDT_1h.json.gz'),
    'ETH/BTC': os.path.join(DATA_DIR, 'binance_ETHBTC_5m.json.gz'),
}

O, H, L, C, V = 1, 2, 3, 4, 5  # row field positions (0 is the open time)


class IntervalError(ValueError):
    """An interval the simulator does not know."""


def load_candles(path):
    """Read a candle file (``.json`` or ``.json.gz``) into a list of tuples.

    Parsed once per file version (path, size, mtime) and kept: a simulator
    starts in ~10 ms instead of spending ~0.3 s of CPU re-reading the same
    34,000 rows. The rows are tuples; each caller gets its own list.
    """
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    rows = _PARSED.get(key)
    if rows is None:
        rows = _PARSED[key] = _read_candles(path)
    return list(rows)


_PARSED = {}     # (path, size, mtime) -> rows (a tuple of tuples)


def _read_candles(path):
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rt', encoding='utf-8') as fh:
        raw = json.load(fh)
    rows = [(int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]),
             float(r[5])) for r in raw]
    if not rows:
        raise ValueError('candle file %s is empty' % path)
    return tuple(rows)


def detect_timeframe(rows):
    """The data's timeframe: the most common spacing between bars, in ms."""
    counts = {}
    for a, b in zip(rows, rows[1:min(len(rows), 2000)]):
        step = b[0] - a[0]
        counts[step] = counts.get(step, 0) + 1
    if not counts:
        raise ValueError('need at least two candles to detect the timeframe')
    return max(counts, key=counts.get)


def interval_for_ms(ms):
    """The Binance interval name of a fixed duration, or None."""
    for name, length in INTERVAL_MS.items():
        if length == ms:
            return name
    return None


def check_interval(interval, data_tf_ms=None):
    """Refuse an unknown interval; every known one can be served from any data."""
    if interval not in INTERVALS:
        raise IntervalError('Invalid interval.')


def aggregates(interval, data_tf_ms):
    """True when ``interval`` is built by merging whole candles of the data
    (a whole multiple of its timeframe; ``1M`` when the timeframe divides a day)."""
    if interval == MONTH:
        return 86400000 % data_tf_ms == 0
    length = INTERVAL_MS[interval]
    return length >= data_tf_ms and length % data_tf_ms == 0


def bucket_before(start, interval):
    """Open time of the bucket before the one opening at ``start``."""
    if interval == MONTH:
        return bucket_start(start - 1, interval)
    return start - INTERVAL_MS[interval]


def bucket_start(ts, interval):
    """Open time of the ``interval`` bucket holding ``ts`` (UTC aligned)."""
    if interval == MONTH:
        d = _dt.datetime.fromtimestamp(ts / 1000.0, tz=_dt.timezone.utc)
        return calendar.timegm((d.year, d.month, 1, 0, 0, 0)) * 1000
    length = INTERVAL_MS[interval]
    if interval == '1w':
        return (ts - _WEEK_ANCHOR_MS) // length * length + _WEEK_ANCHOR_MS
    return ts // length * length


def bucket_end(start, interval):
    """Open time of the bucket after the one opening at ``start``."""
    if interval == MONTH:
        d = _dt.datetime.fromtimestamp(start / 1000.0, tz=_dt.timezone.utc)
        year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
        return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000
    return start + INTERVAL_MS[interval]


def merge(rows):
    """One OHLCV tuple from consecutive rows (open time of the first)."""
    first = rows[0]
    return (first[0], first[O], max(r[H] for r in rows),
            min(r[L] for r in rows), rows[-1][C], sum(r[V] for r in rows))


def aggregate(rows, interval):
    """Group rows into ``interval`` buckets; each bucket keyed by its start."""
    out = []
    group, key = [], None
    for row in rows:
        k = bucket_start(row[0], interval)
        if k != key and group:
            out.append((key,) + merge(group)[1:])
            group = []
        key = k
        group.append(row)
    if group:
        out.append((key,) + merge(group)[1:])
    return out


# -- the intrabar path: finer bars are slices of it ----------------------------------------
VOLUME_UNITS = 10 ** 8  # volumes are split in whole 1e-8 units: slices add up exactly


def path_points(row, end):
    """The (time, price) knots of a candle's synthetic path (see the module doc)."""
    t, o, h, l, c, _ = row
    span = end - t
    mid = (l, h) if c < o else (h, l)
    return ((t, o), (t + span / 3.0, mid[0]), (t + 2 * span / 3.0, mid[1]), (end, c))


def path_price(points, ms):
    """The path's price at ``ms``; a knot's own price exactly at a knot."""
    for (ta, pa), (tb, pb) in zip(points, points[1:]):
        if ms <= ta:
            return pa
        if ms < tb:
            return pa + (pb - pa) * (ms - ta) / (tb - ta)
    return points[-1][1]


def path_range(points, a, b):
    """(low, high) of the path between times a and b (knots inside included)."""
    prices = [path_price(points, a), path_price(points, b)]
    prices += [p for t, p in points if a < t < b]
    return min(prices), max(prices)


def volume_between(row, end, a, b):
    """The candle's volume traded between a and b, pro rata to time, in whole
    1e-8 units: slices that tile the candle sum to its volume exactly."""
    t, span = row[0], end - row[0]
    units = int(round(row[V] * VOLUME_UNITS))
    return (units * (b - t) // span - units * (a - t) // span) / float(VOLUME_UNITS)


def slice_bar(row, end, a, b):
    """OHLCV of the candle's path between times a and b (a <= b, inside it)."""
    points = path_points(row, end)

    def inside(price):  # float interpolation must not leave the candle's range
        return min(max(price, row[L]), row[H])
    low, high = path_range(points, a, b)
    return (a, inside(path_price(points, a)), inside(high), inside(low),
            inside(path_price(points, b)), volume_between(row, end, a, b))
