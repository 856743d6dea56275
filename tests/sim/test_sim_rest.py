"""Public REST and load_markets against the real candles, through the real ccxt."""
import time

import pytest
import requests

from backtrader_live.sim import BinanceSimulator
from simutil import make_ccxt

H = 3600000


def test_load_markets_with_options_off(ex):
    m = ex.market('BTC/USDT')
    assert m['spot'] and m['active'] and m['id'] == 'BTCUSDT'
    assert m['precision']['price'] == 0.01 and m['precision']['amount'] == 0.00001
    assert m['limits']['amount']['min'] == 0.00001 and m['limits']['cost']['min'] == 5
    assert 'STOP_LOSS_LIMIT' in m['info']['orderTypes']
    e = ex.market('ETH/BTC')
    assert e['precision']['price'] == 0.00001 and e['limits']['cost']['min'] == 0.0001


def test_default_ccxt_with_all_urls_overridden(sim):
    ex = make_ccxt(sim, default=True)
    markets = ex.load_markets()   # also calls sapi capital/margin (signed) and fapi/dapi
    assert set(markets) == {'BTC/USDT', 'ETH/BTC', 'BTC/USDT:USDT', 'BTC/USD:BTC'}
    assert ex.fetch_balance()['USDT']['free'] == 10000.0


def test_time_is_wall_clock_and_ping(ex, sim):
    assert abs(ex.fetch_time() - time.time() * 1000) < 2000
    assert ex.publicGetPing() == {}
    r = requests.get(sim.base_url + '/api/v3/ping')
    assert int(r.headers['X-MBX-USED-WEIGHT-1M']) >= 1


def test_exchange_info_shape(sim):
    info = requests.get(sim.base_url + '/api/v3/exchangeInfo',
                        params={'symbol': 'BTCUSDT'}).json()
    s = info['symbols'][0]
    assert s['status'] == 'TRADING' and s['isSpotTradingAllowed'] is True
    assert s['permissionSets'] == [['SPOT']] and info['rateLimits']
    assert [f['filterType'] for f in s['filters']] == [
        'PRICE_FILTER', 'LOT_SIZE', 'MARKET_LOT_SIZE', 'NOTIONAL',
        'TRAILING_DELTA']
    many = requests.get(sim.base_url + '/api/v3/exchangeInfo',
                        params={'symbols': '["ETHBTC"]'}).json()
    assert [x['symbol'] for x in many['symbols']] == ['ETHBTC']
    bad = requests.get(sim.base_url + '/api/v3/exchangeInfo', params={'symbol': 'NOPE'})
    assert bad.status_code == 400 and bad.json() == {'code': -1121, 'msg': 'Invalid symbol.'}


def test_klines_end_with_the_forming_bar(ex, sim):
    rows = ex.fetch_ohlcv('BTC/USDT', '1h', limit=5)
    assert len(rows) == 5
    assert rows[-1][0] == sim.now_ms() // H * H
    assert all(b[0] - a[0] == H for a, b in zip(rows, rows[1:]))
    raw = requests.get(sim.base_url + '/api/v3/klines',
                       params={'symbol': 'BTCUSDT', 'interval': '1h', 'limit': 2}).json()
    assert len(raw[0]) == 12 and raw[0][6] == raw[0][0] + H - 1 and raw[0][11] == '0'
    assert isinstance(raw[0][1], str) and isinstance(raw[0][8], int)


def test_fetch_ohlcv_pages_across_a_real_gap(ex, sim):
    """Data row 492 follows an 8-hour outage; page through it 100 bars at a time."""
    feed = sim.clock.feeds['BTCUSDT']
    since = feed.rows[400][0]
    got = []
    while True:
        page = ex.fetch_ohlcv('BTC/USDT', '1h', since=since, limit=100)
        if not page:
            break
        got += page
        since = page[-1][0] + 1
        if len(page) < 100:
            break
    times = [r[0] for r in got]
    assert len(times) == len(set(times)) == 101          # rows 400..500, no dup
    assert times == [r[0] for r in feed.rows[400:501]]   # no bar missing
    steps = [b - a for a, b in zip(times, times[1:])]
    assert steps.count(H) == 99 and max(steps) == 8 * H  # the real gap, only that
    assert got[-1][0] == sim.now_ms() // H * H           # nothing after the clock


def test_klines_end_time_and_nothing_after_the_clock(sim):
    now = sim.now_ms()
    url = sim.base_url + '/api/v3/klines'
    rows = requests.get(url, params={'symbol': 'BTCUSDT', 'interval': '1h',
                                     'startTime': now + H}).json()
    assert rows == []
    rows = requests.get(url, params={'symbol': 'BTCUSDT', 'interval': '1h',
                                     'endTime': now - 10 * H, 'limit': 3}).json()
    assert len(rows) == 3 and rows[-1][0] <= now - 10 * H
    assert len(requests.get(url, params={'symbol': 'BTCUSDT', 'interval': '1h',
                                         'limit': 5000}).json()) == 501


