"""Binance USD-M futures through the real ccxt (binanceusdm) and websocket-client.

Synthetic path (simutil.write_data): flat at 100, then every bar 100 -> 110 ->
90 -> 100.  BTCUSDT perpetual: tick 0.1, step 0.001; the book's best bid is the
price rounded down to the tick, the ask one tick above, 1.0 per level.
"""
import json
import time
from decimal import Decimal as D

import ccxt
import pytest
import requests

from simutil import KEY, SECRET, H, make_futures_ccxt, point_ccxt

SYM = 'BTC/USDT:USDT'
THIRD = 1200  # seconds: the path reaches the bar's high (110) a third into the bar


def test_load_markets_shape_and_hidden_calls(fut):
    s, ex = fut
    m = ex.market(SYM)
    assert m['swap'] and m['linear'] and m['settle'] == 'USDT' and m['id'] == 'BTCUSDT'
    assert m['precision']['amount'] == 0.001 and m['precision']['price'] == 0.1
    assert m['limits']['cost']['min'] == 5 and m['contractSize'] == 1
    info = m['info']
    assert info['contractType'] == 'PERPETUAL' and info['marginAsset'] == 'USDT'
    assert {'filterType': 'MIN_NOTIONAL', 'notional': '5.00000000'} in info['filters']
    assert 'STOP_MARKET' in info['orderTypes'] and 'TAKE_PROFIT_MARKET' in info['orderTypes']
    # an unmodified ccxt (fetchCurrencies/fetchMargins on) also calls sapi: answered
    plain = point_ccxt(ccxt.binanceusdm({'apiKey': KEY, 'secret': SECRET}), s.base_url)
    assert SYM in plain.load_markets()
    spot = point_ccxt(ccxt.binance({'apiKey': KEY, 'secret': SECRET}), s.base_url)
    assert {'BTC/USDT', SYM, 'BTC/USD:BTC'} <= set(spot.load_markets())


def test_fetch_ohlcv_matches_spot_data(fut):
    s, ex = fut
    rows = ex.fetch_ohlcv(SYM, '1h', limit=3)
    assert [r[4] for r in rows[:-1]] == [100, 100] and rows[-1][0] == s.now_ms()
    assert ex.fetch_time() == pytest.approx(time.time() * 1000, abs=2000)


def test_limit_by_client_id_partial_fill_cancel(fut):
    s, ex = fut
    o = ex.create_order(SYM, 'limit', 'buy', 1.5, 95, params={'clientOrderId': 'f-1'})
    assert o['status'] == 'open' and o['clientOrderId'] == 'f-1'
    assert s.balances(market='futures')['USDT']['order_margin'] == D('7.125')  # 142.5/20
    s.step()  # liquidity 0.1 x volume 10 = 1.0 per bar
    got = ex.fetch_order(None, SYM, params={'clientOrderId': 'f-1'})
    assert got['status'] == 'open' and got['filled'] == 1.0 and got['average'] == 95
    c = ex.cancel_order(None, SYM, params={'clientOrderId': 'f-1'})
    assert c['status'] == 'canceled' and c['filled'] == 1.0
    assert s.balances(market='futures')['USDT']['order_margin'] == 0
    [p] = ex.fetch_positions([SYM])
    assert p['contracts'] == 1.0 and p['entryPrice'] == 95 and p['side'] == 'long'
    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order('424242', SYM)
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(None, SYM, params={'clientOrderId': 'f-1'})
    assert [t['amount'] for t in ex.fetch_my_trades(SYM)] == [1.0]


@pytest.mark.parametrize('side,other,sign', [('buy', 'sell', 1), ('sell', 'buy', -1)])
def test_position_open_add_reduce_close(fut, side, other, sign):
    s, ex = fut
    ex.create_order(SYM, 'market', side, 0.1)               # at 100.1 (buy) / 100.0 (sell)
    s.advance(THIRD)                                          # price 110
    ex.create_order(SYM, 'market', side, 0.1)
    first, second = (D('100.1'), D('110.1')) if sign > 0 else (D('100'), D('110'))
    entry = (first + second) / 2
    [p] = ex.fetch_positions()
    [mine] = s.positions()
    assert mine.size == sign * D('0.2') and mine.entry == entry
    assert p['contracts'] == 0.2 and p['entryPrice'] == float(entry)
    assert p['side'] == ('long' if sign > 0 else 'short') and p['marginMode'] == 'cross'
    exit_price = D('110') if sign > 0 else D('110.1')
    ex.create_order(SYM, 'market', other, 0.1)              # partial close
    [mine] = s.positions()
    assert mine.size == sign * D('0.1') and mine.entry == entry
    pnl = sign * D('0.1') * (exit_price - entry)
    assert s.trades(market='futures')[-1].realized_pnl == pnl
    ex.create_order(SYM, 'market', other, 0.1)              # close
    assert s.positions() == [] and ex.fetch_positions() == []
    fees = sum(t.commission for t in s.trades(market='futures'))
    wallet = s.balances(market='futures')['USDT']['wallet']
    assert wallet == D('10000') + 2 * pnl - fees
    trades = ex.fetch_my_trades(SYM)
    assert sum(float(t['info']['realizedPnl']) for t in trades) == pytest.approx(float(2 * pnl))


