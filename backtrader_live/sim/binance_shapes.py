"""Binance spot payload shapes: pure functions from engine records to the JSON
of exchangeInfo, klines, orders, cancels and trades (REST and WS-API alike)."""
from .models import fmt

ORDER_TYPES = ['LIMIT', 'LIMIT_MAKER', 'MARKET', 'STOP_LOSS', 'STOP_LOSS_LIMIT',
               'TAKE_PROFIT', 'TAKE_PROFIT_LIMIT']
#: trailingDelta bounds in BIPS (the TRAILING_DELTA filter), above and below
TRAILING_DELTA = (10, 2000)


def symbol_info(r):
    """One exchangeInfo ``symbols[]`` entry, shaped like the real one."""
    return {
        'symbol': r.symbol, 'status': 'TRADING', 'baseAsset': r.base,
        'baseAssetPrecision': r.base_precision, 'quoteAsset': r.quote,
        'quotePrecision': r.quote_precision, 'quoteAssetPrecision': r.quote_precision,
        'baseCommissionPrecision': 8, 'quoteCommissionPrecision': 8,
        'orderTypes': ORDER_TYPES, 'icebergAllowed': True, 'ocoAllowed': False,
        'otoAllowed': False, 'quoteOrderQtyMarketAllowed': True,
        'allowTrailingStop': True, 'cancelReplaceAllowed': False,
        'isSpotTradingAllowed': True, 'isMarginTradingAllowed': False,
        'filters': [
            {'filterType': 'PRICE_FILTER', 'minPrice': fmt(r.min_price),
             'maxPrice': fmt(r.max_price), 'tickSize': fmt(r.tick)},
            {'filterType': 'LOT_SIZE', 'minQty': fmt(r.min_qty), 'maxQty': fmt(r.max_qty),
             'stepSize': fmt(r.step)},
            {'filterType': 'MARKET_LOT_SIZE', 'minQty': fmt(0), 'maxQty': fmt(r.max_qty),
             'stepSize': fmt(0)},
            {'filterType': 'NOTIONAL', 'minNotional': fmt(r.min_notional),
             'applyMinToMarket': True, 'maxNotional': '9000000.00000000',
             'applyMaxToMarket': False, 'avgPriceMins': 5},
            {'filterType': 'TRAILING_DELTA', 'minTrailingAboveDelta': TRAILING_DELTA[0],
             'maxTrailingAboveDelta': TRAILING_DELTA[1],
             'minTrailingBelowDelta': TRAILING_DELTA[0],
             'maxTrailingBelowDelta': TRAILING_DELTA[1]}],
        'permissions': [], 'permissionSets': [['SPOT']],
        'defaultSelfTradePreventionMode': 'EXPIRE_MAKER',
        'allowedSelfTradePreventionModes': ['NONE', 'EXPIRE_TAKER', 'EXPIRE_MAKER',
                                            'EXPIRE_BOTH']}


def kline_row(r, end):
    """A REST kline row; trade counts and taker volumes are synthesised."""
    t, o, h, l, c, v = r
    return [t, '%.8f' % o, '%.8f' % h, '%.8f' % l, '%.8f' % c, '%.8f' % v, end - 1,
            '%.8f' % (v * (o + c) / 2), trade_count(v), '%.8f' % (v / 2),
            '%.8f' % (v * (o + c) / 4), '0']


def trade_count(volume):
    return int(volume * 10) + (1 if volume > 0 else 0)


def order_info(o):
    """GET /api/v3/order shape."""
    return {
        'symbol': o.symbol, 'orderId': o.id, 'orderListId': -1,
        'clientOrderId': o.client_id, 'price': fmt(o.price), 'origQty': fmt(o.qty),
        'executedQty': fmt(o.executed), 'cummulativeQuoteQty': fmt(o.cum_quote),
        'status': o.status, 'timeInForce': o.tif, 'type': o.type, 'side': o.side,
        'stopPrice': fmt(o.stop_price), 'icebergQty': fmt(0), 'time': o.time,
        'updateTime': o.update_time, 'isWorking': o.triggered,
        'workingTime': o.working_time, 'origQuoteOrderQty': fmt(o.quote_qty),
        'selfTradePreventionMode': 'EXPIRE_MAKER', **trailing_fields(o)}


def trailing_fields(o):
    """A trailing stop's ``trailingDelta`` (and ``trailingTime`` once tracking)."""
    if 'trailing_delta' not in o.extra:
        return {}
    return {'trailingDelta': o.extra['trailing_delta'], 'trailingTime': -1}


def order_reply(o, kind, trades):
    """POST /api/v3/order reply for newOrderRespType ACK, RESULT or FULL."""
    out = {'symbol': o.symbol, 'orderId': o.id, 'orderListId': -1,
           'clientOrderId': o.client_id, 'transactTime': o.time}
    if kind == 'ACK':
        return out
    out.update({
        'price': fmt(o.price), 'origQty': fmt(o.qty), 'executedQty': fmt(o.executed),
        'origQuoteOrderQty': fmt(o.quote_qty), 'cummulativeQuoteQty': fmt(o.cum_quote),
        'status': o.status, 'timeInForce': o.tif, 'type': o.type, 'side': o.side,
        'workingTime': o.working_time, 'selfTradePreventionMode': 'EXPIRE_MAKER'})
    if o.stop_price:
        out['stopPrice'] = fmt(o.stop_price)
    if kind == 'FULL':
        out['fills'] = [{'price': fmt(t.price), 'qty': fmt(t.qty),
                         'commission': fmt(t.commission),
                         'commissionAsset': t.commission_asset, 'tradeId': t.id}
                        for t in trades[-200:] if t.order_id == o.id]
    return out


def cancel_reply(o):
    return {'symbol': o.symbol, 'origClientOrderId': o.client_id, 'orderId': o.id,
            'orderListId': -1, 'clientOrderId': o.cancel_tag, 'transactTime': o.update_time,
            'price': fmt(o.price), 'origQty': fmt(o.qty), 'executedQty': fmt(o.executed),
            'origQuoteOrderQty': fmt(o.quote_qty), 'cummulativeQuoteQty': fmt(o.cum_quote),
            'status': o.status, 'timeInForce': o.tif, 'type': o.type, 'side': o.side,
            'stopPrice': fmt(o.stop_price), 'selfTradePreventionMode': 'EXPIRE_MAKER'}


def trade_info(t):
    return {'symbol': t.symbol, 'id': t.id, 'orderId': t.order_id, 'orderListId': -1,
            'price': fmt(t.price), 'qty': fmt(t.qty), 'quoteQty': fmt(t.quote_qty),
            'commission': fmt(t.commission), 'commissionAsset': t.commission_asset,
            'time': t.time, 'isBuyer': t.side == 'BUY', 'isMaker': t.is_maker,
            'isBestMatch': True}
