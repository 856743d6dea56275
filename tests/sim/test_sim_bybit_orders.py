"""Bybit v5 orders and account as Bybit documents them: fees, wallet totals,
spot order fields, amend, batches and position TP/SL (through the real ccxt).

Synthetic path (simutil.write_data): flat at 100, then every hourly bar
100 -> 110 -> 90 -> 100; the clock starts on a bar open at 100.
"""
from decimal import Decimal as D

import ccxt
import pytest

from venues import BYBIT
from venues import VENUES as _VENUES

# The one venue table (tests/venues.py): Bybit's category, symbol, the test's
# order size.
_QTY = {'bybit-spot': 0.1, 'bybit-linear': 0.1, 'bybit-inverse': 100}
VENUES = [(_VENUES[v][1], _VENUES[v][2], _QTY[v]) for v in BYBIT]
CONTRACTS = [v for v in VENUES if v[0] != 'spot']
SPOT_PARAMS = {'marketUnit': 'baseCoin'}


def market_buy(ex, cat, symbol, qty, **params):
    return ex.create_order(symbol, 'market', 'buy', qty,
                           params=dict(SPOT_PARAMS if cat == 'spot' else {}, **params))


@pytest.mark.parametrize('cat,symbol,qty', VENUES)
def test_cum_exec_fee_is_the_sum_of_the_fills_fees(bybit, cat, symbol, qty):
    s, ex = bybit
    o = market_buy(ex, cat, symbol, qty)
    execs = ex.privateGetV5ExecutionList({'category': cat, 'orderId': o['id']})
    fees = sum(D(e['execFee']) for e in execs['result']['list'])
    assert fees > 0
    got = ex.fetch_order(o['id'], symbol, params={'acknowledged': True})
    assert D(got['info']['cumExecFee']) == fees
    assert got['fee']['cost'] == float(fees)
    assert got['fee']['currency'] == ('BTC' if cat != 'linear' else 'USDT')


def test_wallet_totals_are_computed_in_dollars(bybit):
    s, ex = bybit
    ex.create_order('BTC/USDT:USDT', 'market', 'buy', 1)      # a long at the ask 100.1
    s.advance(1200)                                           # price 110: a profit
    r = ex.privateGetV5AccountWalletBalance({'accountType': 'UNIFIED'})
    w = r['result']['list'][0]
    coins = {c['coin']: c for c in w['coin']}
    usdt, btc = coins['USDT'], coins['BTC']
    assert D(btc['usdValue']) == D(btc['equity']) * 110
    assert D(usdt['usdValue']) == D(usdt['equity'])
    assert D(usdt['unrealisedPnl']) == D('9.9')               # (110 - 100.1) x 1
    assert D(w['totalWalletBalance']) == D(usdt['walletBalance']) + D(btc['walletBalance']) * 110
    assert D(w['totalPerpUPL']) == D('9.9')
    assert D(w['totalEquity']) == D(usdt['usdValue']) + D(btc['usdValue'])
    assert D(w['totalMarginBalance']) == D(w['totalWalletBalance']) + D('9.9')
    im = D(usdt['totalPositionIM'])
    assert im > 0 and D(w['totalInitialMargin']) == im
    assert D(w['totalAvailableBalance']) == D(w['totalMarginBalance']) - im
    assert D(usdt['availableToWithdraw']) > 0
    only = ex.privateGetV5AccountWalletBalance({'accountType': 'UNIFIED', 'coin': 'BTC'})
    assert [c['coin'] for c in only['result']['list'][0]['coin']] == ['BTC']
    assert only['result']['list'][0]['totalEquity'] == w['totalEquity']   # account totals


def test_spot_orders_carry_no_contract_fields(bybit):
    s, ex = bybit
    o = market_buy(ex, 'spot', 'BTC/USDT', 0.1)
    [spot] = ex.privateGetV5OrderHistory({'category': 'spot'})['result']['list']
    assert 'tpslMode' not in spot and 'createType' not in spot
    # without a market hint ccxt tells spot from contracts by that very field
    assert ex.parse_order(spot)['symbol'] == 'BTC/USDT'
    ex.create_order('BTC/USDT:USDT', 'market', 'buy', 0.1)
    [lin] = ex.privateGetV5OrderHistory({'category': 'linear'})['result']['list']
    assert 'tpslMode' in lin and ex.parse_order(lin)['symbol'] == 'BTC/USDT:USDT'
    assert o['id'] == spot['orderId']