def test_leverage_margin_mode_and_one_way(fut):
    s, ex = fut
    assert ex.set_leverage(5, SYM)['leverage'] == 5
    with pytest.raises(ccxt.BadRequest):  # ccxt checks 1..125 itself; the server too
        ex.set_leverage(200, SYM)
    with pytest.raises(ccxt.BadRequest, match='-4028'):
        ex.fapiPrivatePostLeverage({'symbol': 'BTCUSDT', 'leverage': 200})
    ex.set_margin_mode('isolated', SYM)
    with pytest.raises(ccxt.MarginModeAlreadySet):
        ex.set_margin_mode('isolated', SYM)
    ex.create_order(SYM, 'market', 'buy', 1)
    [p] = ex.fetch_positions()
    assert p['leverage'] == 5 and p['marginMode'] == 'isolated'
    assert p['initialMargin'] == pytest.approx(100.1 / 5, rel=1e-3)
    # isolated long at 5x, mmr 0.4%: liq = entry * (1 - 1/5) / (1 - 0.004)
    assert p['liquidationPrice'] == pytest.approx(100.1 * 0.8 / 0.996, abs=0.1)
    with pytest.raises(ccxt.ExchangeError, match='-4048'):
        ex.set_margin_mode('cross', SYM)
    assert ex.fapiPrivateGetPositionSideDual()['dualSidePosition'] is False
    with pytest.raises(ccxt.ExchangeError, match='one-way only'):
        ex.set_position_mode(True)


def test_reduce_only_never_flips(fut):
    s, ex = fut
    with pytest.raises(ccxt.ExchangeError, match='-2022'):
        ex.create_order(SYM, 'market', 'sell', 0.1, params={'reduceOnly': True})
    ex.create_order(SYM, 'market', 'buy', 0.1)
    o = ex.create_order(SYM, 'market', 'sell', 0.5, params={'reduceOnly': True})
    assert o['filled'] == 0.1 and o['reduceOnly'] is True
    assert s.positions() == []
    with pytest.raises(ccxt.ExchangeError, match='-2022'):
        ex.create_order(SYM, 'market', 'buy', 0.1, params={'reduceOnly': True})


def test_conditional_stop_triggered_by_clock(fut):
    s, ex = fut
    ex.create_order(SYM, 'market', 'buy', 0.2)
    st = ex.create_order(SYM, 'market', 'sell', 0.2,
                         params={'stopLossPrice': 95, 'reduceOnly': True,
                                 'clientOrderId': 'sl-1'})
    assert st['status'] == 'open' and st['triggerPrice'] == 95
    assert st['info']['algoType'] == 'CONDITIONAL' and st['info']['orderType'] == 'STOP_MARKET'
    assert st['clientOrderId'] == 'sl-1'
    assert ex.fetch_open_orders(SYM) == []                   # algo orders live apart
    [open_algo] = ex.fetch_open_orders(SYM, params={'trigger': True})
    assert open_algo['id'] == st['id']
    with pytest.raises(ccxt.ExchangeError, match='-2021'):   # would trigger at once
        ex.create_order(SYM, 'market', 'sell', 0.1, params={'stopLossPrice': 105})
    tp = ex.create_order(SYM, 'market', 'sell', 0.2, params={'takeProfitPrice': 150,
                                                              'reduceOnly': True})
    ex.cancel_order(tp['id'], SYM, params={'trigger': True})
    s.step()                                                  # 110 -> 90: the stop fires
    assert s.positions() == []
    done = ex.fetch_order(st['id'], SYM, params={'trigger': True})
    assert done['status'] == 'closed' and done['info']['algoStatus'] == 'FINISHED'
    actual = ex.fetch_order(done['info']['actualOrderId'], SYM)
    assert actual['status'] == 'closed' and actual['filled'] == 0.2
    assert actual['average'] == pytest.approx(94.9, abs=0.2)
    assert ex.fetch_order(tp['id'], SYM, params={'trigger': True})['status'] == 'canceled'


def test_funding_every_eight_hours(fut):
    s, ex = fut
    ex.create_order(SYM, 'market', 'buy', 1)
    before = s.balances(market='futures')['USDT']['wallet']
    s.step(8)                                                # crosses one 8h boundary
    [ev] = s.funding_events()
    assert ev.time % (8 * H) == 0 and ev.rate == D('0.0001')
    assert ev.amount == -ev.mark * D('0.0001')              # longs pay a positive rate
    assert s.balances(market='futures')['USDT']['wallet'] == before + ev.amount
    [h] = ex.fetch_funding_history(SYM)
    assert h['amount'] == float(ev.amount) and h['timestamp'] == ev.time
    assert h['info']['incomeType'] == 'FUNDING_FEE'


