"""Bybit v5 public market data (REST and WebSocket) on spot, linear and inverse,
through the real ccxt and websocket-client.

Synthetic path (simutil.write_data): flat at 100, then every hourly bar
100 -> 110 -> 90 -> 100 (volume 10); the clock starts on a bar open.
"""
from decimal import Decimal as D

import ccxt
import pytest
import requests

from simutil import KEY, SECRET, H
from venues import BYBIT, SYMBOL_ID
from venues import VENUES as _VENUES

# The one venue table (tests/venues.py): Bybit's category, symbol, symbol id.
VENUES = [(_VENUES[v][1], _VENUES[v][2], SYMBOL_ID[v]) for v in BYBIT]
SPOT_TICKER = {'symbol', 'bid1Price', 'bid1Size', 'ask1Price', 'ask1Size', 'lastPrice',
               'prevPrice24h', 'price24hPcnt', 'highPrice24h', 'lowPrice24h',
               'turnover24h', 'volume24h', 'usdIndexPrice'}
CONTRACT_TICKER = (SPOT_TICKER - {'usdIndexPrice'}) | {
    'indexPrice', 'markPrice', 'prevPrice1h', 'openInterest', 'openInterestValue',
    'fundingRate', 'nextFundingTime', 'predictedDeliveryPrice', 'basisRate',
    'deliveryFeeRate', 'deliveryTime', 'basis'}


