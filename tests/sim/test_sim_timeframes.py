"""Every interval from any candle file: finer bars sliced along the candle's path,
coarser ones aggregated; served by Binance (spot, USD-M, COIN-M) and Bybit klines
and delivered by the kline streams as the clock moves."""
from decimal import Decimal

import pytest
import requests

from backtrader_live.sim import candles as cd
from backtrader_live.sim.clock import SymbolFeed
from simutil import make_ccxt, make_futures_ccxt

H = 3600000
M = 60000


def dec8(x):
    return Decimal('%.8f' % x)


def rows_1h(n=6):
    """Rising, falling and flat candles with awkward volumes."""
    shapes = [(100.0, 112.5, 95.25, 108.0, 13.37), (108.0, 109.0, 90.0, 91.5, 7.00000001),
              (91.5, 91.5, 91.5, 91.5, 0.0), (91.5, 120.0, 91.0, 119.0, 2.5)]
    return [(i * H,) + shapes[i % len(shapes)] for i in range(n)]


def assert_tiles(parent, children):
    """Children of one parent give back its OHLCV exactly (at 8 decimals)."""
    assert children[0][0] == parent[0]
    assert children[0][cd.O] == parent[cd.O] and children[-1][cd.C] == parent[cd.C]
    assert max(r[cd.H] for r in children) == parent[cd.H]
    assert min(r[cd.L] for r in children) == parent[cd.L]
    assert sum(dec8(r[cd.V]) for r in children) == dec8(parent[cd.V])
    for r in children:
        assert r[cd.L] <= min(r[cd.O], r[cd.C]) <= max(r[cd.O], r[cd.C]) <= r[cd.H]


@pytest.mark.parametrize('interval,per', [('1m', 60), ('3m', 20), ('5m', 12), ('15m', 4),
                                          ('30m', 2), ('1s', 3600)])
def test_finer_bars_tile_each_candle_exactly(interval, per):
    rows = rows_1h()
    feed = SymbolFeed('XY', rows, 0, 0)
    now = feed.ends[3]  # four candles closed
    for k in range(4):
        parent = feed.rows[k]
        fine, closed = feed.bars(interval, now, start=parent[0], limit=per)
        assert closed and len(fine) == per
        assert [r[0] for r in fine] == [parent[0] + j * cd.INTERVAL_MS[interval]
                                        for j in range(per)]
        assert_tiles(parent, fine)


def test_finer_bars_follow_the_clock_path():
    feed = SymbolFeed('XY', rows_1h(), 0, 0)
    now = feed.ends[1]
    fine, _ = feed.bars('1m', now, start=0, limit=120)
    for r in fine:  # every 1m open is the price the clock had at that moment
        assert r[cd.O] == pytest.approx(feed.price(r[0]))
    # the rising candle reaches its high a third of the way in, its low at two thirds
    assert fine[19][cd.C] == 112.5 and fine[39][cd.C] == 95.25


def test_finer_bars_while_a_candle_forms():
    feed = SymbolFeed('XY', rows_1h(), 0, 0)
    now = 90 * M + 30000  # 1:30:30, in the falling candle
    fine, closed = feed.bars('1m', now, start=H)
    assert not closed and len(fine) == 31 and fine[-1][0] == 90 * M
    assert fine[-1][cd.C] == pytest.approx(feed.price(now))
    newest, _ = feed.bars('1m', now, limit=5)
    assert [r[0] for r in newest] == [r[0] for r in fine[-5:]] and newest == fine[-5:]


def test_non_multiple_interval_and_its_aggregate_agree():
    """3m on 5m data: buckets straddle candles, and 15m built from 3m equals 15m
    aggregated from the 5m candles."""
    rows = [(i * 300000, 10.0 + i, 12.0 + i, 9.0 + i, 11.0 + i, 1.5) for i in range(12)]
    feed = SymbolFeed('XY', rows, 0, 0)
    now = feed.ends[-1]
    three, _ = feed.bars('3m', now, start=0)
    fifteen, _ = feed.bars('15m', now, start=0)
    assert len(three) == 20 and len(fifteen) == 4
    for q in range(4):
        assert_tiles(fifteen[q], three[5 * q:5 * q + 5])


