"""A live run that starts where the exchange is (open orders found at start)
and ends by its exit policy (``cancel_on_exit``: :func:`exit_policy`).

At the first bar of each data (a price is needed) the broker reads the
exchange's state of the data's symbol as one consistent snapshot: the open
orders are listed, the account (spot holdings, the contract position) is
read, and the open orders are listed again; if an order changed in between
(a fill), all is read again (bounded). So a fill made while the start-up
state is read is either in the position (its order no longer listed) or
still to come on a tracked order, never in neither nor in both. Then the
broker adopts the position (``adopt_positions``) and handles the open
orders per its ``open_orders`` parameter:

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


# Readings of the start-up state before settling for the last one (orders
# that fill on every reading: a busy account, not a reason to stop).
SNAPSHOT_READINGS = 4


def adopt_open_orders(broker, pending):
    """Adopt the position and handle the open orders of each data in
    ``pending`` that has a bar; a data whose state could not be read stays
    pending (next bar)."""
    for data in [d for d in pending if len(d)]:
        if _first_feed(broker, data) is not data:
            # another feed of this symbol (a longer timeframe) came first: the
            # exchange's one position and orders are that feed's, not twice
            pending[:] = [d for d in pending if d is not data]
            continue
        try:
            raws = _snapshot(broker, data)
            if broker.p.adopt_positions:
                _adopt_position(broker, data)
            found = _handle_symbol(broker, data, raws)
        except LiveError as exc:
            log.warning('%s: start-up state not loaded yet (%s); trying again next bar',
                        data.p.dataname, exc)
            broker.halt_if_fatal(exc)       # bad keys: stop, do not ask every bar
            continue
        # by identity: backtrader's data objects overload == (list.remove fails)
        pending[:] = [d for d in pending if d is not data]
        _announce(broker, data, found)
        broker.rearm.started(data)      # emulated orders of a dead process (rearm.py)


def _first_feed(broker, data):
    """The broker's first data of ``data``'s symbol (several timeframes of one
    symbol in one run: docs/live-trading.md, "Several feeds in one run")."""
    return next((d for d in broker._datas if d.p.dataname == data.p.dataname), data)


def _snapshot(broker, data):
    """The open orders of ``data``'s symbol, with the account (re)read
    between two listings that agree (see the module's docstring)."""
    store, symbol = broker.store, data.p.dataname
    raws = store.get_open_orders(symbol)
    if not broker.p.adopt_positions:
        return raws
    for _ in range(SNAPSHOT_READINGS):
        broker.account.load(store)
        again = store.get_open_orders(symbol)
        if _state(again) == _state(raws):
            return again
        log.info('%s: an open order changed while the start-up state was read; reading '
                 'again', symbol)
        raws = again
    log.warning('%s: open orders kept changing over %d readings of the start-up state; '
                'using the last one (a fill in between may be counted twice or missed)',
                symbol, SNAPSHOT_READINGS)
    return raws


def _state(raws):
    """What must not change between two listings: each order and its fill."""
    return sorted((str(r.get('id')), str(r.get('filled') or 0)) for r in raws)


def _adopt_position(broker, data):
    rules = broker.market_rules(data)
    found = broker.account.start_position(broker.store, rules, data.close[0])
    if found is not None:
        broker.positions[data].set(*found)
        log.info('adopted a %s position of %s at %s', data._name or data.p.dataname, *found)


def _handle_symbol(broker, data, raws):
    found = []
    for raw in raws:
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
    # Fills made before the start are in the adopted position: mark them seen
    # (those the listing counted: a trade made since is still to be reported).
    before = _first_trades(broker.store.fetch_order_trades(xid, data.p.dataname),
                           filled) if filled else []
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


def _first_trades(trades, filled):
    """The oldest trades that add up to ``filled`` (the listing's amount)."""
    kept, total = [], 0.0
    for trade in sorted(trades, key=lambda t: t.get('timestamp') or 0):
        amount = float(trade.get('amount') or 0.0)
        if total + amount > filled * (1 + 1e-9) + 1e-12:
            break
        kept.append(trade)
        total += amount
    return kept


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


def exit_policy(broker):
    """As the run ends: ``cancel_on_exit`` cancels our open orders, else they
    are left on the exchange. Logs what was done, order by order."""
    book = broker._book
    alive = book.alive()
    if not alive:
        return
    names = ', '.join(book.client_id(o) for o in alive)
    if not broker.p.cancel_on_exit:
        log.info('leaving %d open order(s) on the exchange: %s', len(alive), names)
        return
    log.info('cancel_on_exit: cancelling %d open order(s): %s', len(alive), names)
    for order in alive:
        broker._cancel_live(order)
    # Some exchanges (Bybit) answer a cancel with the order id only: the
    # final status is asked for, not waited for on a stream.
    broker._drain_events()
    if book.alive():
        broker.reconcile(book.alive())
    for order in alive:
        log.info('cancel_on_exit: %s is %s', order.info.get('client_id'), order.getstatusname())
    left = book.alive()
    if left:
        log.error('cancel_on_exit: %d order(s) may still be open on the exchange: %s',
                  len(left), ', '.join(book.client_id(o) for o in left))
