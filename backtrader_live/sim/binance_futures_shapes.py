"""Binance futures payload shapes and error table (USD-M and COIN-M).

Pure functions from engine records to the exchange's JSON, kept apart from the
handlers so both REST (:mod:`.binance_futures`) and the user-data stream
(:mod:`.binance_futures_ws`) use the same field names.
"""
from .models import OPEN_STATUSES, ZERO, fmt

PERPETUAL_DELIVERY = 4133404800000  # Binance's deliveryDate of a perpetual
ONBOARD = 1569398400000
FUTURES_ORDER_TYPES = ['LIMIT', 'MARKET', 'STOP', 'STOP_MARKET', 'TAKE_PROFIT',
                       'TAKE_PROFIT_MARKET', 'TRAILING_STOP_MARKET']
ALGO_TYPES = ('STOP', 'STOP_MARKET', 'TAKE_PROFIT', 'TAKE_PROFIT_MARKET',
              'TRAILING_STOP_MARKET')
# a conditional order triggers when the price rises to it (True) or falls to it
TRIGGER_ABOVE = {('STOP', 'BUY'): True, ('STOP_MARKET', 'BUY'): True,
                 ('STOP', 'SELL'): False, ('STOP_MARKET', 'SELL'): False,
                 ('TAKE_PROFIT', 'BUY'): False, ('TAKE_PROFIT_MARKET', 'BUY'): False,
                 ('TAKE_PROFIT', 'SELL'): True, ('TAKE_PROFIT_MARKET', 'SELL'): True}

# engine refusal -> (HTTP status, Binance futures code, message)
ENGINE_ERRORS = {
    'insufficient_margin': (400, -2019, 'Margin is insufficient.'),
    'insufficient_balance': (400, -2019, 'Margin is insufficient.'),
    'reduce_only': (400, -2022, 'ReduceOnly Order is rejected.'),
    'would_trigger': (400, -2021, 'Order would immediately trigger.'),
    'would_take': (400, -5022, 'Due to the order could not be executed as maker, '
                               'the Post Only order will be rejected.'),
    'duplicate': (400, -4116, 'ClientOrderId is duplicated.'),
    'filter_price': (400, -4014, 'Price not increased by tick size.'),
    'filter_lot': (400, -1111, 'Precision is over the maximum defined for this asset.'),
    'filter_notional': (400, -4164, "Order's notional must be no smaller than %s "
                                    "(unless you choose reduce only)."),
    'unknown_symbol': (400, -1121, 'Invalid symbol.'),
    'unknown_order': (400, -2011, 'Unknown order sent.'),
    'bad_leverage': (400, -4028, 'Leverage %s is not valid'),
    'no_change': (400, -4046, 'No need to change margin type.'),
    'position_exists': (400, -4048, 'Margin type cannot be changed if there exists position.'),
    'open_orders_exist': (400, -4047,
                          'Margin type cannot be changed if there exists open orders.'),
    'bad_param': (400, -1102, "Mandatory parameter '%s' was not sent, was empty/null, "
                              "or malformed."),
}


#: priceMatch -> (the side of the book it prices from, levels from the top):
#: OPPONENT* the other side (a buy: asks), QUEUE* its own side (a buy: bids)
PRICE_MATCH = {'OPPONENT': ('opponent', 1), 'OPPONENT_5': ('opponent', 5),
               'OPPONENT_10': ('opponent', 10), 'OPPONENT_20': ('opponent', 20),
               'QUEUE': ('queue', 1), 'QUEUE_5': ('queue', 5), 'QUEUE_10': ('queue', 10),
               'QUEUE_20': ('queue', 20)}


def match_price(bid, ask, tick, side, mode):
    """The limit price ``priceMatch=mode`` gives a ``side`` order on this book."""
    book, level = PRICE_MATCH[mode]
    above = (side == 'BUY') == (book == 'opponent')  # the asks (priced upwards)
    return ask + (level - 1) * tick if above else bid - (level - 1) * tick


def decimals(step):
    return max(0, -step.normalize().as_tuple().exponent)