def test_gaps_in_the_data_stay_gaps():
    rows = rows_1h(4)
    rows = rows[:2] + [(r[0] + 5 * H,) + r[1:] for r in rows[2:]]  # 5 h without data
    feed = SymbolFeed('XY', rows, 0, 0)
    now = feed.ends[-1]
    fine, _ = feed.bars('30m', now, start=0)
    assert [r[0] // M for r in fine] == [0, 30, 60, 90, 420, 450, 480, 510]
    newest, _ = feed.bars('30m', now, limit=6)
    assert newest == fine[-6:]


def test_spot_rest_serves_finer_klines(sim):
    ex = make_ccxt(sim)
    hours = ex.fetch_ohlcv('BTC/USDT', '1h', limit=3)
    minutes = ex.fetch_ohlcv('BTC/USDT', '1m', since=hours[0][0], limit=60)
    assert [r[0] for r in minutes] == [hours[0][0] + j * M for j in range(60)]
    assert_tiles(hours[0], minutes)
    last = ex.fetch_ohlcv('BTC/USDT', '1m', limit=3)
    assert last[-1][0] == sim.now_ms() // M * M
    one_s = ex.fetch_ohlcv('BTC/USDT', '1s', limit=10)
    assert len(one_s) == 10 and one_s[-1][0] == sim.now_ms() // 1000 * 1000
    eth5 = ex.fetch_ohlcv('ETH/BTC', '5m', limit=3)
    eth1 = ex.fetch_ohlcv('ETH/BTC', '1m', since=eth5[0][0], limit=5)
    assert_tiles(eth5[0], eth1)


@pytest.mark.parametrize('inverse', [False, True], ids=['usdm', 'coinm'])
def test_futures_rest_serves_finer_klines(sim, inverse):
    ex = make_futures_ccxt(sim, inverse=inverse)
    ex.load_markets()
    symbol = 'BTC/USD:BTC' if inverse else 'BTC/USDT:USDT'
    hour = ex.fetch_ohlcv(symbol, '1h', limit=2)[0]
    quarter = ex.fetch_ohlcv(symbol, '15m', since=hour[0], limit=4)
    assert [r[0] for r in quarter] == [hour[0] + j * 15 * M for j in range(4)]
    assert quarter[0][1] == hour[1] and quarter[-1][4] == hour[4]
    assert max(r[2] for r in quarter) == hour[2] and min(r[3] for r in quarter) == hour[3]


def test_bybit_kline_endpoint_serves_finer_bars(tmp_path):
    from backtrader_live.sim import BybitSimulator
    with BybitSimulator(start_index=100) as s:
        for cat in ('spot', 'linear', 'inverse'):
            url = s.base_url + '/v5/market/kline'
            symbol = 'BTCUSD' if cat == 'inverse' else 'BTCUSDT'
            hour = requests.get(url, params={'category': cat, 'symbol': symbol,
                                             'interval': '60', 'limit': 3},
                                timeout=5).json()['result']['list'][-1]  # newest first
            start = int(hour[0])
            body = requests.get(url, params={'category': cat, 'symbol': symbol,
                                             'interval': '5', 'start': start,
                                             'limit': 12}, timeout=5).json()
            five = body['result']['list']
            assert body['retCode'] == 0 and len(five) == 12
            five = [[int(r[0])] + [float(x) for x in r[1:6]] for r in reversed(five)]
            parent = (start,) + tuple(float(x) for x in hour[1:6])
            assert_tiles(parent, five)


def test_finer_kline_stream_delivers_every_closed_bar(flat, ws_factory):
    sim, _ = flat  # the clock on a bar open: one step closes exactly four 15m bars
    c = ws_factory(sim.ws_url + '/ws/btcusdt@kline_15m')
    sim.wait_subscribed('btcusdt@kline_15m')
    sim.step()
    finals = [m['k'] for m in c.drain() if m.get('e') == 'kline' and m['k']['x']]
    assert len(finals) == 4 and all(k['i'] == '15m' for k in finals)
    assert [k['t'] for k in finals] == [finals[0]['t'] + j * 15 * M for j in range(4)]
    hour = make_ccxt(sim).fetch_ohlcv('BTC/USDT', '1h', limit=2)[0]
    assert finals[0]['t'] == hour[0]
    assert Decimal(finals[0]['o']) == dec8(hour[1]) and Decimal(finals[-1]['c']) == dec8(hour[4])
    assert sum(Decimal(k['v']) for k in finals) == dec8(hour[5])
