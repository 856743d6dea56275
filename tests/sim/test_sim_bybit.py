"""Bybit v5 (spot, linear, inverse) through the real ccxt and websocket-client.

Synthetic path: flat at 100, then every bar 100 -> 110 -> 90 -> 100.
Linear BTCUSDT: tick 0.1, step 0.001; inverse BTCUSD: 1 USD contracts.
"""
import hashlib
import hmac
import time
from decimal import Decimal as D

import ccxt
import pytest
import requests

from simutil import KEY, SECRET, H, make_bybit_ccxt

LIN, INV, SPOT = 'BTC/USDT:USDT', 'BTC/USD:BTC', 'BTC/USDT'


def test_load_markets_probes_and_envelope(bybit):
    s, ex = bybit
    assert {LIN, INV, SPOT} <= set(ex.markets)
    assert ex.market(LIN)['linear'] and ex.market(INV)['inverse']
    assert ex.market(INV)['contractSize'] == 1
    probing = make_bybit_ccxt(s, probes=True)           # hidden calls answered
    probing.load_markets()
    assert probing.fetch_balance()['USDT']['total'] == 20000
    r = requests.get(s.base_url + '/v5/market/instruments-info',
                     params={'category': 'linear', 'limit': 1}).json()
    assert r['retCode'] == 0 and r['result']['nextPageCursor'] == ''
    assert set(r) == {'retCode', 'retMsg', 'result', 'retExtInfo', 'time'}
    bad = requests.get(s.base_url + '/v5/market/kline',
                       params={'category': 'linear', 'symbol': 'NOPE', 'interval': '60'})
    assert bad.status_code == 200 and bad.json()['retCode'] == 10001


def test_kline_newest_first_and_ohlcv(bybit):
    s, ex = bybit
    r = requests.get(s.base_url + '/v5/market/kline', params={
        'category': 'linear', 'symbol': 'BTCUSDT', 'interval': '60', 'limit': 3}).json()
    starts = [int(row[0]) for row in r['result']['list']]
    assert starts == sorted(starts, reverse=True) and starts[0] == s.now_ms()
    rows = ex.fetch_ohlcv(LIN, '1h', limit=3)
    assert [x[0] for x in rows] == sorted(starts)


@pytest.mark.parametrize('symbol,qty,unit', [(LIN, 0.1, 'USDT'), (INV, 100, 'BTC')])
def test_positions_open_add_close(bybit, symbol, qty, unit):
    s, ex = bybit
    o = ex.create_order(symbol, 'limit', 'buy', qty, 95, params={'clientOrderId': 'L1'})
    got = ex.fetch_open_order(o['id'], symbol)
    assert got['clientOrderId'] == 'L1' and got['status'] == 'open'
    ex.cancel_order(o['id'], symbol)
    assert ex.fetch_open_orders(symbol) == []
    ex.create_order(symbol, 'market', 'sell', qty)            # short at the bid 100
    ex.create_order(symbol, 'market', 'sell', qty)
    [p] = ex.fetch_positions([symbol])
    assert p['side'] == 'short' and p['contracts'] == 2 * qty and p['entryPrice'] == 100
    [mine] = [x for x in s.positions() if x.symbol == ex.market(symbol)['id']]
    assert mine.size == -2 * D(str(qty))
    ex.create_order(symbol, 'market', 'buy', qty, params={'reduceOnly': True})
    ex.create_order(symbol, 'market', 'buy', 5 * qty, params={'reduceOnly': True})
    # like Bybit, a position/list by symbol returns the flat position (size 0)
    assert [p['contracts'] for p in ex.fetch_positions([symbol])] == [0]
    assert s.positions() == []
    with pytest.raises(ccxt.InvalidOrder):                    # 110017: would open
        ex.create_order(symbol, 'market', 'buy', qty, params={'reduceOnly': True})
    trades = ex.fetch_my_trades(symbol)
    assert len(trades) == 4 and trades[0]['fee']['currency'] == unit


def test_leverage_margin_mode_and_margin_error(bybit):
    s, ex = bybit
    ex.set_leverage(2, LIN)
    with pytest.raises(ccxt.BadRequest):                      # 110043 not modified
        ex.set_leverage(2, LIN)
    ex.set_margin_mode('isolated', LIN)
    ex.create_order(LIN, 'market', 'buy', 1)
    [p] = ex.fetch_positions([LIN])
    assert p['leverage'] == 2 and p['info']['tradeMode'] == 1      # isolated
    with pytest.raises(ccxt.InsufficientFunds):               # 110007
        ex.create_order(LIN, 'market', 'buy', 500)
    with pytest.raises(ccxt.InsufficientFunds):               # spot 170131
        ex.create_order(SPOT, 'market', 'sell', 5)