def test_aggregated_intervals(ex, sim):
    four = ex.fetch_ohlcv('BTC/USDT', '4h', limit=10)
    assert all(r[0] % (4 * H) == 0 for r in four)
    since = four[-3][0]
    hours = [h for h in ex.fetch_ohlcv('BTC/USDT', '1h', since=since, limit=4)
             if h[0] < since + 4 * H]
    assert four[-3][1] == hours[0][1] and four[-3][4] == hours[-1][4]
    assert four[-3][2] == max(h[2] for h in hours)
    assert four[-3][5] == pytest.approx(sum(h[5] for h in hours))
    days = ex.fetch_ohlcv('BTC/USDT', '1d', limit=5)
    assert all(r[0] % (24 * H) == 0 for r in days)
    weeks = ex.fetch_ohlcv('BTC/USDT', '1w', limit=2)
    assert all(time.gmtime(r[0] / 1000).tm_wday == 0 for r in weeks)
    months = ex.fetch_ohlcv('BTC/USDT', '1M', limit=2)
    assert all(time.gmtime(r[0] / 1000).tm_mday == 1 for r in months)
    eth = ex.fetch_ohlcv('ETH/BTC', '15m', limit=3)
    assert all(r[0] % 900000 == 0 for r in eth)


def test_unknown_interval_refused(sim):
    r = requests.get(sim.base_url + '/api/v3/klines',
                     params={'symbol': 'BTCUSDT', 'interval': '7m'}, timeout=5)
    assert r.status_code == 400 and r.json()['code'] == -1120


def test_klines_mandatory_and_bad_params(sim):
    url = sim.base_url + '/api/v3/klines'
    r = requests.get(url, params={'symbol': 'BTCUSDT'})
    assert r.status_code == 400 and r.json()['code'] == -1102 and "'interval'" in r.json()['msg']
    r = requests.get(url, params={'interval': '1h'})
    assert r.json()['code'] == -1102
    r = requests.get(url, params={'symbol': 'BTCUSDT', 'interval': '1h', 'limit': 'x'})
    assert r.json()['code'] == -1100


def test_tickers_and_depth(ex, sim):
    t = ex.fetch_ticker('BTC/USDT')
    assert t['last'] == pytest.approx(sim.price('BTC/USDT'), rel=1e-6)
    assert t['bid'] < t['ask']
    assert len(ex.fetch_tickers()) == 2
    book = ex.fetch_order_book('BTC/USDT', limit=5)
    assert len(book['bids']) == 5 and book['asks'][0][0] - book['bids'][0][0] == pytest.approx(0.01)
    price = requests.get(sim.base_url + '/api/v3/ticker/price').json()
    assert {p['symbol'] for p in price} == {'BTCUSDT', 'ETHBTC'}
    one = requests.get(sim.base_url + '/api/v3/ticker/price', params={'symbol': 'ETHBTC'}).json()
    assert one['symbol'] == 'ETHBTC'
    bt = requests.get(sim.base_url + '/api/v3/ticker/bookTicker').json()
    assert len(bt) == 2
    bt1 = requests.get(sim.base_url + '/api/v3/ticker/bookTicker',
                       params={'symbol': 'BTCUSDT'}).json()
    assert float(bt1['askPrice']) > float(bt1['bidPrice'])


def test_listen_key_is_retired(sim):
    r = requests.post(sim.base_url + '/api/v3/userDataStream',
                      headers={'X-MBX-APIKEY': 'x'})
    assert r.status_code == 410 and r.json()['code'] == -1099


def test_data_path_and_market_override(tmp_path):
    import gzip
    import shutil
    from backtrader_live.sim import candles as cd
    p = tmp_path / 'binance_ETHBTC_5m.json.gz'
    shutil.copy(cd.DEFAULT_DATA['ETH/BTC'], p)
    with BinanceSimulator(data=str(p), markets={'ETH/BTC': {'tickSize': '0.000001'}}) as s:
        ex = make_ccxt(s)
        ex.load_markets()
        assert list(ex.markets) == ['ETH/BTC']
        assert ex.market('ETH/BTC')['precision']['price'] == 0.000001
    other = tmp_path / 'SOLUSDT.json.gz'
    with gzip.open(other, 'wt') as fh:
        fh.write('[[0,20.5,21,20,20.7,100],[60000,20.7,21,20.1,20.2,50]]')
    with BinanceSimulator(data={'SOL/USDT': str(other)}, start_index=1) as s:
        r = requests.get(s.base_url + '/api/v3/exchangeInfo').json()['symbols'][0]
        assert r['baseAsset'] == 'SOL' and r['filters'][0]['tickSize'] == '0.00010000'
    with pytest.raises(ValueError):
        BinanceSimulator(data={'XRP/USDT': None})
    with pytest.raises(ValueError):
        BinanceSimulator(data={'XRPUSDT': str(other)})


def test_api_key_permissions_route(sim):
    """GET /sapi/v1/account/apiRestrictions (signed): the key's flags, changed by
    set_key_permissions; an unknown permission is refused by name."""
    ex = make_ccxt(sim)
    first = ex.sapi_get_account_apirestrictions()
    assert (first['enableSpotAndMarginTrading'], first['enableFutures'],
            first['enableWithdrawals'], first['ipRestrict'], first['enableReading']) == (
        True, True, False, False, True)
    sim.set_key_permissions(trading=False, withdrawals=True, ip_restrict=True)
    now = ex.sapi_get_account_apirestrictions()
    assert (now['enableSpotAndMarginTrading'], now['enableWithdrawals'], now['ipRestrict']) \
        == (False, True, True)
    with pytest.raises(TypeError, match='unknown key permission.*withdraw.*accepted'):
        sim.set_key_permissions(withdraw=True)
    assert requests.get(sim.base_url + '/sapi/v1/account/apiRestrictions').status_code == 401