@pytest.mark.parametrize('cat,symbol,qty', VENUES)
def test_amend_changes_an_open_order_in_place(bybit, cat, symbol, qty):
    s, ex = bybit
    o = ex.create_order(symbol, 'limit', 'buy', qty, 95, params={'clientOrderId': 'am-1'})
    e = ex.edit_order(o['id'], symbol, 'limit', 'buy', qty * 2, 96)
    assert e['id'] == o['id']
    [got] = ex.fetch_open_orders(symbol)
    assert (got['price'], got['amount'], got['clientOrderId']) == (96, qty * 2, 'am-1')
    with pytest.raises(ccxt.InvalidOrder):                   # price off the tick grid
        ex.privatePostV5OrderAmend({'category': cat, 'symbol': got['info']['symbol'],
                                    'orderId': o['id'], 'price': '96.001'})
    [same] = ex.fetch_open_orders(symbol)
    assert same['price'] == 96                               # a refused amend changes nothing
    ex.edit_order(o['id'], symbol, 'limit', 'buy', qty * 2, 120)   # across the book
    done = ex.fetch_order(o['id'], symbol, params={'acknowledged': True})
    assert done['status'] == 'closed' and done['average'] < 101
    with pytest.raises(ccxt.OrderNotFound):
        ex.edit_order(o['id'], symbol, 'limit', 'buy', qty, 95)


@pytest.mark.parametrize('cat,symbol,qty', VENUES)
def test_batch_create_amend_cancel_item_by_item(bybit, cat, symbol, qty):
    s, ex = bybit
    sid = ex.market(symbol)['id']
    item = {'symbol': sid, 'side': 'Buy', 'orderType': 'Limit', 'qty': str(qty),
            'price': '95'}
    r = ex.privatePostV5OrderCreateBatch({'category': cat, 'request': [
        dict(item, orderLinkId='b-1'), dict(item, orderLinkId='b-1'),    # a duplicate
        dict(item, orderLinkId='b-2', price='95.001')]})                  # off the tick
    rows, infos = r['result']['list'], r['retExtInfo']['list']
    assert [i['code'] for i in infos][0] == 0 and infos[1]['code'] != 0
    assert infos[2]['code'] != 0 and rows[1]['orderId'] == rows[2]['orderId'] == ''
    assert rows[0]['createAt'] and len(ex.fetch_open_orders(symbol)) == 1
    r = ex.privatePostV5OrderAmendBatch({'category': cat, 'request': [
        {'symbol': sid, 'orderLinkId': 'b-1', 'price': '94'},
        {'symbol': sid, 'orderLinkId': 'nope', 'price': '94'}]})
    assert [i['code'] for i in r['retExtInfo']['list']][0] == 0
    assert r['retExtInfo']['list'][1]['code'] in (110001, 170213)
    assert ex.fetch_open_orders(symbol)[0]['price'] == 94
    r = ex.privatePostV5OrderCancelBatch({'category': cat, 'request': [
        {'symbol': sid, 'orderId': rows[0]['orderId']}]})
    assert r['retExtInfo']['list'][0]['code'] == 0 and ex.fetch_open_orders(symbol) == []


@pytest.mark.parametrize('cat,symbol,qty', CONTRACTS)
def test_order_take_profit_closes_the_position(bybit, cat, symbol, qty):
    s, ex = bybit
    ex.create_order(symbol, 'market', 'buy', qty, params={'takeProfit': 105, 'stopLoss': 95})
    ex.create_order(symbol, 'market', 'buy', qty)             # the stops follow the size
    [p] = ex.fetch_positions([symbol])
    assert (p['takeProfitPrice'], p['stopLossPrice']) == (105, 95)
    stops = ex.fetch_open_orders(symbol, params={'trigger': True})
    assert sorted((o['info']['stopOrderType'], o['triggerPrice'], o['amount'], o['reduceOnly'])
                  for o in stops) == [('StopLoss', 95, 2 * qty, True),
                                      ('TakeProfit', 105, 2 * qty, True)]
    s.step()                                                  # 100 -> 110: take profit
    assert s.positions() == []
    closed = {o['info']['stopOrderType']: (o['info']['orderStatus'], o['info']['cancelType'])
              for o in ex.fetch_closed_orders(symbol) if o['info']['stopOrderType']}
    assert closed == {'TakeProfit': ('Filled', 'UNKNOWN'),
                      'StopLoss': ('Deactivated', 'CancelByTpSlTsClear')}


