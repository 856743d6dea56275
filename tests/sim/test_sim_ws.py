"""Market streams and the WS-API user-data stream through websocket-client."""
import hashlib
import hmac
import json
import time

import pytest
import websocket

from simutil import KEY, SECRET

H = 3600000


def klines(msgs):
    return [m.get('data', m) for m in msgs if m.get('data', m).get('e') == 'kline']


def test_raw_kline_stream_closed_bar_exactly_once(sim, ws_factory):
    c = ws_factory(sim.ws_url + '/ws/btcusdt@kline_1h')
    sim.wait_subscribed('btcusdt@kline_1h')
    closed_rows = sim.step()
    msgs = klines(c.drain())
    finals = [m for m in msgs if m['k']['x']]
    assert len(finals) == 1
    k = finals[0]['k']
    assert k['t'] == closed_rows[0][0] and k['T'] == k['t'] + H - 1 and k['i'] == '1h'
    assert float(k['c']) == closed_rows[0][4] and k['s'] == 'BTCUSDT'
    assert set(k) == set('tTsifLochlvnxqVQB')
    before = msgs[:msgs.index(finals[0])]
    assert before and not before[-1]['k']['x'] and before[-1]['k']['t'] == k['t']
    assert msgs[-1]['k']['t'] == k['t'] + H and not msgs[-1]['k']['x']   # the new bar
    sim.advance(60)
    msgs = klines(c.drain())
    assert msgs and not any(m['k']['x'] for m in msgs)
    sim.step(3)
    finals = [m for m in klines(c.drain()) if m['k']['x']]
    assert [m['k']['t'] for m in finals] == [k['t'] + H * i for i in (1, 2, 3)]


def test_combined_stream_wrapping_and_aggregated_interval(sim, ws_factory):
    c = ws_factory(sim.ws_url + '/stream?streams=btcusdt@kline_4h/btcusdt@trade')
    sim.wait_subscribed('btcusdt@trade')
    sim.step(8)
    msgs = c.drain()
    assert all(set(m) == {'stream', 'data'} for m in msgs)
    four = [m['data']['k'] for m in msgs if m['stream'] == 'btcusdt@kline_4h']
    finals = [k for k in four if k['x']]
    assert 1 <= len(finals) <= 2 and all(k['t'] % (4 * H) == 0 for k in finals)
    assert len({k['t'] for k in finals}) == len(finals)
    trades = [m['data'] for m in msgs if m['stream'] == 'btcusdt@trade']
    assert trades and trades[0]['e'] == 'trade' and 't' in trades[0]


def test_live_subscribe_list_unsubscribe(sim, ws_factory):
    sim.step()   # onto an hour boundary: the next step closes exactly twelve 5m bars
    c = ws_factory(sim.ws_url + '/ws')
    c.send({'method': 'SUBSCRIBE', 'params': ['ethbtc@kline_5m', 'ethbtc@aggTrade',
                                               'btcusdt@bookTicker'], 'id': 1})
    assert c.recv() == {'result': None, 'id': 1}
    c.send({'method': 'LIST_SUBSCRIPTIONS', 'id': 2})
    assert c.recv() == {'result': ['ethbtc@kline_5m', 'ethbtc@aggTrade',
                                   'btcusdt@bookTicker'], 'id': 2}
    sim.step()   # one 1h step closes twelve 5m bars
    msgs = c.drain()
    finals = [m for m in klines(msgs) if m['k']['x']]
    assert len(finals) == 12 and len({m['k']['t'] for m in finals}) == 12
    assert any(m.get('e') == 'aggTrade' for m in msgs)
    assert any('b' in m and 'a' in m and 'u' in m for m in msgs)
    c.send({'method': 'UNSUBSCRIBE', 'params': ['ethbtc@kline_5m', 'ethbtc@aggTrade',
                                                 'btcusdt@bookTicker'], 'id': 3})
    assert c.recv() == {'result': None, 'id': 3}
    sim.step()
    assert c.drain() == []
    c.send({'method': 'SUBSCRIBE', 'params': ['nope@kline_1h'], 'id': 4})
    assert c.recv()['error']['code'] == 2
    c.send({'method': 'SUBSCRIBE', 'params': ['btcusdt@kline_7m'], 'id': 5})
    assert 'error' in c.recv()
    c.send({'method': 'WHAT', 'id': 6})
    assert c.recv()['id'] == 6
    c.ws.send('not json')
    assert c.recv()['error']['code'] == 3


def test_two_subscribers_each_get_the_close_once(sim, ws_factory):
    a = ws_factory(sim.ws_url + '/ws/btcusdt@kline_1h')
    b = ws_factory(sim.ws_url + '/stream?streams=btcusdt@kline_1h')
    sim.wait_subscribed('btcusdt@kline_1h', count=2)
    sim.step(2)
    assert len([m for m in klines(a.drain()) if m['k']['x']]) == 2
    assert len([m for m in klines(b.drain()) if m['k']['x']]) == 2


def test_ping_pong_and_close_connections(sim, ws_factory):
    c = ws_factory(sim.ws_url + '/ws/btcusdt@kline_1h')
    sim.wait_subscribed('btcusdt@kline_1h')
    c.ws.ping('hi')
    op, data = c.ws.recv_data(control_frame=True)
    assert op == websocket.ABNF.OPCODE_PONG and data == b'hi'
    sim.close_ws_connections()
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        for _ in range(5):
            c.ws.recv()
    d = ws_factory(sim.ws_url + '/ws/btcusdt@kline_1h')   # a reconnect works
    sim.wait_subscribed('btcusdt@kline_1h')
    sim.step()
    assert [m for m in klines(d.drain()) if m['k']['x']]


