"""Binance COIN-M (BTCUSD_PERP, 100 USD contracts, margin in BTC) through ccxt.binancecoinm."""
from decimal import Decimal as D

import ccxt
import pytest

SYM = 'BTC/USD:BTC'


def test_inverse_position_pnl_in_coin_and_user_stream(coinm, ws_factory):
    s, ex = coinm
    m = ex.market(SYM)
    assert m['inverse'] and m['contractSize'] == 100 and m['id'] == 'BTCUSD_PERP'
    assert m['info']['contractStatus'] == 'TRADING' and m['info']['marginAsset'] == 'BTC'
    lk = ex.dapiPrivatePostListenKey()['listenKey']
    user = ws_factory(s.ws_url + '/dapi/ws/' + lk)
    kl = ws_factory(s.ws_url + '/dapi/ws/btcusd_perp@kline_1h')
    s.wait_user_subscribed(market='delivery')
    s.wait_subscribed('btcusd_perp@kline_1h')
    o = ex.create_order(SYM, 'market', 'buy', 10, params={'clientOrderId': 'c-1'})
    assert o['filled'] == 10 and o['average'] == pytest.approx(100.1)
    assert float(o['info']['cumBase']) == pytest.approx(1000 / 100.1, rel=1e-6)
    s.advance(1200)                                     # price 110
    ex.create_order(SYM, 'market', 'sell', 10, params={'reduceOnly': True})
    pnl = s.trades(market='delivery')[-1].realized_pnl
    assert pnl == (D(10) * 100 * (1 / D('100.1') - 1 / D('110'))).quantize(D('1e-8'))
    events = [m['e'] for m in user.drain()]
    assert events.count('ORDER_TRADE_UPDATE') == 4 and 'ACCOUNT_UPDATE' in events
    s.step()
    assert [m for m in kl.drain() if m['k']['x']][0]['s'] == 'BTCUSD_PERP'
    assert ex.fetch_positions() == []
    assert ex.fetch_balance()['BTC']['total'] == pytest.approx(float(
        s.balances(market='delivery')['BTC']['wallet']))


def test_inverse_stop_leverage_and_errors(coinm):
    s, ex = coinm
    assert ex.set_leverage(10, SYM)['leverage'] == 10
    ex.create_order(SYM, 'market', 'sell', 5)
    [p] = ex.fetch_positions()
    assert p['side'] == 'short' and p['contracts'] == 5 and p['marginMode'] == 'cross'
    ex.create_order(SYM, 'market', 'buy', 5, params={'stopLossPrice': 105, 'reduceOnly': True})
    s.step()                                            # rises to 110: the stop fires
    assert s.positions(market='delivery') == []
    with pytest.raises(ccxt.ExchangeError, match='-2022'):
        ex.create_order(SYM, 'market', 'buy', 1, params={'reduceOnly': True})
    with pytest.raises(ccxt.ExchangeError, match='-2019'):
        ex.create_order(SYM, 'market', 'buy', 20000)
