"""A live run that starts where the exchange is: open orders found at start.

At the first bar of each data (a price is needed) the broker adopts the
position (``adopt_positions``: spot holdings, the exchange's contract
position), then handles the open orders on the data's symbol per its
``open_orders`` parameter:

- ``'track'`` (default): each becomes a backtrader order with no owner, so
  Cerebro hands its notifications (Submitted, Accepted, then its fills) to the
  first strategy, which can also ``cancel()`` it. Only what is still open is
  tracked: fills made before the start are in the adopted position already
  and are not reported again.
- ``'cancel'``: each is cancelled on the exchange.
- ``'leave'``: left alone and not tracked (its fills will not reach
  backtrader; the position is corrected from the exchange's where it reports
  positions).

Orders without a client order id (placed by hand on some exchanges) cannot be
tracked and are left alone. A log line and a store notification
``('startup', found)`` (``notify_store`` in the strategy) say what was found.
"""
import logging

from backtrader import Order
from backtrader.order import BuyOrder, SellOrder

from .errors import ConfigError, LiveError

log = logging.getLogger(__name__)

POLICIES = ('track', 'cancel', 'leave')


def check_policy(policy):
    if policy not in POLICIES:
        raise ConfigError("open_orders must be one of %s, got %r"
                          % (', '.join(repr(p) for p in POLICIES), policy))


def adopt_open_orders(broker, pending):
    """Handle the open orders of each data in ``pending`` that has a bar;
    a data whose orders could not be listed stays pending (next bar)."""
    for data in [d for d in pending if len(d)]:
        try:
            found = _handle_symbol(broker, data)
        except LiveError as exc:
            log.warning('%s: open orders not loaded yet (%s); trying again next bar',
                        data.p.dataname, exc)
            broker.halt_if_fatal(exc)       # bad keys: stop, do not ask every bar
            continue
        # by identity: backtrader's data objects overload == (list.remove fails)
        pending[:] = [d for d in pending if d is not data]
        _announce(broker, data, found)


def _handle_symbol(broker, data):
    found = []
    for raw in broker.store.get_open_orders(data.p.dataname):
        cid = raw.get('clientOrderId') or None
        if cid and broker._book.by_client_id(cid) is not None:
            action = 'tracked'           # done on an earlier, interrupted attempt
        elif broker.p.open_orders == 'track' and cid:
            _track(broker, data, raw, cid)
            action = 'tracked'
        elif broker.p.open_orders == 'cancel':
            _cancel(broker, data, raw, cid)
            action = 'cancelled'
        else:
            action = 'left alone' + ('' if cid else ' (no client order id)')
        found.append({'client_id': cid, 'id': str(raw.get('id')), 'side': raw.get('side'),
                      'type': raw.get('type'), 'amount': raw.get('amount'),
                      'filled': raw.get('filled'), 'price': raw.get('price'),
                      'trigger_price': _trigger(raw), 'action': action})
    return found


def _trigger(raw):
    return raw.get('triggerPrice') or raw.get('stopPrice') or None


def _exectype(raw):
    """(backtrader exectype, price, pricelimit) of a ccxt open order."""
    trigger = _trigger(raw)
    limit = raw.get('price') if raw.get('price') and 'market' not in (raw.get('type') or '') \
        else None
    if trigger:
        return (Order.StopLimit, trigger, limit) if limit else (Order.Stop, trigger, None)
    return (Order.Limit, limit, None) if limit else (Order.Market, None, None)


def _track(broker, data, raw, cid):
    exectype, price, plimit = _exectype(raw)
    filled = float(raw.get('filled') or 0.0)
    remaining = raw.get('remaining')
    remaining = float(remaining) if remaining is not None else \
        float(raw.get('amount') or 0.0) - filled
    xid = str(raw['id'])
    # Fills made before the start are in the adopted position: mark them seen.
    before = broker.store.fetch_order_trades(xid, data.p.dataname) if filled else []
    cls = BuyOrder if raw.get('side') == 'buy' else SellOrder
    order = cls(owner=None, data=data, size=remaining, price=price, pricelimit=plimit,
                exectype=exectype)
    order.addcomminfo(broker.getcommissioninfo(data))
    order.addinfo(adopted=True, filled_before=filled)
    book = broker._book
    book.add(order, cid)
    book.set_exchange_id(order, xid)
    for trade in before:
        book.new_fill(order, str(trade['id']))
    book.add_gross(order, filled)
    order.submit(broker)
    broker.notify(order)
    order.accept(broker)
    broker.notify(order)


def _cancel(broker, data, raw, cid):
    store = broker.store
    params = store.client_id_query(cid, bool(_trigger(raw))) if cid else {}
    store.cancel_order(str(raw['id']), data.p.dataname, params)


def _announce(broker, data, found):
    position = broker.positions[data]
    summary = {'symbol': data.p.dataname, 'position': (position.size, position.price),
               'open_orders': found, 'policy': broker.p.open_orders}
    counts = {}
    for item in found:
        counts[item['action']] = counts.get(item['action'], 0) + 1
    log.info('%s at start: position %s @ %s; %d open order(s)%s', data.p.dataname,
             position.size, position.price, len(found),
             ''.join(', %d %s' % (n, a) for a, n in sorted(counts.items())))
    broker.store.put_notification('startup', summary)