def futures_symbol_info(r, inverse):
    """One exchangeInfo ``symbols[]`` entry of a perpetual."""
    filters = [
        {'filterType': 'PRICE_FILTER', 'minPrice': fmt(r.min_price), 'maxPrice':
         fmt(r.max_price), 'tickSize': fmt(r.tick)},
        {'filterType': 'LOT_SIZE', 'minQty': fmt(r.min_qty), 'maxQty': fmt(r.max_qty),
         'stepSize': fmt(r.step)},
        {'filterType': 'MARKET_LOT_SIZE', 'minQty': fmt(r.min_qty), 'maxQty': fmt(r.max_qty),
         'stepSize': fmt(r.step)},
        {'filterType': 'MAX_NUM_ORDERS', 'limit': 200},
        {'filterType': 'MAX_NUM_ALGO_ORDERS', 'limit': 10},
        {'filterType': 'PERCENT_PRICE', 'multiplierUp': '1.0500', 'multiplierDown': '0.9500',
         'multiplierDecimal': '4'}]
    if not inverse:  # USD-M carries a minimum notional, keyed 'notional'
        filters.insert(4, {'filterType': 'MIN_NOTIONAL', 'notional': fmt(r.min_notional)})
    out = {
        'symbol': r.symbol, 'pair': r.symbol.split('_')[0], 'contractType': 'PERPETUAL',
        'deliveryDate': PERPETUAL_DELIVERY, 'onboardDate': ONBOARD,
        'maintMarginPercent': fmt(r.mmr * 100, 4), 'requiredMarginPercent':
        fmt(100 / r.max_leverage, 4), 'baseAsset': r.base, 'quoteAsset': r.quote,
        'marginAsset': r.settle, 'pricePrecision': decimals(r.tick),
        'quantityPrecision': decimals(r.step), 'baseAssetPrecision': 8,
        'quotePrecision': 8, 'underlyingType': 'COIN', 'underlyingSubType': ['PoW'],
        'triggerProtect': '0.0500', 'liquidationFee': '0.012500', 'marketTakeBound': '0.05',
        'maxMoveOrderLimit': 10000, 'filters': filters, 'orderTypes': FUTURES_ORDER_TYPES,
        'timeInForce': ['GTC', 'IOC', 'FOK', 'GTX', 'GTD']}
    if inverse:
        out.update({'contractStatus': 'TRADING', 'contractSize': int(r.contract_size),
                    'equalQtyPrecision': 4})
    else:
        out.update({'status': 'TRADING', 'settlePlan': 0})
    return out


def avg_price(o, rules):
    if not o.executed:
        return ZERO
    if rules.inverse:  # cum_quote holds the coin value: contracts*size/avg
        return o.executed * rules.contract_size / o.cum_quote if o.cum_quote else ZERO
    return o.cum_quote / (o.executed * rules.contract_size)


def order_info(o, rules):
    """A futures order (POST/GET/DELETE /order, openOrders, allOrders)."""
    out = {
        'orderId': o.id, 'symbol': o.symbol, 'status': o.status, 'clientOrderId': o.client_id,
        'price': fmt(o.price), 'avgPrice': fmt(avg_price(o, rules)), 'origQty': fmt(o.qty),
        'executedQty': fmt(o.executed), 'cumQty': fmt(o.executed),
        'timeInForce': o.tif, 'type': o.type, 'reduceOnly': o.reduce_only,
        'closePosition': o.close_position, 'side': o.side, 'positionSide': 'BOTH',
        'stopPrice': fmt(o.stop_price), 'workingType': 'CONTRACT_PRICE',
        'priceProtect': False, 'origType': o.type,
        'priceMatch': o.extra.get('price_match', 'NONE'),
        'selfTradePreventionMode': 'EXPIRE_MAKER', 'goodTillDate': 0,
        'time': o.time, 'updateTime': o.update_time}
    if rules.inverse:
        out.update({'pair': o.symbol.split('_')[0], 'cumBase': fmt(o.cum_quote)})
    else:
        out['cumQuote'] = fmt(o.cum_quote)
    if 'callback_rate' in o.extra:
        out.update(trailing_fields(o, 'priceRate'))
    return out


def trailing_fields(o, rate_key):
    """A TRAILING_STOP_MARKET's activation price and callback rate."""
    activation = o.extra.get('activation')
    return {'activatePrice': fmt(activation) if activation is not None else '',
            rate_key: fmt(o.extra['callback_rate'], 1)}


def algo_status(o):
    if not o.triggered:
        return 'NEW' if o.is_open else o.status  # CANCELED / EXPIRED before the trigger
    return 'TRIGGERED' if o.status in OPEN_STATUSES else 'FINISHED'