def test_margin_and_auth_errors(fut):
    s, ex = fut
    # on 127.0.0.1 ccxt applies its generic table only: -2019 is an ExchangeError there
    ex.set_leverage(1, SYM)
    with pytest.raises(ccxt.ExchangeError, match='-2019'):
        ex.create_order(SYM, 'market', 'buy', 200)
    bad = make_futures_ccxt(s, secret='wrong')
    with pytest.raises(ccxt.AuthenticationError):
        bad.fetch_balance()
    late = make_futures_ccxt(s)
    late.options['timeDifference'] = 120000
    with pytest.raises(ccxt.InvalidNonce):
        late.fetch_positions()


def test_liquidation_when_mark_crosses(fut):
    s, ex = fut
    ex.set_margin_mode('isolated', SYM)
    ex.set_leverage(50, SYM)
    ex.create_order(SYM, 'market', 'buy', 1)
    liq = s.liquidation_price(SYM)
    assert D('98') < liq < D('100')
    s.step()                                                 # dips to 90
    assert s.positions() == []
    last = s.trades(market='futures')[-1]
    assert last.kind == 'Liquidation' and last.price == liq
    assert s.orders(market='futures')[-1].client_id.startswith('autoclose-')


def test_user_stream_and_market_streams(fut, ws_factory):
    s, ex = fut
    lk = ex.fapiPrivatePostListenKey()['listenKey']
    assert ex.fapiPrivatePostListenKey()['listenKey'] == lk  # same live key, extended
    ex.fapiPrivatePutListenKey()
    user = ws_factory(s.ws_url + '/private/ws?listenKey=' + lk)
    kline = ws_factory(s.ws_url + '/market/ws/btcusdt@kline_1h')
    s.wait_user_subscribed(market='futures')
    s.wait_subscribed('btcusdt@kline_1h')
    ex.create_order(SYM, 'market', 'buy', 0.1, params={'clientOrderId': 'ws-1'})
    ex.create_order(SYM, 'market', 'sell', 0.1, params={'stopLossPrice': 95,
                                                         'reduceOnly': True})
    msgs = user.drain()
    kinds = [(m['e'], m.get('o', {}).get('x') or m.get('o', {}).get('X')) for m in msgs]
    assert kinds[:3] == [('ORDER_TRADE_UPDATE', 'NEW'), ('ORDER_TRADE_UPDATE', 'TRADE'),
                         ('ACCOUNT_UPDATE', None)]
    trade = msgs[1]['o']
    assert trade['c'] == 'ws-1' and trade['X'] == 'FILLED' and trade['L'] == '100.10000000'
    assert set(trade) >= set('scSofqpxXilzLNnTtmR') | {'ap', 'sp', 'ot', 'ps', 'rp'}
    acct = msgs[2]['a']
    assert acct['m'] == 'ORDER' and acct['P'][0]['pa'] == '0.10000000'
    assert acct['B'][0]['a'] == 'USDT' and 'wb' in acct['B'][0]
    assert msgs[3]['e'] == 'ALGO_UPDATE' and msgs[3]['o']['X'] == 'NEW'
    assert msgs[3]['o']['at'] == 'CONDITIONAL'
    s.step()
    after = user.drain()
    algo = [m['o']['X'] for m in after if m['e'] == 'ALGO_UPDATE']
    assert algo == ['TRIGGERED', 'FINISHED']
    assert any(m['e'] == 'ORDER_TRADE_UPDATE' and m['o']['X'] == 'FILLED' for m in after)
    closed = [m for m in kline.drain() if m['k']['x']]
    assert len(closed) == 1 and closed[0]['s'] == 'BTCUSDT'
    ex.fapiPrivateDeleteListenKey()
    with pytest.raises(ccxt.AuthenticationError):           # -1125
        ex.fapiPrivatePutListenKey()


def test_combined_public_stream_and_bad_listen_key(fut, ws_factory):
    s, ex = fut
    c = ws_factory(s.ws_url + '/market/stream?streams=btcusdt@kline_1h/btcusdt@markPrice')
    s.wait_subscribed('btcusdt@markPrice')
    s.step()
    msgs = c.drain()
    assert {m['stream'] for m in msgs} == {'btcusdt@kline_1h', 'btcusdt@markPrice'}
    mark = [m['data'] for m in msgs if m['stream'] == 'btcusdt@markPrice'][0]
    assert mark['e'] == 'markPriceUpdate' and mark['r'] == '0.00010000'
    bad = ws_factory(s.ws_url + '/private/ws?listenKey=nope')
    assert bad.recv()['error']['code'] == -1125
    r = requests.get(s.base_url + '/fapi/v1/premiumIndex', params={'symbol': 'BTCUSDT'})
    assert json.loads(r.text)['lastFundingRate'] == '0.00010000'
