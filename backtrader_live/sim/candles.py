"""Candle files and Binance interval arithmetic for the simulator.

A candle file is a JSON array (optionally gzipped) of
``[open_time_ms, open, high, low, close, volume]`` rows, oldest first.
Rows are kept as plain tuples: the simulator reads millions of fields while
serving klines and plain tuples keep that cheap.
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
    """An interval the simulator cannot serve (unknown or finer than its data)."""


def load_candles(path):
    """Read a candle file (``.json`` or ``.json.gz``) into a list of tuples."""
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rt', encoding='utf-8') as fh:
        raw = json.load(fh)
    rows = [(int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]),
             float(r[5])) for r in raw]
    if not rows:
        raise ValueError('candle file %s is empty' % path)
    return rows


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


def check_interval(interval, data_tf_ms):
    """Refuse an interval that is unknown or cannot be built from the data.

    Coarser intervals are built by aggregation, so they must be a whole
    multiple of the data's timeframe (``1M`` always is, for tf <= 1d).
    """
    if interval == MONTH:
        ok = 86400000 % data_tf_ms == 0
    elif interval in INTERVAL_MS:
        length = INTERVAL_MS[interval]
        ok = length >= data_tf_ms and length % data_tf_ms == 0
    else:
        ok = False
    if not ok:
        raise IntervalError('Invalid interval.')


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
