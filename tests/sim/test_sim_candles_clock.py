"""Candle files, interval arithmetic and the market clock (no server)."""
import calendar
import gzip
import json
import os

import pytest

from backtrader_live.sim import candles as cd
from backtrader_live.sim.clock import MarketClock, SymbolFeed

H = 3600000
# The project's shared data folder sits beside the repository (as in CI); a
# clone elsewhere has only the packaged copy, so the comparison is skipped.
SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'shared',
                      'data', 'binance_BTCUSDT_1h.json')


def utc(*args):
    return calendar.timegm(args + (0,) * (6 - len(args))) * 1000


def test_packaged_data_is_the_real_file():
    if not os.path.exists(SHARED):
        pytest.skip('../shared/data is not beside this clone')
    rows = cd.load_candles(cd.DEFAULT_DATA['BTC/USDT'])
    with open(SHARED) as fh:
        raw = json.load(fh)
    assert len(rows) == len(raw) == 34208
    assert rows[0] == tuple([raw[0][0]] + [float(x) for x in raw[0][1:]])
    assert cd.detect_timeframe(rows) == H
    eth = cd.load_candles(cd.DEFAULT_DATA['ETH/BTC'])
    assert cd.detect_timeframe(eth) == 300000 and len(eth) == 5760


def test_load_plain_json_and_empty(tmp_path):
    p = tmp_path / 'x.json'
    p.write_text('[[0,1,2,0.5,1.5,10],[60000,1.5,2,1,1,3]]')
    assert cd.load_candles(str(p))[1] == (60000, 1.5, 2.0, 1.0, 1.0, 3.0)
    e = tmp_path / 'e.json.gz'
    with gzip.open(e, 'wt') as fh:
        fh.write('[]')
    with pytest.raises(ValueError):
        cd.load_candles(str(e))
    with pytest.raises(ValueError):
        cd.detect_timeframe([(0, 1, 1, 1, 1, 1)])


@pytest.mark.parametrize('interval,ts,start', [
    ('1d', utc(2021, 3, 4, 17, 5), utc(2021, 3, 4)),
    ('1w', utc(2021, 3, 4, 17, 5), utc(2021, 3, 1)),        # a Thursday -> Monday
    ('1w', utc(2021, 3, 1), utc(2021, 3, 1)),
    ('1M', utc(2021, 3, 31, 23), utc(2021, 3, 1)),
    ('4h', utc(2021, 3, 4, 17, 5), utc(2021, 3, 4, 16)),
    ('1h', utc(2021, 3, 4, 17, 5), utc(2021, 3, 4, 17)),
])
def test_bucket_start_utc_aligned(interval, ts, start):
    assert cd.bucket_start(ts, interval) == start


def test_bucket_end_months_and_fixed():
    assert cd.bucket_end(utc(2021, 12, 1), '1M') == utc(2022, 1, 1)
    assert cd.bucket_end(utc(2021, 2, 1), '1M') == utc(2021, 3, 1)
    assert cd.bucket_end(utc(2021, 2, 1), '1d') == utc(2021, 2, 2)


@pytest.mark.parametrize('interval', ['1h', '2h', '4h', '6h', '8h', '12h', '1d', '3d', '1w', '1M'])
def test_coarser_intervals_accepted(interval):
    cd.check_interval(interval, H)


@pytest.mark.parametrize('interval', ['7m', 'x', '1y', ''])
def test_unknown_intervals_refused(interval):
    with pytest.raises(cd.IntervalError, match='Invalid interval.'):
        cd.check_interval(interval, H)


@pytest.mark.parametrize('interval', ['1s', '1m', '3m', '5m', '15m', '30m'])
def test_finer_intervals_accepted_and_sliced(interval):
    cd.check_interval(interval, H)
    assert not cd.aggregates(interval, H)


def test_aggregate_ohlcv():
    rows = [(utc(2021, 1, 1, h), 10 + h, 20 + h, 5 + h, 11 + h, 1.0) for h in range(6)]
    out = cd.aggregate(rows, '4h')
    assert out == [(utc(2021, 1, 1), 10, 23, 5, 14, 4.0), (utc(2021, 1, 1, 4), 14, 25, 9, 16, 2.0)]
    assert cd.interval_for_ms(H) == '1h' and cd.interval_for_ms(7) is None


def make_feed(now, start_index=5, n=10, tf=H):
    rows = [(1000 * tf + i * tf, 100.0, 110.0, 90.0, 105.0, 10.0) for i in range(n)]
    return SymbolFeed('XY', rows, start_index, now)


def test_redating_puts_start_index_forming_now():
    now = utc(2024, 5, 1, 13, 20)
    feed = make_feed(now)
    assert feed.offset % H == 0
    assert feed.rows[5][0] == utc(2024, 5, 1, 13)
    assert feed.index_at(now) == 5
    with pytest.raises(ValueError):
        make_feed(now, start_index=10)


