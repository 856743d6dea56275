"""Bybit v5 payload shapes and error table (REST and the private WebSocket)."""
from .binance_futures_shapes import avg_price
from .models import ZERO, dec, fmt

#: Bybit interval code -> the simulator's interval name
BYBIT_INTERVALS = {'1': '1m', '3': '3m', '5': '5m', '15': '15m', '30': '30m', '60': '1h',
                   '120': '2h', '240': '4h', '360': '6h', '720': '12h', 'D': '1d',
                   'W': '1w', 'M': '1M'}


class BybitError(Exception):
    """A request Bybit refuses: HTTP 200 with ``retCode`` ``code`` and ``retMsg`` ``msg``."""

    def __init__(self, code, msg):
        super().__init__(msg)
        self.code, self.msg = code, msg


INTERVAL_CODES = {v: k for k, v in BYBIT_INTERVALS.items()}
CONTRACT_TYPES = {'linear': 'LinearPerpetual', 'inverse': 'InversePerpetual'}
STATUS = {'NEW': 'New', 'PARTIALLY_FILLED': 'PartiallyFilled', 'FILLED': 'Filled',
          'CANCELED': 'Cancelled', 'EXPIRED': 'Cancelled', 'REJECTED': 'Rejected'}
# Bybit has no "expired" status: an order its time in force ends is Cancelled
# with this rejectReason (v5 enums: no maker to fill an IOC, FOK not fully fillable).
EXPIRY_REASON = {'FOK': 'EC_CancelForNoFullFill'}
NO_IMMEDIATE_FILL = 'EC_NoImmediateQtyToFill'

# engine refusal -> (retCode, retMsg); (reason, is_spot) entries win over reason ones
ENGINE_ERRORS = {
    'insufficient_margin': (110007, 'ab not enough for new order'),
    'insufficient_balance': (110007, 'ab not enough for new order'),
    ('insufficient_balance', True): (170131, 'Insufficient balance.'),
    'reduce_only': (110017, 'Reduce-only rule not satisfied'),
    'would_trigger': (110092, 'expect Rising, but trigger_price[%s] <= current'),
    'would_take': (170193, 'Buy order price cannot be higher than best ask price'),
    'duplicate': (110072, 'OrderLinkedID is duplicate'),
    ('duplicate', True): (170141, 'Duplicate clientOrderId.'),
    'filter_price': (110094, 'Order price has too many decimals.'),
    ('filter_price', True): (170134, 'Order price has too many decimals.'),
    'filter_lot': (110094, 'Order quantity has too many decimals.'),
    ('filter_lot', True): (170137, 'Order quantity has too many decimals.'),
    'filter_notional': (110094, 'Order does not meet minimum order value 5USDT'),
    ('filter_notional', True): (170136, 'Order value exceeded lower limit.'),
    'unknown_symbol': (10001, 'Not supported symbols'),
    'unknown_order': (110001, 'order not exists or too late to cancel'),
}
# Bybit answers a post-only order that would take by cancelling it, not by an error;
# the simulator refuses it with the code above (documented simplification).
ENGINE_ERRORS[('would_take', False)] = (110094, 'Post only order would take liquidity')