@pytest.mark.parametrize('cat,symbol,qty', CONTRACTS)
def test_trading_stop_sets_changes_and_cancels(bybit, cat, symbol, qty):
    s, ex = bybit
    sid = ex.market(symbol)['id']
    req = {'category': cat, 'symbol': sid, 'tpslMode': 'Full', 'positionIdx': 0}
    with pytest.raises(ccxt.BadRequest, match='zero position'):
        ex.privatePostV5PositionTradingStop(dict(req, stopLoss='95'))
    ex.create_order(symbol, 'market', 'sell', qty)            # a short
    with pytest.raises(ccxt.BadRequest, match='StopLoss'):    # a short's SL lies above
        ex.privatePostV5PositionTradingStop(dict(req, stopLoss='95'))
    ex.privatePostV5PositionTradingStop(dict(req, stopLoss='108', takeProfit='80'))
    with pytest.raises(ccxt.ExchangeError):                   # 34040 not modified
        ex.privatePostV5PositionTradingStop(dict(req, stopLoss='108'))
    ex.privatePostV5PositionTradingStop(dict(req, takeProfit='0'))    # cancel the TP
    [p] = ex.fetch_positions([symbol])
    assert (p['takeProfitPrice'], p['stopLossPrice']) == (0, 108)
    s.step()                                                  # 100 -> 110: stopped out
    assert s.positions() == []
    assert ex.fetch_open_orders(symbol, params={'trigger': True}) == []


def test_unsupported_tpsl_is_refused_never_dropped(bybit):
    s, ex = bybit
    with pytest.raises(ccxt.BadRequest, match='spot'):
        ex.privatePostV5OrderCreate({'category': 'spot', 'symbol': 'BTCUSDT', 'side': 'Buy',
                                     'orderType': 'Limit', 'qty': '0.1', 'price': '95',
                                     'takeProfit': '120'})
    with pytest.raises(ccxt.BadRequest, match='Partial'):
        ex.create_order('BTC/USDT:USDT', 'limit', 'buy', 0.1, 95,
                        params={'takeProfit': 120, 'tpslMode': 'Partial', 'tpSize': '0.05'})
    with pytest.raises(ccxt.BadRequest, match='TakeProfit'):  # a long's TP below the price
        ex.create_order('BTC/USDT:USDT', 'limit', 'buy', 0.1, 95, params={'takeProfit': 90})
    assert ex.fetch_open_orders('BTC/USDT:USDT') == [] and s.orders() == []


def test_inverse_positions_list_without_symbol(bybit):
    s, ex = bybit
    ex.create_order('BTC/USD:BTC', 'market', 'buy', 100)
    r = ex.privateGetV5PositionList({'category': 'inverse'})
    assert [p['symbol'] for p in r['result']['list']] == ['BTCUSD']
    with pytest.raises(ccxt.BadRequest):                      # linear needs one of them
        ex.privateGetV5PositionList({'category': 'linear'})


def test_amend_batch_and_trading_stop_routes_take_injected_faults(bybit):
    s, ex = bybit
    o = ex.create_order('BTC/USDT:USDT', 'limit', 'buy', 0.1, 95)
    amend = s.faults.rest('amend_order', 'server_error', times=1)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        ex.edit_order(o['id'], 'BTC/USDT:USDT', 'limit', 'buy', 0.1, 96)
    assert amend.hits == 1
    assert ex.fetch_open_orders('BTC/USDT:USDT')[0]['price'] == 95   # never reached it
    batch = s.faults.rest('create_order', 'error', times=1, error='permission')
    with pytest.raises(ccxt.PermissionDenied):
        ex.privatePostV5OrderCreateBatch({'category': 'linear', 'request': [
            {'symbol': 'BTCUSDT', 'side': 'Buy', 'orderType': 'Limit', 'qty': '0.1',
             'price': '94'}]})
    assert batch.hits == 1 and len(ex.fetch_open_orders('BTC/USDT:USDT')) == 1
    stop = s.faults.rest('trading_stop', 'server_error', times=1)
    ex.create_order('BTC/USDT:USDT', 'market', 'buy', 0.1)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        ex.privatePostV5PositionTradingStop({'category': 'linear', 'symbol': 'BTCUSDT',
                                             'tpslMode': 'Full', 'positionIdx': 0,
                                             'takeProfit': '120'})
    assert stop.hits == 1 and ex.fetch_positions(['BTC/USDT:USDT'])[0]['takeProfitPrice'] == 0


def test_cancelling_a_stop_order_clears_the_positions_level(bybit):
    s, ex = bybit
    ex.create_order('BTC/USDT:USDT', 'market', 'buy', 0.1,
                    params={'takeProfit': 105, 'stopLoss': 95})
    [tp] = [o for o in ex.fetch_open_orders('BTC/USDT:USDT', params={'trigger': True})
            if o['info']['stopOrderType'] == 'TakeProfit']
    ex.cancel_order(tp['id'], 'BTC/USDT:USDT', params={'trigger': True})
    [p] = ex.fetch_positions(['BTC/USDT:USDT'])
    assert (p['takeProfitPrice'], p['stopLossPrice']) == (0, 95)
