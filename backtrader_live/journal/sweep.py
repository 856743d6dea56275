"""After a crash: orders and fills the journal never saw at all.

:func:`recovery.reconcile` resolves the orders the journal knows. An order
whose rows were still in the writer's queue when the process died (placed,
filled, and gone from memory before a write) is unknown to the journal; the
exchange still has its trades. This sweep asks the exchange for the
account's trades on the run's symbols since shortly before the journal's
last recorded row, keeps those of orders with our client id prefix (the
account's other trades are not the bot's), and records each missing order
(with its final state) and its fills once, by the exchange's trade ids.

An order that never filled and is no longer open leaves no trade to find:
it changed nothing (no position, no fee) and is not recovered; one still
open is adopted by the broker on start and journaled from then on.
"""
import datetime
import logging

from sqlalchemy import and_, func, select

from . import tables as t
from .core import utcnow

log = logging.getLogger(__name__)

#: client order ids the store gives our orders start with this (store.new_client_id)
OUR_PREFIX = 'btl'
#: how far before the journal's last row the exchange is asked: rows still
#: queued at the crash were younger than that row plus the writer's delay
MARGIN = datetime.timedelta(hours=1)


def _ms(naive_utc):
    return int(naive_utc.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


def since_ms(conn, run_id):
    """The time to ask from: the run's last recorded row less MARGIN (not
    before the run started)."""
    last = [conn.execute(select(func.max(tab.c.at)).where(tab.c.run_id == run_id)).scalar()
            for tab in (t.order_events, t.fills, t.equity)]
    started = conn.execute(select(t.runs.c.started_at).where(
        t.runs.c.id == run_id)).scalar()
    latest = max([d for d in last if d is not None] or [started])
    return _ms(max(started, latest - MARGIN))


def _recorded_trade_ids(conn, run_id, symbol):
    return {r[0] for r in conn.execute(select(t.fills.c.trade_id).where(and_(
        t.fills.c.run_id == run_id, t.fills.c.symbol == symbol)))}


def _known_orders(conn, run_id):
    """client id -> (session, ref) of the orders the journal has."""
    return {r.client_id: (r.session, r.ref) for r in conn.execute(
        select(t.orders.c.client_id, t.orders.c.session, t.orders.c.ref).where(
            t.orders.c.run_id == run_id)) if r.client_id}


def _next_ref(conn, run_id, session):
    """A ref for a recovered order: below every ref of that session (backtrader's
    are positive), so it never meets one the process gave."""
    low = conn.execute(select(func.min(t.orders.c.ref)).where(and_(
        t.orders.c.run_id == run_id, t.orders.c.session == session))).scalar()
    return min(low or 0, 0) - 1


def missed_trades(journal, store, symbols):
    """{(symbol, exchange order id): [trades]} the journal lacks, since the
    journal's last row (see :func:`since_ms`)."""
    with journal.engine.connect() as conn:
        since = since_ms(conn, journal.run_id)
        recorded = {s: _recorded_trade_ids(conn, journal.run_id, s) for s in symbols}
    missing = {}
    for symbol in symbols:
        for trade in store.call('fetch_my_trades', symbol, since) or ():
            if str(trade['id']) not in recorded[symbol]:
                missing.setdefault((symbol, str(trade['order'])), []).append(trade)
    return missing


def sweep(journal, store, exchange, symbols, fill, event):
    """Record the orders and fills the journal never saw; ``fill`` and
    ``event`` are recovery's writers. Returns (orders recovered, fills added)."""
    missing = missed_trades(journal, store, symbols)
    orders = fills = 0
    for (symbol, order_id), trades in sorted(missing.items()):
        client_id, raw = _client_id(store, trades[0], order_id, symbol)
        if not client_id.startswith(OUR_PREFIX):
            log.info('journal: trade(s) %s of order %s on %s are not the bot\'s (client id '
                     '%r): not recorded', [tr['id'] for tr in trades], order_id, symbol,
                     client_id)
            continue
        with journal.engine.connect() as conn:
            known = _known_orders(conn, journal.run_id).get(client_id)
            if known is None:
                session = max(journal.session - 1, 1)   # the process that died placed it
                known = (session, _next_ref(conn, journal.run_id, session))
        raw = raw or store.fetch_order_by_client_id(client_id, symbol) or {
            'id': order_id, 'side': trades[0].get('side'), 'status': 'unknown'}
        order = _Order(known[0], known[1], client_id, symbol, raw.get('side'))
        if _known_orders_missing(journal, client_id):
            _record_order(journal, order, raw)
            event(journal, order, _status(raw), raw, 'recovered from the exchange after a '
                  'restart: the journal never recorded this order')
            orders += 1
        for trade in sorted(trades, key=lambda tr: (tr.get('timestamp') or 0, str(tr['id']))):
            fill(journal, exchange, order, raw, trade)
            fills += 1
        journal.flush()
    return orders, fills


#: where a trade's raw record names its order's client id (Bybit's executions
#: carry orderLinkId); without one the order is fetched by its exchange id
#: (Binance's myTrades name only the orderId)
TRADE_CLIENT_ID_FIELDS = ('orderLinkId', 'clientOrderId')


def _client_id(store, trade, order_id, symbol):
    """(client id, the order if it had to be fetched, else None)."""
    info = trade.get('info') or {}
    for field in TRADE_CLIENT_ID_FIELDS:
        if info.get(field):
            return str(info[field]), None
    raw = store.call('fetch_order', order_id, symbol)
    return raw.get('clientOrderId') or '', raw


class _Order:
    """What recovery's writers read of an order row."""

    def __init__(self, session, ref, client_id, symbol, side):
        self.session, self.ref, self.client_id = session, ref, client_id
        self.symbol, self.side = symbol, side


def _known_orders_missing(journal, client_id):
    with journal.engine.connect() as conn:
        return client_id not in _known_orders(conn, journal.run_id)


def _status(raw):
    from .recovery import CCXT_STATUS
    return CCXT_STATUS.get(raw.get('status'), raw.get('status'))


def _record_order(journal, order, raw):
    amount = raw.get('amount')
    sign = -1 if order.side == 'sell' else 1
    stamp = raw.get('timestamp')
    journal.writer.put('orders', dict(
        run_id=journal.run_id, session=order.session, ref=order.ref,
        client_id=order.client_id, exchange_id=str(raw['id']), symbol=order.symbol,
        side=order.side, type=(raw.get('type') or '').capitalize() or None,
        size=sign * float(amount) if amount is not None else None, price=raw.get('price'),
        created_at=datetime.datetime.fromtimestamp(stamp / 1000, datetime.timezone.utc)
        .replace(tzinfo=None) if stamp else utcnow()))