def instrument(r, cat):
    """One instruments-info ``list[]`` item."""
    if cat == 'spot':
        return {'symbol': r.symbol, 'baseCoin': r.base, 'quoteCoin': r.quote,
                'innovation': '0', 'status': 'Trading', 'marginTrading': 'none',
                'stTag': '0', 'lotSizeFilter': {
                    'basePrecision': fmt(r.step), 'quotePrecision': fmt(r.tick),
                    'minOrderQty': fmt(r.min_qty), 'maxOrderQty': fmt(r.max_qty),
                    'minOrderAmt': fmt(r.min_notional), 'maxOrderAmt': '2000000'},
                'priceFilter': {'tickSize': fmt(r.tick)},
                'riskParameters': {'priceLimitRatioX': '0.01', 'priceLimitRatioY': '0.02'}}
    return {'symbol': r.symbol, 'contractType': CONTRACT_TYPES[cat], 'status': 'Trading',
            'baseCoin': r.base, 'quoteCoin': r.quote, 'settleCoin': r.settle,
            'launchTime': '1585526400000', 'deliveryTime': '0', 'deliveryFeeRate': '',
            'priceScale': str(max(0, -r.tick.normalize().as_tuple().exponent)),
            'leverageFilter': {'minLeverage': '1', 'maxLeverage': '%d.00' % r.max_leverage,
                               'leverageStep': '0.01'},
            'priceFilter': {'minPrice': fmt(r.min_price), 'maxPrice': fmt(r.max_price),
                            'tickSize': fmt(r.tick)},
            'lotSizeFilter': {'maxOrderQty': fmt(r.max_qty), 'minOrderQty': fmt(r.min_qty),
                              'qtyStep': fmt(r.step), 'postOnlyMaxOrderQty': fmt(r.max_qty),
                              'maxMktOrderQty': fmt(r.max_qty),
                              'minNotionalValue': fmt(r.min_notional)},
            'unifiedMarginTrade': True, 'fundingInterval': 480, 'copyTrading': 'both',
            'upperFundingRate': '0.00375', 'lowerFundingRate': '-0.00375',
            'isPreListing': False, 'preListingInfo': None}


#: coins worth one US dollar in the wallet's USD totals
USD_COINS = ('USDT', 'USDC', 'USD')


def usd_price(sim, coin):
    """A coin's dollar price: 1 for stable coins, else a spot or linear market's price."""
    if coin in USD_COINS:
        return dec(1)
    for cat in ('spot', 'linear'):
        for symbol, r in sim.category_markets(cat).items():
            if r.base == coin and r.quote in USD_COINS:
                return dec(sim.market_price(cat, symbol))
    return ZERO   # no dollar market: Bybit leaves such a coin out of the totals too


def _coin_item(sim, spot, contract, c):
    """One wallet ``coin[]`` item and its dollar figures."""
    free, locked = spot.balances.get(c, (ZERO, ZERO))
    view = sim.contracts.balance_view(contract, c)
    total = free + locked + view['wallet']
    equity = total + view['unrealized']
    order_im = view['order_margin'] + locked
    usd = usd_price(sim, c)
    item = {
        'coin': c, 'equity': fmt(equity), 'usdValue': fmt(equity * usd),
        'walletBalance': fmt(total), 'free': '', 'locked': fmt(locked),
        'spotHedgingQty': '0', 'borrowAmount': '0', 'accruedInterest': '0',
        'availableToWithdraw': fmt(free + max(view['available'], ZERO)),
        'availableToBorrow': '', 'totalOrderIM': fmt(order_im),
        'totalPositionIM': fmt(view['position_margin']),
        'totalPositionMM': fmt(view['maint']), 'unrealisedPnl': fmt(view['unrealized']),
        'cumRealisedPnl': fmt(sum((p.realized for p in contract.positions.values()
                                   if sim.contracts.markets[p.symbol].settle == c), ZERO)),
        'bonus': '0', 'marginCollateral': True, 'collateralSwitch': True,
        'spotBorrow': '0'}
    dollars = {'wallet': total * usd, 'equity': equity * usd,
               'upl': view['unrealized'] * usd,
               'im': (order_im + view['position_margin']) * usd, 'mm': view['maint'] * usd}
    return item, dollars


def wallet(sim, key, coin_filter=None):
    """The UNIFIED wallet: spot holdings plus the contract wallet, per coin; the
    account totals are in US dollars over every coin (not only the filtered ones).
    totalMarginBalance = wallet + perpetual unrealised PnL; available = margin
    balance - initial margin (open orders and positions)."""
    spot = sim.engine.accounts[key]
    contract = sim.contracts.accounts[key]
    coins = sorted(set(spot.balances) | set(contract.wallet))
    wanted = coin_filter.split(',') if coin_filter else coins
    items, sums = [], dict.fromkeys(('wallet', 'equity', 'upl', 'im', 'mm'), ZERO)
    for c in coins:
        item, dollars = _coin_item(sim, spot, contract, c)
        for k, v in dollars.items():
            sums[k] += v
        if c in wanted:
            items.append(item)
    margin = sums['wallet'] + sums['upl']
    return {'accountType': 'UNIFIED',
            'accountIMRate': fmt(sums['im'] / margin if margin > 0 else ZERO, 4),
            'accountMMRate': fmt(sums['mm'] / margin if margin > 0 else ZERO, 4),
            'totalEquity': fmt(sums['equity']), 'totalWalletBalance': fmt(sums['wallet']),
            'totalMarginBalance': fmt(margin),
            'totalAvailableBalance': fmt(max(margin - sums['im'], ZERO)),
            'totalPerpUPL': fmt(sums['upl']), 'totalInitialMargin': fmt(sums['im']),
            'totalMaintenanceMargin': fmt(sums['mm']), 'accountLTV': '0', 'coin': items}


