"""Trailing stops as Binance documents them: spot ``trailingDelta`` (BIPS) on
STOP_LOSS/TAKE_PROFIT(_LIMIT), futures TRAILING_STOP_MARKET (callbackRate %,
activatePrice) on USD-M and COIN-M.  On simutil's path every bar goes
100 -> 110 (at 20 min) -> 90 (at 40 min) -> 100, so the triggers are known exactly."""
from decimal import Decimal

import ccxt
import pytest


def spot_order(ex, **params):
    return ex.private_post_order(dict({'symbol': 'BTCUSDT', 'quantity': '0.1'}, **params))


def test_spot_trailing_stop_loss_sell_tracks_the_high(flat):
    sim, ex = flat
    spot_order(ex, side='BUY', type='MARKET', quantity='0.5')
    order = spot_order(ex, side='SELL', type='STOP_LOSS', trailingDelta='500')
    info = ex.private_get_order({'symbol': 'BTCUSDT', 'orderId': order['orderId']})
    assert info['trailingDelta'] == 500 and info['status'] == 'NEW'
    sim.step()
    info = ex.private_get_order({'symbol': 'BTCUSDT', 'orderId': order['orderId']})
    # highest 110, 5 % below is 104.5: reached on the way down, not at the low of 90
    assert info['status'] == 'FILLED' and info['stopPrice'] == '104.50000000'
    fill = ex.private_get_mytrades({'symbol': 'BTCUSDT', 'orderId': order['orderId']})
    assert Decimal(fill[0]['price']) == Decimal('104.5')


def test_spot_trailing_take_profit_buy_waits_for_its_stop_price(flat):
    sim, ex = flat
    order = spot_order(ex, side='BUY', type='TAKE_PROFIT_LIMIT', timeInForce='GTC',
                       price='96', stopPrice='95', trailingDelta='500')
    sim.advance(30 * 60)  # 110 then down to 95 at 35 min: not yet tracking
    assert ex.private_get_order({'symbol': 'BTCUSDT', 'orderId': order['orderId']})[
        'status'] == 'NEW'
    sim.step()  # tracks from 95, lowest 90, triggers 5 % above it at 94.5
    info = ex.private_get_order({'symbol': 'BTCUSDT', 'orderId': order['orderId']})
    # triggered, its limit of 96 meets the book at once: a taker fill from the ask
    assert info['stopPrice'] == '94.50000000' and info['status'] == 'FILLED'
    fill = ex.private_get_mytrades({'symbol': 'BTCUSDT', 'orderId': order['orderId']})
    assert Decimal(fill[0]['price']) == Decimal('94.51') and fill[0]['isMaker'] is False


@pytest.mark.parametrize('params,code', [
    ({'trailingDelta': '5'}, -1013), ({'trailingDelta': '2001'}, -1013),
    ({}, -1102)])
def test_spot_trailing_refusals(flat, params, code):
    sim, ex = flat
    spot_order(ex, side='BUY', type='MARKET', quantity='0.5')
    with pytest.raises(ccxt.ExchangeError, match=str(code)):
        spot_order(ex, side='SELL', type='STOP_LOSS', **params)
    filters = {f['filterType']: f for f in ex.market('BTC/USDT')['info']['filters']}
    assert filters['TRAILING_DELTA']['maxTrailingBelowDelta'] == 2000
    assert ex.market('BTC/USDT')['info']['allowTrailingStop'] is True


VENUES = {'usdm': ('fut', 'fapiPrivate', 'BTCUSDT', '1'),
          'coinm': ('coinm', 'dapiPrivate', 'BTCUSD_PERP', '1')}


@pytest.mark.parametrize('venue', list(VENUES))
@pytest.mark.parametrize('activation', [None, '105'])
def test_futures_trailing_stop_market(request, venue, activation):
    fixture, api, symbol, qty = VENUES[venue]
    sim, ex = request.getfixturevalue(fixture)
    call = lambda name, params: getattr(ex, api + name)(params)  # noqa: E731
    call('PostOrder', {'symbol': symbol, 'side': 'BUY', 'type': 'MARKET', 'quantity': qty})
    params = {'algoType': 'CONDITIONAL', 'symbol': symbol, 'side': 'SELL',
              'type': 'TRAILING_STOP_MARKET', 'quantity': qty, 'callbackRate': '5',
              'reduceOnly': 'true'}
    if activation:
        params['activatePrice'] = activation
    algo = call('PostAlgoOrder', params)
    assert algo['orderType'] == 'TRAILING_STOP_MARKET' and algo['callbackRate'] == '5.0'
    assert algo['activatePrice'] == (activation and '105.00000000' or '')
    sim.step()
    algo = call('GetAlgoOrder', {'algoId': algo['algoId']})
    assert algo['algoStatus'] == 'FINISHED' and Decimal(algo['triggerPrice']) == Decimal('104.5')
    fill = call('GetUserTrades', {'symbol': symbol, 'orderId': algo['actualOrderId']})
    assert Decimal(fill[0]['price']) == Decimal('104.5')
    risk = ex.fapiPrivateV2GetPositionRisk if venue == 'usdm' else ex.dapiPrivateGetPositionRisk
    assert Decimal(risk({'symbol': symbol})[0]['positionAmt']) == 0


@pytest.mark.parametrize('params,code', [
    ({'callbackRate': '0.05'}, -4071), ({'callbackRate': '11'}, -4071),
    ({'callbackRate': '1', 'activatePrice': '99'}, -2021), ({}, -1102)])
def test_futures_trailing_refusals(fut, params, code):
    sim, ex = fut
    base = {'algoType': 'CONDITIONAL', 'symbol': 'BTCUSDT', 'side': 'SELL',
            'type': 'TRAILING_STOP_MARKET', 'quantity': '1'}
    with pytest.raises(ccxt.ExchangeError, match=str(code)):
        ex.fapiPrivatePostAlgoOrder(dict(base, **params))