def ws_api_params(key=KEY, secret=SECRET, ts=None, **extra):
    params = dict(apiKey=key, timestamp=ts or int(time.time() * 1000), **extra)
    q = '&'.join('%s=%s' % (k, params[k]) for k in sorted(params))
    params['signature'] = hmac.new(secret.encode(), q.encode(), hashlib.sha256).hexdigest()
    return params


def test_ws_api_subscribe_errors_and_misc(sim, ws_factory):
    c = ws_factory(sim.ws_url + '/ws-api/v3')
    c.send({'id': 'a', 'method': 'userDataStream.subscribe.signature',
            'params': ws_api_params(secret='bad')})
    r = c.recv()
    assert r == {'id': 'a', 'status': 400, 'error': {
        'code': -1022, 'msg': 'Signature for this request is not valid.'}}
    c.send({'id': 'b', 'method': 'userDataStream.subscribe.signature',
            'params': ws_api_params(key='nobody')})
    assert c.recv()['error']['code'] == -2015 and True
    c.send({'id': 'c', 'method': 'userDataStream.subscribe.signature',
            'params': ws_api_params(ts=int(time.time() * 1000) - 60000)})
    assert c.recv()['error']['code'] == -1021
    c.send({'id': 'd', 'method': 'ping'})
    assert c.recv()['status'] == 200
    c.send({'id': 'e', 'method': 'time'})
    assert abs(c.recv()['result']['serverTime'] - time.time() * 1000) < 2000
    c.send({'id': 'f', 'method': 'nope'})
    assert c.recv()['status'] == 400
    c.ws.send('{bad')
    assert c.recv()['error']['code'] == -1100


def test_user_data_events_for_fills(flat, ws_factory):
    s, ex = flat
    c = ws_factory(s.ws_url + '/ws-api/v3')
    c.send({'id': 1, 'method': 'userDataStream.subscribe.signature',
            'params': ws_api_params(recvWindow=5000)})
    r = c.recv()
    assert r['status'] == 200 and r['result'] == {'subscriptionId': 0} and r['rateLimits']
    s.wait_user_subscribed()
    ex.create_order('BTC/USDT', 'market', 'buy', 1.5, params={'clientOrderId': 'mkt-1'})
    msgs = c.drain()
    assert all(m['subscriptionId'] == 0 for m in msgs)
    events = [m['event'] for m in msgs]
    reports = [e for e in events if e['e'] == 'executionReport']
    assert [(e['x'], e['X']) for e in reports] == [
        ('NEW', 'NEW'), ('TRADE', 'PARTIALLY_FILLED'), ('TRADE', 'FILLED')]
    fields = 'e,E,s,c,S,o,f,q,p,P,F,g,C,x,X,r,i,l,z,L,n,N,T,t,I,w,m,M,O,Z,Y,Q,W,V'.split(',')
    assert all(set(fields) <= set(e) for e in reports)
    assert reports[0]['t'] == -1 and reports[1]['t'] > 0 and reports[1]['c'] == 'mkt-1'
    assert reports[2]['N'] == 'BTC' and reports[2]['n'] == '0.00050000'
    assert reports[2]['z'] == '1.50000000' and reports[2]['L'] == '100.02000000'
    positions = [e for e in events if e['e'] == 'outboundAccountPosition']
    assert positions and set(positions[-1]) == {'e', 'E', 'u', 'B'}
    last = {b['a']: b for b in positions[-1]['B']}
    assert last['BTC']['f'] == '1.49850000'
    o = ex.create_order('BTC/USDT', 'limit', 'buy', 1, 80, params={'clientOrderId': 'lim-9'})
    c.drain()
    ex.cancel_order(o['id'], 'BTC/USDT', params={'newClientOrderId': 'cxl-1'})
    cancel = [m['event'] for m in c.drain() if m['event']['e'] == 'executionReport'][0]
    assert cancel['x'] == 'CANCELED' and cancel['C'] == 'lim-9' and cancel['c'] == 'cxl-1'
    ex.create_order('BTC/USDT', 'limit', 'buy', 2, 95)
    c.drain()
    s.step()
    fills = [m['event'] for m in c.drain() if m['event']['e'] == 'executionReport']
    assert fills[0]['x'] == 'TRADE' and fills[0]['m'] is True and fills[0]['l'] == '1.00000000'
    c.send({'id': 2, 'method': 'userDataStream.unsubscribe', 'params': {}})
    assert c.recv()['status'] == 200
    ex.create_order('BTC/USDT', 'market', 'buy', 0.1)
    assert c.drain() == []


def test_ccxt_pro_style_signature_matches(sim):
    """ccxt.pro's own sign_params output is accepted (same rawencode, sorted keys)."""
    import ccxt.pro
    pro = ccxt.pro.binance({'apiKey': KEY, 'secret': SECRET})
    params = pro.sign_params({})
    c = websocket.create_connection(sim.ws_url + '/ws-api/v3', timeout=5)
    try:
        c.send(json.dumps({'id': '1', 'method': 'userDataStream.subscribe.signature',
                           'params': params}))
        assert json.loads(c.recv())['status'] == 200
    finally:
        c.close()


def test_server_pings(sim, ws_factory, monkeypatch):
    from backtrader_live.sim.binance_ws import BinanceStreams
    monkeypatch.setattr(BinanceStreams, 'ping_seconds', 0.02)
    for path in ('/ws/btcusdt@kline_1h', '/ws-api/v3'):
        c = ws_factory(sim.ws_url + path)
        op, data = c.ws.recv_data(control_frame=True)
        assert op == websocket.ABNF.OPCODE_PING and data == b'sim'