def get(s, path, **params):
    r = requests.get(s.base_url + path, params=params, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def test_plain_ccxt_loads_markets_unmodified(bybit):
    """Only the hosts changed: ccxt asks for option markets and coin info too."""
    s, _ = bybit
    ex = ccxt.bybit({'apiKey': KEY, 'secret': SECRET, 'enableRateLimit': False})
    for k in ex.urls['api']:
        ex.urls['api'][k] = s.base_url
    ex.load_markets()
    assert {'BTC/USDT', 'BTC/USDT:USDT', 'BTC/USD:BTC'} <= set(ex.markets)
    r = get(s, '/v5/market/instruments-info', category='option', baseCoin='BTC')
    assert r['retCode'] == 0 and r['result']['list'] == []
    assert get(s, '/v5/market/tickers', category='option')['result']['list'] == []


@pytest.mark.parametrize('cat,symbol,sid', VENUES)
def test_tickers_answer_every_documented_field(bybit, cat, symbol, sid):
    s, ex = bybit
    s.advance(1200)                                   # 20 min into a 100->110 bar
    r = get(s, '/v5/market/tickers', category=cat, symbol=sid)
    assert r['retCode'] == 0, r
    [item] = r['result']['list']
    assert set(item) >= (SPOT_TICKER if cat == 'spot' else CONTRACT_TICKER)
    t = ex.fetch_ticker(symbol)
    assert t['last'] == 110 and t['bid'] == 110 and t['ask'] > 110
    assert t['high'] == 110 and t['low'] == 100 and t['percentage'] == pytest.approx(10)
    assert t['baseVolume'] > 0 and t['quoteVolume'] > 0
    assert symbol in ex.fetch_tickers([symbol])
    if cat != 'spot':
        assert t['markPrice'] == 110 and item['fundingRate'] == '0.00010000'
        assert int(item['nextFundingTime']) % (8 * H) == 0


@pytest.mark.parametrize('cat,symbol,sid', VENUES)
def test_orderbook_is_the_book_takers_walk(bybit, cat, symbol, sid):
    s, ex = bybit
    book = ex.fetch_order_book(symbol, 5)
    tick = D(ex.market(symbol)['info']['priceFilter']['tickSize'])
    bids = [D(str(p)) for p, _ in book['bids']]
    asks = [D(str(p)) for p, _ in book['asks']]
    assert len(bids) == len(asks) == 5 and asks[0] - bids[0] == tick
    assert all(a - b == tick for a, b in zip(asks[1:], asks))
    assert all(a - b == tick for a, b in zip(bids, bids[1:]))
    level = book['asks'][0][1]
    o = ex.create_order(symbol, 'market', 'buy', level * 2,
                        params={'marketUnit': 'baseCoin'} if cat == 'spot' else {})
    fills = ex.fetch_my_trades(symbol)
    assert sorted(f['price'] for f in fills if f['order'] == o['id']) == \
        [float(asks[0]), float(asks[1])]
    r = get(s, '/v5/market/orderbook', category=cat, symbol=sid)
    assert len(r['result']['b']) == (1 if cat == 'spot' else 25)   # Bybit's default limits
    bad = get(s, '/v5/market/orderbook', category=cat, symbol=sid, limit=100000)
    assert bad['retCode'] == 10001 and 'limit' in bad['retMsg']


@pytest.mark.parametrize('cat,symbol,sid', VENUES)
def test_recent_trades_follow_the_price_path(bybit, cat, symbol, sid):
    s, ex = bybit
    s.advance(2 * 900)                                # two quarter-bar prints
    trades = ex.fetch_trades(symbol, limit=3)
    assert [t['timestamp'] for t in trades] == [s.now_ms() - 1800000, s.now_ms() - 900000,
                                                s.now_ms()]
    # on the intrabar path 100 -(20 min)-> 110 -(20 min)-> 90: up, then down
    assert [t['price'] for t in trades] == [100, 107.5, 100]
    assert [t['side'] for t in trades[1:]] == ['buy', 'sell']
    r = get(s, '/v5/market/recent-trade', category=cat, symbol=sid, limit=2)
    times = [int(i['time']) for i in r['result']['list']]
    assert times == sorted(times, reverse=True)             # newest first, as Bybit


@pytest.mark.parametrize('cat,symbol', [('linear', 'BTC/USDT:USDT'), ('inverse', 'BTC/USD:BTC')])
def test_funding_history_and_mark_index_klines(bybit, cat, symbol):
    s, ex = bybit
    s.step(9)
    rates = ex.fetch_funding_rate_history(symbol)
    assert rates and all(r['fundingRate'] == 0.0001 and r['timestamp'] % (8 * H) == 0
                         for r in rates)
    mark = ex.fetch_mark_ohlcv(symbol, '1h', limit=3)
    trade = ex.fetch_ohlcv(symbol, '1h', limit=3)
    assert [m[:5] for m in mark] == [t[:5] for t in trade]
    index = ex.fetch_index_ohlcv(symbol, '1h', limit=3)
    assert [m[:5] for m in index] == [t[:5] for t in trade]


@pytest.mark.parametrize('cat,symbol,sid', VENUES)
def test_streams_tickers_orderbook_public_trades(bybit, ws_factory, cat, symbol, sid):
    s, ex = bybit
    c = ws_factory(s.ws_url + '/v5/public/' + cat)
    c.send({'op': 'subscribe', 'req_id': 'a',
            'args': ['tickers.' + sid, 'orderbook.50.' + sid, 'publicTrade.' + sid]})
    assert c.recv()['success'] is True
    first = c.drain()
    [tick] = [m for m in first if m['topic'] == 'tickers.' + sid]
    [snap] = [m for m in first if m['topic'] == 'orderbook.50.' + sid]
    assert tick['type'] == 'snapshot' and tick['data']['lastPrice'] == '100.00000000'
    assert snap['type'] == 'snapshot' and len(snap['data']['b']) == 50
    book = {side: dict(snap['data'][side]) for side in ('b', 'a')}
    s.advance(1200)
    msgs = c.drain()
    deltas = [m for m in msgs if m['topic'] == 'orderbook.50.' + sid]
    assert [m['type'] for m in deltas] == ['delta']
    for side in ('b', 'a'):                            # apply as the docs say
        for p, q in deltas[0]['data'][side]:
            if q == '0':
                del book[side][p]
            else:
                book[side][p] = q
    rest = get(s, '/v5/market/orderbook', category=cat, symbol=sid, limit=50)['result']
    assert book == {side: dict(rest[side]) for side in ('b', 'a')}
    assert deltas[0]['data']['u'] == snap['data']['u'] + 1
    [tick2] = [m for m in msgs if m['topic'] == 'tickers.' + sid]
    assert tick2['type'] == ('snapshot' if cat == 'spot' else 'delta')
    assert tick2['data']['lastPrice'] == '110.00000000'
    if cat != 'spot':                                  # a delta: only what changed
        assert 'fundingRate' not in tick2['data']
    [trades] = [m for m in msgs if m['topic'] == 'publicTrade.' + sid]
    rest_trades = get(s, '/v5/market/recent-trade', category=cat, symbol=sid,
                      limit=1)['result']['list']
    assert trades['data'][-1]['i'] == rest_trades[0]['execId']
    assert trades['data'][-1]['p'] == rest_trades[0]['price']
    assert ('L' in trades['data'][0]) == (cat != 'spot')
    c.send({'op': 'subscribe', 'args': ['orderbook.7.' + sid]})
    assert c.recv()['success'] is False                 # not a depth Bybit serves
