"""Binance public market data beyond klines (spot, USD-M, COIN-M), the book and
ticker streams, and the futures account/stream fixes, checked against the shapes
of Binance's published API docs."""
from decimal import Decimal

import pytest
import requests

from simutil import KEY, make_ccxt, make_futures_ccxt

M = 60000
VENUES = {'spot': ('/api/v3', 'BTCUSDT', ''), 'fapi': ('/fapi/v1', 'BTCUSDT', '/market'),
          'dapi': ('/dapi/v1', 'BTCUSD_PERP', '/dapi')}


def get(sim, path, **params):
    r = requests.get(sim.base_url + path, params=params, timeout=5,
                     headers={'X-MBX-APIKEY': KEY})
    return r.status_code, r.json()


def test_avg_price_is_the_volume_weighted_last_five_minutes(sim):
    status, body = get(sim, '/api/v3/avgPrice', symbol='BTCUSDT')
    assert status == 200 and body['mins'] == 5 and body['closeTime'] < sim.now_ms()
    minutes = make_ccxt(sim).fetch_ohlcv('BTC/USDT', '1m', limit=5)
    vwap = sum(r[5] * r[4] for r in minutes) / sum(r[5] for r in minutes)
    assert float(body['price']) == pytest.approx(vwap, rel=1e-9)


@pytest.mark.parametrize('venue', list(VENUES))
def test_trades_and_agg_trades_page_consistently(sim, venue):
    prefix, symbol, _ = VENUES[venue]
    _, recent = get(sim, prefix + '/trades', symbol=symbol, limit=5)
    assert len(recent) == 5 and recent[-1]['time'] < sim.now_ms()
    assert [t['id'] for t in recent] == list(range(recent[0]['id'], recent[0]['id'] + 5))
    assert set(recent[0]) >= {'id', 'price', 'qty', 'time', 'isBuyerMaker'}
    _, old = get(sim, prefix + '/historicalTrades', symbol=symbol, fromId=recent[0]['id'],
                 limit=3)
    assert old == recent[:3]
    _, agg = get(sim, prefix + '/aggTrades', symbol=symbol, startTime=recent[1]['time'],
                 limit=2)
    assert [(a['a'], a['p'], a['q'], a['T']) for a in agg] == \
        [(t['id'], t['price'], t['qty'], t['time']) for t in recent[1:3]]
    if venue == 'dapi':  # COIN-M counts contracts of 100 USD; baseQty is the coins
        t = recent[0]
        assert t['qty'] == '%d' % max(1, int(float(t['baseQty']) * float(t['price']) / 100))
        assert 'quoteQty' not in t
    # one print per minute: the close and the volume of that minute's slice
    minute = make_ccxt(sim).fetch_ohlcv('BTC/USDT', '1m', since=recent[0]['time'] // M * M,
                                        limit=1)[0]
    assert Decimal(recent[0]['price']) == Decimal('%.8f' % minute[4])
    coins = recent[0]['baseQty'] if venue == 'dapi' else recent[0]['qty']
    assert Decimal(coins) == Decimal('%.8f' % minute[5])
    status, body = get(sim, prefix + '/aggTrades', symbol=symbol, startTime=0,
                       endTime=2 * 3600000)
    assert status == 400 and body['code'] == -1127


def test_order_test_validates_and_places_nothing(sim):
    ex = make_ccxt(sim)
    ex.load_markets()
    price = ex.fetch_ticker('BTC/USDT')['last']
    ok = ex.private_post_order_test({'symbol': 'BTCUSDT', 'side': 'BUY', 'type': 'LIMIT',
                                     'timeInForce': 'GTC', 'quantity': '0.01',
                                     'price': '%.2f' % (price * 0.9)})
    assert ok == {}
    rates = ex.private_post_order_test({'symbol': 'BTCUSDT', 'side': 'BUY', 'type': 'MARKET',
                                        'quantity': '0.01', 'computeCommissionRates': 'true'})
    assert rates['standardCommissionForOrder'] == {'maker': '0.00100000', 'taker': '0.00100000'}
    with pytest.raises(Exception, match='LOT_SIZE'):
        ex.private_post_order_test({'symbol': 'BTCUSDT', 'side': 'BUY', 'type': 'LIMIT',
                                    'timeInForce': 'GTC', 'quantity': '0.000001',
                                    'price': '%.2f' % price})
    with pytest.raises(Exception, match='insufficient balance'):
        ex.private_post_order_test({'symbol': 'BTCUSDT', 'side': 'BUY', 'type': 'MARKET',
                                    'quantity': '100'})
    assert sim.orders() == [] and ex.fetch_balance()['USDT']['free'] == 10000.0