def order_status(o):
    if o.stop_price and not o.triggered:
        return 'Untriggered' if o.is_open else 'Deactivated'
    if o.status in ('CANCELED', 'EXPIRED') and o.executed:
        return 'PartiallyFilledCanceled'
    return STATUS[o.status]


def reject_reason(o):
    if o.status != 'EXPIRED':
        return 'EC_NoError'
    return EXPIRY_REASON.get(o.extra.get('tif', o.tif), NO_IMMEDIATE_FILL)


def order_info(o, rules):
    """order/realtime and order/history item; also the private ``order`` topic's data.

    Spot orders carry no derivative-only field (``tpslMode``, ``createType``:
    clients such as ccxt tell a contract order or trade by their presence); ``cumExecFee`` is the sum of
    the order's fills' fees (``extra['cum_fee']``, kept by the simulator).
    """
    spot = o.extra.get('category') == 'spot'
    tp, sl = o.extra.get('tp'), o.extra.get('sl')
    item = {
        'orderId': str(o.id), 'orderLinkId': o.client_id, 'blockTradeId': '',
        'symbol': o.symbol, 'price': fmt(o.price) if o.is_limit else '0',
        'qty': fmt(o.qty if o.qty else o.quote_qty), 'side': o.side.capitalize(),
        'isLeverage': '0' if spot else '', 'positionIdx': 0, 'orderStatus': order_status(o),
        'cancelType': o.extra.get('cancel_type', 'CancelByUser') if o.status == 'CANCELED'
        else 'UNKNOWN',
        'rejectReason': reject_reason(o), 'avgPrice': fmt(avg_price(o, rules)) if o.executed else '',
        'leavesQty': fmt(o.remaining if o.is_open else 0),
        'leavesValue': fmt(o.remaining * o.price if o.is_open and o.is_limit else 0),
        'cumExecQty': fmt(o.executed), 'cumExecValue': fmt(o.cum_quote),
        'cumExecFee': fmt(o.extra.get('cum_fee', ZERO)),
        'cumFeeDetail': {o.extra['fee_asset']: fmt(o.extra['cum_fee'])}
        if 'fee_asset' in o.extra else {},
        'timeInForce': o.extra.get('tif', o.tif),
        'orderType': o.type, 'stopOrderType': o.extra.get('stop_type') or
        ('Stop' if o.stop_price else ''),
        'orderIv': '', 'marketUnit': 'quoteCoin' if o.quote_qty else 'baseCoin',
        'triggerPrice': fmt(o.stop_price) if o.stop_price else '',
        'takeProfit': fmt(tp) if tp else '', 'stopLoss': fmt(sl) if sl else '',
        'tpTriggerBy': 'LastPrice' if tp else '', 'slTriggerBy': 'LastPrice' if sl else '',
        'tpLimitPrice': '0', 'slLimitPrice': '0',
        'triggerDirection': o.extra.get('direction', 0), 'triggerBy': 'LastPrice' if
        o.stop_price else '', 'lastPriceOnCreated': '', 'reduceOnly': o.reduce_only,
        'closeOnTrigger': o.close_position, 'smpType': 'None', 'smpGroup': 0,
        'smpOrderId': '', 'placeType': '', 'createType': o.extra.get(
            'create_type', 'CreateByUser'),
        'tpslMode': 'Full' if tp or sl or o.extra.get('stop_type') else '',
        'category': o.extra.get('category', ''),
        'createdTime': str(o.time), 'updatedTime': str(o.update_time)}
    if spot:   # Bybit: linear/inverse only
        del item['tpslMode'], item['createType']
    return item