def algo_info(o, rules=None):
    """A conditional order of the Algo Service (POST/GET /algoOrder, openAlgoOrders)."""
    return {
        'algoId': o.id, 'clientAlgoId': o.client_id, 'algoType': 'CONDITIONAL',
        'orderType': o.type, 'symbol': o.symbol, 'side': o.side, 'positionSide': 'BOTH',
        'timeInForce': o.tif, 'quantity': fmt(o.qty), 'algoStatus': algo_status(o),
        'actualOrderId': str(o.id) if o.triggered else '',
        'actualPrice': fmt(avg_price(o, rules)) if rules and o.executed else '0',
        'triggerPrice': fmt(o.stop_price), 'price': fmt(o.price), 'icebergQuantity': None,
        'selfTradePreventionMode': 'EXPIRE_MAKER', 'workingType': 'CONTRACT_PRICE',
        'priceMatch': 'NONE', 'closePosition': o.close_position, 'priceProtect': False,
        'reduceOnly': o.reduce_only, 'createTime': o.time, 'updateTime': o.update_time,
        'triggerTime': o.working_time if o.triggered else 0, 'goodTillDate': 0,
        **(trailing_fields(o, 'callbackRate') if 'callback_rate' in o.extra else {})}


def position_info(engine, acct, pos, inverse):
    """positionRisk entry (USD-M v2/v3 superset; COIN-M v1 with notionalValue)."""
    rules = engine.markets[pos.symbol]
    mark = engine.price_of(pos.symbol)
    isolated = engine.margin_mode(acct, pos.symbol) == 'isolated'
    margin = engine.position_margin(acct, pos) if pos.size else ZERO
    upnl = engine.unrealized(pos)
    notional = engine.notional(rules, pos.size, mark)
    out = {
        'symbol': pos.symbol, 'positionSide': 'BOTH', 'positionAmt': fmt(pos.size),
        'entryPrice': fmt(pos.entry), 'breakEvenPrice': fmt(pos.entry),
        'markPrice': fmt(mark), 'unRealizedProfit': fmt(upnl),
        'liquidationPrice': fmt(engine.liquidation_price(acct, pos)),
        'isolatedMargin': fmt(margin + upnl if isolated and pos.size else 0),
        'isolatedWallet': fmt(margin if isolated else 0),
        'leverage': str(engine.leverage(acct, pos.symbol)),
        'marginType': 'isolated' if isolated else 'cross', 'isAutoAddMargin': 'false',
        'updateTime': pos.update_time}
    if inverse:
        out.update({'notionalValue': fmt(notional), 'maxQty': fmt(rules.max_qty)})
    else:
        out.update({'notional': fmt(notional), 'marginAsset': rules.settle,
                    'initialMargin': fmt(margin), 'positionInitialMargin': fmt(margin),
                    'maintMargin': fmt(rules.mmr * abs(notional)),
                    'openOrderInitialMargin': '0', 'adl': 0, 'bidNotional': '0',
                    'askNotional': '0', 'maxNotionalValue': fmt(rules.max_qty * 1000)})
    return out


def bracket(rules, inverse):
    """leverageBracket entry: one flat bracket at the market's maintenance rate."""
    entry = {'bracket': 1, 'initialLeverage': rules.max_leverage,
             'maintMarginRatio': float(rules.mmr), 'cum': 0.0}
    if inverse:
        entry.update({'qtyCap': float(rules.max_qty), 'qtyFloor': 0})
        return {'pair': rules.symbol.split('_')[0], 'symbol': rules.symbol,
                'brackets': [entry]}
    entry.update({'notionalCap': 1e9, 'notionalFloor': 0})
    return {'symbol': rules.symbol, 'notionalCoef': 1.0, 'brackets': [entry]}


def account_asset(asset, view, update_time, inverse):
    """One ``assets[]`` entry of /fapi/v3/account (and /dapi/v1/account)."""
    return {
        'asset': asset, 'walletBalance': fmt(view['wallet']),
        'unrealizedProfit': fmt(view['unrealized']), 'marginBalance':
        fmt(view['margin_balance']), 'maintMargin': fmt(view['maint']),
        'initialMargin': fmt(view['position_margin'] + view['order_margin']),
        'positionInitialMargin': fmt(view['position_margin']),
        'openOrderInitialMargin': fmt(view['order_margin']),
        'crossWalletBalance': fmt(view['wallet']), 'crossUnPnl': fmt(view['unrealized']),
        'availableBalance': fmt(view['available']),
        'maxWithdrawAmount': fmt(max(view['available'], ZERO)),
        'marginAvailable': True, 'updateTime': update_time or 0}


