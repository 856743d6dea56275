"""Continue a run after a crash: find it, then reconcile the journal with
the exchange before trading resumes.

A run whose row still says 'running' while its process is gone (kill -9,
power loss) is continued as a new *session* of the same run, so ``report``
shows one history. What the journal may have missed is asked of the
exchange, never guessed:

- an order the journal knows but whose last recorded status is not final
  (placed but unconfirmed, or its fill was still queued when the process
  died) is looked up by its client order id; its final state is recorded;
- the fills of those orders are fetched by exchange order id and recorded
  with the exchange's trade ids. A fill is recorded once: fills already in
  the journal for that order are counted first and only the later trades
  are added, and the (exchange, symbol, trade id) key refuses any repeat;
- orders the journal never saw (their rows were still queued) are found
  through the account's trades since the journal's last row (sweep.py).
"""
import datetime
import logging
import os
import socket

from sqlalchemy import and_, func, select

from . import tables as t
from .core import utcnow
from .database import JournalError
from .sweep import sweep

log = logging.getLogger(__name__)

FINAL = ('Completed', 'Canceled', 'Cancelled', 'Expired', 'Rejected', 'Margin')
#: ccxt order status -> backtrader status name, for the reconciled event
CCXT_STATUS = {'closed': 'Completed', 'canceled': 'Canceled', 'cancelled': 'Canceled',
               'expired': 'Expired', 'rejected': 'Rejected', 'open': 'Accepted',
               # the exchange has its trades but no longer answers for the order
               'unknown': 'Unknown'}


def pid_alive(host, pid):
    """True if ``pid`` runs on this host (another host: assume it does)."""
    if not pid:
        return False
    if host and host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def unfinished_run(engine, name):
    """The latest run of ``name`` that did not stop (its process died), or
    None. A run still recorded by a live process is an error: two bots must
    not write one history."""
    with engine.connect() as conn:
        row = conn.execute(select(t.runs).where(t.runs.c.name == name)
                           .order_by(t.runs.c.id.desc()).limit(1)).first()
    if row is None or row.status != 'running':
        return None
    if pid_alive(row.host, row.pid) and row.pid != os.getpid():
        raise JournalError('run %s of %s is being recorded by process %s on %s: stop it '
                           'first, or give this bot another journal' % (
                               row.id, name, row.pid, row.host))
    return row.id


def _open_orders(conn, run_id):
    """Orders of the run whose last recorded status is not final."""
    last = select(t.order_events.c.session, t.order_events.c.order_ref,
                  func.max(t.order_events.c.id).label('last')).where(
        t.order_events.c.run_id == run_id).group_by(
        t.order_events.c.session, t.order_events.c.order_ref).subquery()
    finals = {(r.session, r.order_ref) for r in conn.execute(
        select(t.order_events.c.session, t.order_events.c.order_ref).join(
            last, t.order_events.c.id == last.c.last).where(
            t.order_events.c.status.in_(FINAL)))}
    orders = conn.execute(select(t.orders).where(t.orders.c.run_id == run_id)
                          .order_by(t.orders.c.id)).all()
    return [o for o in orders if (o.session, o.ref) not in finals and o.client_id]


def _recorded_fills(conn, run_id, order):
    return conn.execute(select(func.count()).select_from(t.fills).where(and_(
        t.fills.c.run_id == run_id, t.fills.c.session == order.session,
        t.fills.c.order_ref == order.ref))).scalar()


def reconcile(journal, store, exchange):
    """Bring the journal's run up to date with the exchange (before trading
    resumes). Returns ``{'orders': n resolved, 'fills': n added}``."""
    with journal.engine.connect() as conn:
        pending = [(o, _recorded_fills(conn, journal.run_id, o))
                   for o in _open_orders(conn, journal.run_id)]
    found = {'orders': 0, 'fills': 0}
    for order, recorded in pending:
        raw = store.fetch_order_by_client_id(order.client_id, order.symbol)
        if raw is None:
            _event(journal, order, 'Rejected', None, 'not on the exchange (never placed)')
            found['orders'] += 1
            continue
        trades = sorted(store.fetch_order_trades(raw['id'], order.symbol) or (),
                        key=lambda tr: (tr.get('timestamp') or 0, str(tr.get('id'))))
        for trade in trades[recorded:]:
            _fill(journal, exchange, order, raw, trade)
            found['fills'] += 1
        _event(journal, order, CCXT_STATUS.get(raw.get('status'), raw.get('status')), raw,
               'reconciled with the exchange after a restart')
        found['orders'] += 1
    journal.flush()
    recovered, added = sweep(journal, store, exchange, _symbols(journal), _fill, _event)
    found['orders'] += recovered
    found['fills'] += added
    log.info('journal: run %s reconciled with the exchange: %d orders resolved, %d fills '
             'the journal had missed recorded (%d orders it never saw)', journal.run_id,
             found['orders'], found['fills'], recovered)
    return found


def _symbols(journal):
    with journal.engine.connect() as conn:
        text = conn.execute(select(t.runs.c.symbols).where(
            t.runs.c.id == journal.run_id)).scalar()
    return [s for s in (text or '').split(',') if s]


def _at(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).replace(
        tzinfo=None) if ms else None


def _fill(journal, exchange, order, raw, trade):
    sign = 1 if trade.get('side', order.side) == 'buy' else -1
    fee = (trade.get('fee') or {}).get('cost')
    journal.writer.put('fills', dict(
        run_id=journal.run_id, session=order.session, exchange=exchange, symbol=order.symbol,
        trade_id=str(trade['id']), order_ref=order.ref, client_id=order.client_id,
        exchange_order_id=str(raw['id']), side=trade.get('side', order.side),
        size=sign * float(trade['amount']), price=float(trade['price']),
        comm=float(fee) if fee is not None else None, pnl=None, at=_at(trade.get('timestamp'))))


def _event(journal, order, status, raw, reason):
    raw = raw or {}
    filled = raw.get('filled')
    if filled is not None and order.side == 'sell':
        filled = -filled          # backtrader's sign: sells executed < 0
    journal.writer.put('orders', dict(run_id=journal.run_id, session=order.session,
                                      ref=order.ref, exchange_id=raw.get('id')))
    journal.writer.put('order_events', dict(
        run_id=journal.run_id, session=order.session, order_ref=order.ref,
        client_id=order.client_id, status=status, executed_size=filled,
        executed_price=raw.get('average'), comm=None, reason=reason, at=utcnow()))
