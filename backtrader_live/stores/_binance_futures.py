"""Binance USDⓈ-M / COIN-M user-data events, parsed into our events.

Kept apart from stores/binance.py so that each file stays readable; the
store imports these parsers and nothing else uses them.
"""
from ..events import (BalanceUpdate, CANCELED, CLOSED, EXPIRED, Fill, FundingPayment,
                      LeverageUpdate, OPEN, OrderUpdate, PositionUpdate, REJECTED)

# Order statuses (X) of regular and algo orders -> ours. A triggered algo
# order lives on as a regular order, so TRIGGERED/FINISHED are not the end.
STATUS = {'NEW': OPEN, 'PARTIALLY_FILLED': OPEN, 'PENDING_NEW': OPEN, 'TRIGGERING': OPEN,
          'TRIGGERED': OPEN, 'FILLED': CLOSED, 'CANCELED': CANCELED,
          'PENDING_CANCEL': OPEN, 'REJECTED': REJECTED, 'EXPIRED': EXPIRED,
          'EXPIRED_IN_MATCH': EXPIRED}


def order_trade_update(store, e):
    o = e['o']
    cum, orig = float(o.get('z') or 0.0), float(o.get('q') or 0.0)
    fills = []
    if o.get('x') == 'TRADE' and int(o.get('t', 0) or 0) > 0:
        fills.append(Fill(trade_id=str(o['t']), price=float(o['L']), amount=float(o['l']),
                          fee=float(o.get('n') or 0.0), fee_asset=o.get('N'),
                          timestamp=o.get('T'), maker=bool(o.get('m'))))
    avg = float(o.get('ap') or 0.0)
    return (OrderUpdate(client_id=o.get('c'), exchange_id=str(o['i']),
                        symbol=store.symbol_of(o['s']), status=STATUS.get(o['X'], OPEN),
                        filled=cum, remaining=orig - cum, average=avg or None,
                        timestamp=e.get('E'), fills=fills, source='stream'),)


def account_update(store, e):
    a = e.get('a', {})
    events = []
    balances = {b['a']: (float(b['wb']), 0.0) for b in a.get('B', ())}
    if balances:
        events.append(BalanceUpdate(balances, e.get('E')))
    if a.get('m') == 'FUNDING_FEE':
        for b in a.get('B', ()):
            events.append(FundingPayment(asset=b['a'], amount=float(b.get('bc') or 0.0),
                                         timestamp=e.get('E')))
    for p in a.get('P', ()):
        if p.get('ps', 'BOTH') != 'BOTH':
            continue        # hedge-mode legs: we run one-way mode only
        events.append(PositionUpdate(
            symbol=store.symbol_of(p['s']), size=float(p['pa']),
            entry_price=float(p.get('ep') or 0.0), unrealized_pnl=float(p.get('up') or 0.0),
            margin_mode=p.get('mt'), timestamp=e.get('E')))
    return tuple(events)


def algo_update(store, e):
    """A conditional order's own lifecycle (until it triggers)."""
    o = e.get('o', e)
    status = STATUS.get(o.get('X') or o.get('algoStatus'), OPEN)
    if status == CLOSED:
        status = OPEN       # FINISHED/FILLED here: the regular order reports fills
    actual = o.get('ai')
    return (OrderUpdate(client_id=o.get('caid') or o.get('clientAlgoId'),
                        exchange_id=str(o.get('aid') or o.get('algoId')),
                        symbol=store.symbol_of(o.get('s') or o.get('symbol')), status=status,
                        timestamp=e.get('E'), source='stream',
                        aliases=(str(actual),) if actual not in (None, '', 0, '0') else ()),)


def account_config_update(store, e):
    """A symbol's leverage changed (``ac``); ``ai`` (multi-assets mode) is
    no concern of ours."""
    ac = e.get('ac')
    if not ac or ac.get('l') in (None, ''):
        return ()
    return (LeverageUpdate(symbol=store.symbol_of(ac['s']), leverage=float(ac['l']),
                           timestamp=e.get('E')),)


PARSERS = {'ORDER_TRADE_UPDATE': order_trade_update, 'ACCOUNT_UPDATE': account_update,
           'ACCOUNT_CONFIG_UPDATE': account_config_update,
           'ALGO_UPDATE': algo_update}