def test_intrabar_path_rising_bar():
    now = utc(2024, 5, 1, 13)
    feed = make_feed(now)
    t = feed.rows[5][0]
    assert feed.price(t) == 100.0
    assert feed.price(t + H // 3) == pytest.approx(110.0)
    assert feed.price(t + 2 * H // 3) == pytest.approx(90.0, abs=1e-3)
    assert feed.path_price(5, t + H) == 105.0
    part = feed.partial(5, t + H // 2)
    assert part[2] == pytest.approx(110.0) and part[3] == pytest.approx(100.0)
    assert part[5] == pytest.approx(5.0)


def test_falling_bar_goes_low_first():
    rows = [(0, 100.0, 110.0, 90.0, 95.0, 1.0), (H, 95.0, 96.0, 94.0, 95.5, 1.0)]
    feed = SymbolFeed('XY', rows, 0, 0)
    assert feed.price(H // 3) == pytest.approx(90.0)


def test_gap_price_is_last_close_and_segments_skip_it():
    rows = [(0, 1.0, 2.0, 0.5, 1.5, 1.0), (H, 1.5, 2.0, 1.0, 1.2, 1.0),
            (4 * H, 3.0, 3.0, 3.0, 3.0, 1.0)]
    feed = SymbolFeed('XY', rows, 0, 0)
    assert feed.index_at(3 * H) is None
    assert feed.price(3 * H) == 1.2
    segs = feed.segments(H + H // 2, 4 * H + H // 2)
    assert [s.index for s in segs] == [1, 2]
    assert segs[0].closed and not segs[1].closed


def test_clock_steps_and_finishes(caplog):
    now = utc(2024, 5, 1, 13, 30)
    clock = MarketClock({'XY': make_feed(now, start_index=8)}, now)
    assert clock.next_close() == utc(2024, 5, 1, 14)
    segs = clock.advance_to(clock.next_close())
    assert segs[-1].closed and clock.now == utc(2024, 5, 1, 14)
    assert clock.advance_to(clock.now) == []
    with caplog.at_level('INFO'):
        clock.advance_to(clock.now + 10 * H)
    assert clock.finished and clock.now == utc(2024, 5, 1, 15)
    assert 'end of the data' in caplog.text
    assert clock.next_close() is None


def test_bars_aggregated_and_closed_between():
    now = utc(2024, 5, 1, 5, 30)
    rows = [(i * H, float(i), i + 1.0, i - 0.5, i + 0.5, 1.0) for i in range(48)]
    feed = SymbolFeed('XY', rows, 5, now)
    bars, closed = feed.bars('4h', now)
    assert [b[0] for b in bars] == [utc(2024, 5, 1), utc(2024, 5, 1, 4)] and not closed
    assert bars[0][1:] == (0.0, 4.0, -0.5, 3.5, 4.0)
    assert bars[1][5] == pytest.approx(1.5)
    assert feed.bars('4h', now, start=utc(2024, 5, 2)) == ([], True)
    assert feed.bars('1h', now, start=utc(2024, 5, 2)) == ([], True)
    later = utc(2024, 5, 1, 12)
    closed = feed.closed_between('4h', now, later)
    assert [r[0] for r in closed] == [utc(2024, 5, 1, 4), utc(2024, 5, 1, 8)]
    assert feed.bar_end(utc(2024, 5, 1, 4), '4h') == utc(2024, 5, 1, 8)
    assert feed.bars('1h', utc(2024, 4, 30)) == ([], True)


@pytest.mark.parametrize('name', ['binance', 'bybit'])
def test_the_market_clock_can_start_at_a_given_instant(name):
    """start= pins where the clock starts (and so where 4h and 1d bars fall),
    whatever the hour the test runs; the signing clock stays the wall clock."""
    import datetime

    from backtrader_live.sim import SIMULATORS
    cls = SIMULATORS[name]
    start = datetime.datetime(2031, 1, 6, 0, 20)        # naive: UTC
    sim = cls(start=start)      # not started: no server, no thread
    feed = sim.clock.feeds[sim.symbols['BTC/USDT']]
    assert sim.clock.now == utc(2031, 1, 6, 0, 20)
    assert feed.times[500] == utc(2031, 1, 6, 0)        # bar start_index is the forming one
    assert cls(start=utc(2031, 1, 6, 3, 59)).clock.feeds[feed.symbol].times[500] == \
        utc(2031, 1, 6, 3)
    for bad in ('tomorrow', -5, True):
        with pytest.raises(ValueError, match='start must be None .now., epoch milliseconds '
                                             'or a datetime'):
            cls(start=bad)