def test_stop_triggered_by_clock_and_funding(bybit):
    s, ex = bybit
    ex.create_order(LIN, 'market', 'buy', 1)
    st = ex.create_order(LIN, 'market', 'sell', 1, params={'stopLossPrice': 95})
    [o] = ex.fetch_open_orders(LIN, params={'trigger': True})
    assert o['id'] == st['id'] and o['triggerPrice'] == 95 and o['reduceOnly']
    s.step()
    assert s.positions() == []
    ex.create_order(LIN, 'market', 'buy', 1)
    s.step(8)
    [ev] = s.funding_events()
    assert ev.time % (8 * H) == 0 and ev.amount == -ev.mark * D('0.0001')
    r = ex.privateGetV5ExecutionList({'category': 'linear', 'execType': 'Funding'})
    assert D(r['result']['list'][0]['execFee']) == -ev.amount
    assert r['result']['list'][0]['execType'] == 'Funding'


def test_spot_orders(bybit):
    s, ex = bybit
    o = ex.create_order(SPOT, 'market', 'buy', 0.5)
    assert s.balances()['BTC']['free'] == D('0.4995')
    lim = ex.create_order(SPOT, 'limit', 'sell', 0.4, 105, params={'clientOrderId': 's-1'})
    s.step()
    got = ex.fetch_order(lim['id'], SPOT, params={'acknowledged': True})
    assert got['status'] == 'closed' and got['filled'] == 0.4
    with pytest.raises(ccxt.InvalidOrder):                    # PostOnly would take
        ex.create_order(SPOT, 'limit', 'buy', 0.1, 120, params={'postOnly': True})


def test_auth_and_timestamp_errors(bybit):
    s, ex = bybit
    with pytest.raises(ccxt.AuthenticationError):
        make_bybit_ccxt(s, secret='wrong').fetch_balance()
    with pytest.raises(ccxt.AuthenticationError):
        make_bybit_ccxt(s, key='nobody').fetch_balance()
    late = make_bybit_ccxt(s)
    late.options['timeDifference'] = 60000
    with pytest.raises(ccxt.InvalidNonce):
        late.fetch_balance()


def test_public_kline_confirm_and_private_topics(bybit, ws_factory):
    s, ex = bybit
    pub = ws_factory(s.ws_url + '/v5/public/linear')
    pub.send({'op': 'subscribe', 'req_id': '1', 'args': ['kline.60.BTCUSDT']})
    assert pub.recv()['success'] is True
    pub.send({'op': 'ping', 'req_id': '2'})
    assert pub.recv()['ret_msg'] == 'pong'
    priv = ws_factory(s.ws_url + '/v5/private')
    expires = int(time.time() * 1000) + 10000
    sig = hmac.new(SECRET.encode(), ('GET/realtime%d' % expires).encode(),
                   hashlib.sha256).hexdigest()
    priv.send({'op': 'auth', 'args': [KEY, expires, sig]})
    assert priv.recv()['success'] is True
    priv.send({'op': 'subscribe', 'args': ['order', 'execution', 'position', 'wallet']})
    assert priv.recv()['success'] is True
    ex.create_order(LIN, 'market', 'buy', 0.1, params={'clientOrderId': 'ws-b'})
    topics = [m['topic'] for m in priv.drain()]
    assert topics[:2] == ['order', 'order'] and 'execution' in topics
    assert 'position' in topics and 'wallet' in topics
    s.step()
    data = [m['data'][0] for m in pub.drain() if m.get('topic') == 'kline.60.BTCUSDT']
    confirms = [d['confirm'] for d in data]
    assert confirms.count(True) == 1 and confirms.index(True) > 0
    assert confirms[confirms.index(True) - 1] is False and confirms[-1] is False
    bad = ws_factory(s.ws_url + '/v5/private')
    bad.send({'op': 'auth', 'args': [KEY, expires, 'x' * 64]})
    assert bad.recv()['success'] is False


def test_query_api_reports_the_keys_permissions(bybit):
    """GET /v5/user/query-api: readOnly, permissions and ips follow
    set_key_permissions (withdrawals: 'Withdraw' in Wallet)."""
    s, ex = bybit
    info = ex.private_get_v5_user_query_api()['result']
    assert (info['readOnly'], info['permissions']['Spot'], info['ips']) == (
        0, ['SpotTrade'], ['*'])
    assert info['permissions']['ContractTrade'] == ['Order', 'Position']
    assert 'Withdraw' not in info['permissions']['Wallet']
    s.set_key_permissions(trading=False, withdrawals=True, ip_restrict=True)
    info = ex.private_get_v5_user_query_api()['result']
    assert (info['readOnly'], info['permissions']['Spot'], info['ips']) == (
        1, [], ['127.0.0.1'])
    assert 'Withdraw' in info['permissions']['Wallet']
