"""Futures order modify (PUT order), batch orders (POST/PUT/DELETE batchOrders) and
priceMatch on USD-M and COIN-M, through the real ccxt, as Binance documents them."""
import json
from decimal import Decimal

import ccxt
import pytest

VENUES = {'usdm': ('fut', 'fapiPrivate', 'BTC/USDT:USDT', 'BTCUSDT', 1),
          'coinm': ('coinm', 'dapiPrivate', 'BTC/USD:BTC', 'BTCUSD_PERP', 1)}


@pytest.fixture(params=list(VENUES))
def venue(request):
    fixture, api, symbol, market_id, qty = VENUES[request.param]
    sim, ex = request.getfixturevalue(fixture)
    call = lambda name, params: getattr(ex, api + name)(dict(params))  # noqa: E731
    return sim, ex, call, symbol, market_id, qty


def test_batch_orders_answer_each_item_in_place(venue):
    sim, ex, call, symbol, market_id, qty = venue
    items = [{'symbol': market_id, 'side': 'BUY', 'type': 'LIMIT', 'timeInForce': 'GTC',
              'quantity': str(qty), 'price': '95'},
             {'symbol': market_id, 'side': 'BUY', 'type': 'LIMIT', 'timeInForce': 'GTC',
              'quantity': str(qty), 'price': '95.05'},          # off the 0.1 tick
             {'symbol': market_id, 'side': 'SELL', 'type': 'STOP_MARKET', 'quantity': str(qty),
              'stopPrice': '90'}]                                 # conditional: algo service
    # ccxt JSON-encodes the list itself, as Binance expects
    out = call('PostBatchOrders', {'batchOrders': [dict(i) for i in items]})
    assert out[0]['status'] == 'NEW' and out[0]['price'] == '95.00000000'
    assert out[1] == {'code': -4014, 'msg': 'Price not increased by tick size.'}
    assert out[2]['code'] == -1116
    assert [o['orderId'] for o in call('GetOpenOrders', {'symbol': market_id})] == \
        [out[0]['orderId']]
    with pytest.raises(ccxt.BadRequest, match='-1130'):
        call('PostBatchOrders', {'batchOrders': [dict(i) for i in items * 2]})  # > 5
    second = call('PostBatchOrders', {'batchOrders': [dict(items[0])]})[0]
    # ccxt sends the id list as ``orderidlist``: read case-insensitively like Binance
    canceled = ex.cancel_orders([str(out[0]['orderId']), str(second['orderId']), '424242'],
                                symbol)
    assert [c['status'] for c in canceled[:2]] == ['canceled', 'canceled']
    assert json.loads(ex.last_http_response)[2] == {'code': -2011,
                                                    'msg': 'Unknown order sent.'}


def test_modify_reprices_requeues_and_can_fill(venue):
    sim, ex, call, symbol, market_id, qty = venue
    order = call('PostOrder', {'symbol': market_id, 'side': 'BUY', 'type': 'LIMIT',
                               'timeInForce': 'GTC', 'quantity': qty, 'price': '95'})
    other = call('PostOrder', {'symbol': market_id, 'side': 'BUY', 'type': 'LIMIT',
                               'timeInForce': 'GTC', 'quantity': qty, 'price': '95'})
    moved = call('PutOrder', {'symbol': market_id, 'orderId': order['orderId'], 'side': 'BUY',
                              'quantity': 2 * qty, 'price': '96'})
    assert moved['status'] == 'NEW' and moved['price'] == '96.00000000'
    assert Decimal(moved['origQty']) == 2 * qty
    open_ids = [o['orderId'] for o in call('GetOpenOrders', {'symbol': market_id})]
    assert open_ids == [other['orderId'], order['orderId']]  # behind the queue now
    with pytest.raises(ccxt.ExchangeError, match='-5027'):
        call('PutOrder', {'symbol': market_id, 'orderId': order['orderId'], 'side': 'BUY',
                          'quantity': 2 * qty, 'price': '96'})
    with pytest.raises(ccxt.BadRequest, match='-4014'):
        call('PutOrder', {'symbol': market_id, 'orderId': order['orderId'], 'side': 'BUY',
                          'quantity': 2 * qty, 'price': '96.05'})
    assert call('GetOrder', {'symbol': market_id, 'orderId': order['orderId']})[
        'price'] == '96.00000000'  # a refused modify keeps the order as it was
    edited = ex.edit_order(str(order['orderId']), symbol, 'limit', 'buy', qty, 101)
    assert edited['status'] == 'closed' and edited['filled'] == qty  # crossed: took the ask


def test_modify_that_would_take_cancels_a_post_only_order(venue):
    sim, ex, call, symbol, market_id, qty = venue
    order = call('PostOrder', {'symbol': market_id, 'side': 'BUY', 'type': 'LIMIT',
                               'timeInForce': 'GTX', 'quantity': qty, 'price': '95'})
    out = call('PutOrder', {'symbol': market_id, 'orderId': order['orderId'], 'side': 'BUY',
                            'quantity': qty, 'price': '101'})
    assert out['status'] == 'CANCELED'


@pytest.mark.parametrize('mode,side,expected', [
    ('OPPONENT', 'BUY', '100.1'), ('OPPONENT_5', 'BUY', '100.5'), ('QUEUE', 'BUY', '100'),
    ('QUEUE_20', 'BUY', '98.1'), ('OPPONENT_10', 'SELL', '99.1'), ('QUEUE_5', 'SELL', '100.5')])
def test_price_match_prices_from_the_book(venue, mode, side, expected):
    sim, ex, call, symbol, market_id, qty = venue
    order = {'symbol': market_id, 'side': side, 'type': 'LIMIT', 'timeInForce': 'GTC',
             'quantity': qty, 'priceMatch': mode}
    out = call('PostOrder', order)
    assert Decimal(out['price']) == Decimal(expected) and out['priceMatch'] == mode
    with pytest.raises(ccxt.BadRequest, match='-1106'):
        call('PostOrder', dict(order, price='99'))


def test_usdm_test_order_validates_and_places_nothing(fut):
    sim, ex = fut
    order = {'symbol': 'BTCUSDT', 'side': 'BUY', 'type': 'LIMIT', 'timeInForce': 'GTC',
             'quantity': '1', 'price': '95'}
    assert ex.fapiPrivatePostOrderTest(dict(order)) == {}
    with pytest.raises(ccxt.BadRequest, match='-4014'):
        ex.fapiPrivatePostOrderTest(dict(order, price='95.05'))
    sim.set_balance('USDT', 10, market='futures')
    with pytest.raises(ccxt.ExchangeError, match='-2019'):  # 20x: 23.75 USDT of margin
        ex.fapiPrivatePostOrderTest(dict(order, quantity='5'))
    with pytest.raises(ccxt.ExchangeError, match='-4061'):
        ex.fapiPrivatePostOrderTest(dict(order, positionSide='LONG'))
    assert ex.fapiPrivateGetOpenOrders({'symbol': 'BTCUSDT'}) == []
    assert sim.balances(market='futures')['USDT']['order_margin'] == 0