def trade_info(t, rules, inverse):
    out = {'symbol': t.symbol, 'id': t.id, 'orderId': t.order_id, 'side': t.side,
           'price': fmt(t.price), 'qty': fmt(t.qty), 'realizedPnl': fmt(t.realized_pnl),
           'commission': fmt(t.commission), 'commissionAsset': t.commission_asset,
           'time': t.time, 'positionSide': 'BOTH', 'buyer': t.side == 'BUY',
           'maker': t.is_maker}
    if inverse:
        out.update({'pair': t.symbol.split('_')[0], 'marginAsset': rules.settle,
                    'baseQty': fmt(t.quote_qty)})
    else:
        out.update({'marginAsset': rules.settle, 'quoteQty': fmt(t.quote_qty)})
    return out


# -- user-data stream events --------------------------------------------------------------
def order_trade_update(o, exec_type, trade, now, rules):
    status = o.status
    if exec_type == 'NEW':
        status = 'NEW'
    return {'e': 'ORDER_TRADE_UPDATE', 'E': now, 'T': now, 'o': {
        's': o.symbol, 'c': o.client_id, 'S': o.side,
        'o': 'LIQUIDATION' if o.extra.get('liquidation') else o.type, 'f': o.tif,
        'q': fmt(o.qty), 'p': fmt(o.price), 'ap': fmt(avg_price(o, rules)),
        'sp': fmt(o.stop_price), 'x': 'TRADE' if exec_type == 'TRADE' else exec_type,
        'X': status, 'i': o.id, 'l': fmt(trade.qty if trade else 0), 'z': fmt(o.executed),
        'L': fmt(trade.price if trade else 0), 'N': trade.commission_asset if trade else None,
        'n': fmt(trade.commission if trade else 0), 'T': trade.time if trade else o.update_time,
        't': trade.id if trade else 0, 'b': '0', 'a': '0',
        'm': bool(trade and trade.is_maker), 'R': o.reduce_only, 'wt': 'CONTRACT_PRICE',
        'ot': o.type, 'ps': 'BOTH', 'cp': o.close_position,
        'rp': fmt(trade.realized_pnl if trade else 0), 'pP': False, 'si': 0, 'ss': 0,
        'V': 'EXPIRE_MAKER', 'pm': o.extra.get('price_match', 'NONE'), 'gtd': 0,
        **({'AP': trailing_fields(o, 'cr')['activatePrice'] or '0',
            'cr': fmt(o.extra['callback_rate'], 1)} if 'callback_rate' in o.extra else {})}}


def account_update(engine, acct, reason, assets, symbols, now, change=ZERO):
    balances = [{'a': a, 'wb': fmt(acct.wallet.get(a, ZERO)),
                 'cw': fmt(acct.wallet.get(a, ZERO)), 'bc': fmt(change)} for a in assets]
    positions = []
    for s in symbols:
        pos = acct.position(s)
        isolated = engine.margin_mode(acct, s) == 'isolated'
        positions.append({
            's': s, 'pa': fmt(pos.size), 'ep': fmt(pos.entry), 'bep': fmt(pos.entry),
            'cr': fmt(pos.realized), 'up': fmt(engine.unrealized(pos)),
            'mt': 'isolated' if isolated else 'cross',
            'iw': fmt(engine.position_margin(acct, pos) if isolated and pos.size else 0),
            'ps': 'BOTH'})
    return {'e': 'ACCOUNT_UPDATE', 'E': now, 'T': now,
            'a': {'m': reason, 'B': balances, 'P': positions}}


def algo_update(o, now, rules):
    info = algo_info(o, rules)
    return {'e': 'ALGO_UPDATE', 'T': now, 'E': now, 'o': {
        'caid': o.client_id, 'aid': o.id, 'at': 'CONDITIONAL', 'o': o.type, 's': o.symbol,
        'S': o.side, 'ps': 'BOTH', 'f': o.tif, 'q': fmt(o.qty), 'X': info['algoStatus'],
        'ai': info['actualOrderId'], 'ap': info['actualPrice'], 'aq': fmt(o.executed),
        'act': 'MARKET' if o.type.endswith('MARKET') else 'LIMIT',
        'tp': fmt(o.stop_price), 'p': fmt(o.price), 'V': 'EXPIRE_MAKER',
        'wt': 'CONTRACT_PRICE', 'pm': 'NONE', 'cp': o.close_position, 'pP': False,
        'R': o.reduce_only, 'tt': info['triggerTime'], 'gtd': 0, 'rm': ''}}