@pytest.mark.parametrize('venue', ['fapi', 'dapi'])
def test_futures_depth_and_24h_ticker(sim, venue):
    prefix, symbol, _ = VENUES[venue]
    status, book = get(sim, prefix + '/depth', symbol=symbol, limit=5)
    assert status == 200 and len(book['bids']) == len(book['asks']) == 5
    assert book['lastUpdateId'] == book['E'] == book['T'] == sim.now_ms()
    assert Decimal(book['asks'][0][0]) - Decimal(book['bids'][0][0]) == Decimal('0.1')
    assert get(sim, prefix + '/depth', symbol=symbol, limit=7)[1]['code'] == -1100
    _, ticker = get(sim, prefix + '/ticker/24hr', symbol=symbol)
    if venue == 'dapi':  # COIN-M answers an array even for one symbol
        assert isinstance(ticker, list) and ticker[0]['pair'] == 'BTCUSD'
        ticker = ticker[0]
        assert 'baseVolume' in ticker
    assert ticker['symbol'] == symbol and float(ticker['lowPrice']) <= float(
        ticker['lastPrice']) <= float(ticker['highPrice'])


def test_premium_index_and_tickers_shapes_per_venue(sim):
    _, one = get(sim, '/fapi/v1/premiumIndex', symbol='BTCUSDT')
    _, every = get(sim, '/fapi/v1/premiumIndex')
    assert isinstance(one, dict) and isinstance(every, list)
    _, coin = get(sim, '/dapi/v1/premiumIndex', symbol='BTCUSD_PERP')
    assert isinstance(coin, list) and coin[0]['pair'] == 'BTCUSD'
    _, price = get(sim, '/dapi/v1/ticker/price', symbol='BTCUSD_PERP')
    assert isinstance(price, list) and price[0]['ps'] == 'BTCUSD'
    _, top = get(sim, '/dapi/v1/ticker/bookTicker', symbol='BTCUSD_PERP')
    assert isinstance(top, list) and top[0]['pair'] == 'BTCUSD'
    _, top = get(sim, '/fapi/v1/ticker/bookTicker', symbol='BTCUSDT')
    assert isinstance(top, dict) and top['lastUpdateId'] == sim.now_ms()


@pytest.mark.parametrize('venue', ['fapi', 'dapi'])
def test_funding_rate_history(sim, venue):
    prefix, symbol, _ = VENUES[venue]
    _, rows = get(sim, prefix + '/fundingRate', symbol=symbol, limit=3)
    assert len(rows) == 3 and all(r['fundingTime'] % (8 * 3600000) == 0 for r in rows)
    assert [r['fundingTime'] for r in rows] == sorted(r['fundingTime'] for r in rows)
    assert rows[-1]['fundingTime'] <= sim.now_ms() and rows[0]['fundingRate'] == '0.00010000'


def ws_subscribe(ws_factory, sim, path, names):
    c = ws_factory(sim.ws_url + path + '/stream')
    c.send({'method': 'SUBSCRIBE', 'params': names, 'id': 1})
    assert c.recv() == {'result': None, 'id': 1}
    return c


@pytest.mark.parametrize('venue', list(VENUES))
def test_ticker_and_book_streams(sim, ws_factory, venue):
    prefix, symbol, path = VENUES[venue]
    low = symbol.lower()
    names = [low + '@ticker', low + '@miniTicker', low + '@bookTicker', low + '@depth5',
             low + '@depth@100ms']
    c = ws_subscribe(ws_factory, sim, path, names)
    _, snapshot = get(sim, prefix + '/depth', symbol=symbol, limit=1000)
    sim.step()
    msgs = {m['stream']: m['data'] for m in c.drain()}
    assert set(msgs) == set(names)
    ticker, mini, top = msgs[low + '@ticker'], msgs[low + '@miniTicker'], msgs[low + '@bookTicker']
    assert ticker['e'] == '24hrTicker' and mini['e'] == '24hrMiniTicker'
    assert ticker['c'] == mini['c'] and ticker['s'] == symbol
    _, rest_top = get(sim, prefix + '/ticker/bookTicker', symbol=symbol)
    rest_top = rest_top[0] if isinstance(rest_top, list) else rest_top
    assert (top['b'], top['a']) == (rest_top['bidPrice'], rest_top['askPrice'])
    if venue == 'spot':
        assert 'e' not in top and set(msgs[low + '@depth5']) == {'lastUpdateId', 'bids', 'asks'}
    else:  # futures payloads carry the event type, event and transaction times
        assert top['e'] == 'bookTicker' and top['E'] == top['T'] == sim.now_ms()
        assert msgs[low + '@depth5']['e'] == 'depthUpdate' and len(msgs[low + '@depth5']['b']) == 5
    # the documented local-book procedure: the snapshot plus the diff is the new book
    diff = msgs[low + '@depth@100ms']
    first_ok = (diff['U'] <= snapshot['lastUpdateId'] + 1 <= diff['u'] if venue == 'spot'
                else diff['U'] <= snapshot['lastUpdateId'] <= diff['u'])
    assert first_ok and diff['u'] == sim.now_ms()
    book = {side: {p: q for p, q in snapshot[side]} for side in ('bids', 'asks')}
    for side, key in (('bids', 'b'), ('asks', 'a')):
        for p, q in diff[key]:
            if Decimal(q) == 0:
                book[side].pop(p, None)
            else:
                book[side][p] = q
    _, now_book = get(sim, prefix + '/depth', symbol=symbol, limit=1000)
    for side in ('bids', 'asks'):
        assert book[side] == {p: q for p, q in now_book[side]}