def execution_info(t, o, rules, funding=None):
    """execution/list item (and the private ``execution`` topic's data)."""
    if funding is not None:
        e = funding
        return {'symbol': e.symbol, 'orderId': '', 'orderLinkId': '', 'side':
                'Buy' if e.size > 0 else 'Sell', 'orderPrice': '0', 'orderQty': '0',
                'leavesQty': '0', 'orderType': 'UNKNOWN', 'stopOrderType': '',
                'execFee': fmt(-e.amount), 'execId': 'funding-%d' % e.id,
                'execPrice': fmt(e.mark), 'execQty': fmt(abs(e.size)), 'execType': 'Funding',
                'execValue': fmt(abs(e.size) * e.mark if not rules.inverse else
                                 abs(e.size) * rules.contract_size / e.mark),
                'feeRate': fmt(e.rate), 'isMaker': False, 'closedSize': '0',
                'execTime': str(e.time), 'markPrice': fmt(e.mark), 'feeCurrency': e.asset,
                'category': 'inverse' if rules.inverse else 'linear', 'seq': e.id}
    return {'symbol': t.symbol, 'orderId': str(t.order_id), 'orderLinkId': o.client_id,
            'side': t.side.capitalize(), 'orderPrice': fmt(o.price), 'orderQty': fmt(o.qty),
            'leavesQty': fmt(o.remaining if o.is_open else 0), 'orderType': o.type,
            'stopOrderType': '', 'execFee': fmt(t.commission), 'feeCurrency':
            t.commission_asset, 'execId': str(t.id), 'execPrice': fmt(t.price),
            'execQty': fmt(t.qty), 'execType': 'BustTrade' if t.kind == 'Liquidation'
            else 'Trade', 'execValue': fmt(t.quote_qty), 'feeRate': '0',
            'isMaker': t.is_maker, 'closedSize': '0', 'execTime': str(t.time),
            'markPrice': fmt(t.price), 'execPnl': fmt(t.realized_pnl),
            'category': o.extra.get('category', ''), 'seq': t.id}


def position_info(engine, acct, pos, stops=(None, None)):
    """position/list item; ``stops``: the position's (take profit, stop loss) prices."""
    rules = engine.markets[pos.symbol]
    mark = engine.price_of(pos.symbol)
    margin = engine.position_margin(acct, pos) if pos.size else ZERO
    isolated = engine.margin_mode(acct, pos.symbol) == 'isolated'
    return {
        'positionIdx': 0, 'riskId': 1, 'riskLimitValue': fmt(rules.max_qty * 1000),
        'symbol': pos.symbol, 'side': '' if not pos.size else 'Buy' if pos.size > 0 else 'Sell',
        'size': fmt(abs(pos.size)), 'avgPrice': fmt(pos.entry),
        'positionValue': fmt(engine.notional(rules, abs(pos.size), pos.entry) if pos.size else 0),
        'tradeMode': 1 if isolated else 0, 'autoAddMargin': 0, 'positionStatus': 'Normal',
        'leverage': str(engine.leverage(acct, pos.symbol)), 'markPrice': fmt(mark),
        'liqPrice': fmt(engine.liquidation_price(acct, pos)) if pos.size else '',
        'bustPrice': '', 'positionIM': fmt(margin),
        'positionMM': fmt(rules.mmr * engine.notional(rules, abs(pos.size), mark)),
        'positionBalance': fmt(margin), 'takeProfit': fmt(stops[0] or 0),
        'stopLoss': fmt(stops[1] or 0),
        'trailingStop': '0', 'sessionAvgPrice': '', 'delta': '', 'gamma': '', 'vega': '',
        'theta': '', 'unrealisedPnl': fmt(engine.unrealized(pos)),
        'curRealisedPnl': fmt(pos.realized), 'cumRealisedPnl': fmt(pos.realized),
        'adlRankIndicator': 2, 'createdTime': str(pos.update_time),
        'updatedTime': str(pos.update_time), 'seq': pos.update_time,
        'isReduceOnly': False, 'mmrSysUpdatedTime': '', 'leverageSysUpdatedTime': '',
        'tpslMode': 'Full', 'category': 'inverse' if rules.inverse else 'linear'}