@pytest.mark.parametrize('venue', ['fapi', 'dapi'])
def test_continuous_kline_stream(request, ws_factory, venue):
    # the clock on a bar open: one step closes exactly four 15m bars
    sim, _ = request.getfixturevalue({'fapi': 'fut', 'dapi': 'coinm'}[venue])
    _, symbol, path = VENUES[venue]
    pair = symbol.split('_')[0].lower()
    name = pair + '_perpetual@continuousKline_15m'
    c = ws_subscribe(ws_factory, sim, path, [name])
    sim.step()
    events = [m['data'] for m in c.drain()]
    finals = [e for e in events if e['k']['x']]
    assert len(finals) == 4 and finals[0]['e'] == 'continuous_kline'
    assert finals[0]['ps'] == pair.upper() and finals[0]['ct'] == 'PERPETUAL'
    assert finals[0]['k']['i'] == '15m' and 's' not in finals[0]['k']
    c.send({'method': 'SUBSCRIBE', 'params': [pair + '_current_quarter@continuousKline_1m'],
            'id': 2})
    assert 'error' in c.recv()


def test_usdm_account_has_available_balance_and_max_withdraw(fut):
    sim, ex = fut
    account = ex.fapiPrivateV3GetAccount()
    assert account['availableBalance'] == account['maxWithdrawAmount'] == '10000.00000000'
    assert 'totalAvailableBalance' not in account and account['totalWalletBalance']
    ex.create_order('BTC/USDT:USDT', 'market', 'buy', 0.1)
    for version in ('V2', 'V3'):
        account = getattr(ex, 'fapiPrivate%sGetAccount' % version)()
        assert Decimal(account['availableBalance']) < Decimal('10000')
        assert account['positions'][0]['isolated'] is False
        balance = getattr(ex, 'fapiPrivate%sGetBalance' % version)()
        assert balance[0]['availableBalance'] == account['availableBalance']
        assert balance[0]['maxWithdrawAmount'] == account['maxWithdrawAmount']


def test_coinm_account_positions_say_isolated(coinm):
    sim, ex = coinm
    ex.create_order('BTC/USD:BTC', 'market', 'buy', 1)
    positions = ex.dapiPrivateGetAccount()['positions']
    assert positions and positions[0]['isolated'] is False


@pytest.mark.parametrize('side', ['LONG', 'SHORT'])
def test_position_side_on_a_one_way_account_is_refused(fut, side):
    sim, ex = fut
    with pytest.raises(Exception, match='-4061'):
        ex.fapiPrivatePostOrder({'symbol': 'BTCUSDT', 'side': 'BUY', 'type': 'MARKET',
                                 'quantity': '0.1', 'positionSide': side})
    assert sim.orders(market='futures') == []
    ex.fapiPrivatePostOrder({'symbol': 'BTCUSDT', 'side': 'BUY', 'type': 'MARKET',
                             'quantity': '0.1', 'positionSide': 'BOTH'})


def test_ws_api_unknown_method_is_unsupported_not_illegal_chars(sim, ws_factory):
    c = ws_factory(sim.ws_url + '/ws-api/v3')
    c.send({'id': 'x', 'method': 'order.teleport', 'params': {}})
    reply = c.recv()
    assert reply['status'] == 400 and reply['error']['code'] == -1020


@pytest.mark.parametrize('combined', [False, True])
def test_futures_user_data_by_subscribing_the_listen_key(fut, ws_factory, combined):
    sim, ex = fut
    lk = ex.fapiPrivatePostListenKey()['listenKey']
    c = ws_factory(sim.ws_url + ('/market/stream' if combined else '/market/ws'))
    c.send({'method': 'SUBSCRIBE', 'params': [lk, 'btcusdt@bookTicker'], 'id': 1})
    assert c.recv() == {'result': None, 'id': 1}
    sim.wait_user_subscribed(market='futures')
    ex.create_order('BTC/USDT:USDT', 'market', 'buy', 0.1)
    msg, _ = c.recv_until(lambda m: (m.get('data', m) if combined else m).get('e') ==
                          'ORDER_TRADE_UPDATE' and (m.get('data', m))['o']['X'] == 'FILLED')
    if combined:
        assert msg['stream'] == lk
    c.send({'method': 'UNSUBSCRIBE', 'params': [lk], 'id': 2})
    c.recv_until(lambda m: m.get('id') == 2)
    assert sim._call(lambda: sim.futures_streams.user_count('fapi', KEY)) == 0
