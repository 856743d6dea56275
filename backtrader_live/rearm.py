"""Emulated orders and order links that survive a restart (issue 14).

What the live broker emulates lives in its process: a bracket's children
held until the parent fills and the OCO links (orderlinks.py), a trailing
stop, a Close order or a spot bracket's stop child watched on every bar
(emulated.py). A process killed (kill -9, a reboot) takes them along, and a
position may be left without its stop. So, when the run has a journal
(backtrader_live/journal), each of those orders is written to its
``emulated_orders`` table as it is now, and kept up to date:

- when it is created and at every status change (the broker's notify), with
  its links (parent, OCO group) by order ref and, once it is on the
  exchange, its client order id;
- when its trailed stop moves (with the bar it was checked on, so a restart
  checks only the bars after it);
- when a local order triggers, *before* the order it becomes is sent (its
  client id is on disk first, so a restart asks the exchange for it instead
  of sending it again).

Two kinds of writes. A *durable* one is committed before the broker goes on
(the writer is flushed, bounded: a database that is away delays trading at
most ``FLUSH_TIMEOUT`` seconds once, then the rows wait in the writer's
queue, never dropped): a new emulated order, a link, a status change, a
trigger's client id. What a restart must not get wrong waits for the disk:
an order it would not know, or a create it would send twice.

A trailed stop's *move* is only queued (``trailed``): the writer commits it
within its interval (0.05 s), with the next durable write at the latest
(the writer is one ordered queue, and a flush waits for every row put before
it), and never drops it. Waiting for that commit cost Cerebro's thread a
database commit on nearly every bar (benchmarks/bench_rearm_trail.py: SQLite
p50 ~2.8 ms, PostgreSQL ~4 ms, p99 10-12 ms, against a bar latency of
~0.3-1 ms). What a kill -9 can lose is the last move(s) not yet committed:
the row then holds the stop as it was before, *and the bar it was checked on
then* (``seen_dt``), so the restart checks again the bars since, from the
backfill, with the same rule (upstream's ``trailadjust`` only ratchets): the
lost moves are made again exactly, on the same closes, before any new bar. A
bar no longer in the backfill is said (``rearm_gap``), and the stop then
stands at its last committed, looser level.

A restarted process continuing the run (a new *session*, journal/recovery.py)
re-arms them at the first bar of their symbol, right after the exchange's
open orders were adopted (restart.py): rearm_restore.py says how, by the
exchange's state. Without a journal a loud warning says, at start and at
the first emulated order, that they cannot survive a restart
(docs/orders.md, "Emulated orders and restarts").
"""
import logging
import math

from .journal.core import utcnow

log = logging.getLogger(__name__)

ALIVE = ('Created', 'Submitted', 'Accepted', 'Partial')
#: seconds Cerebro's thread waits for an emulated order's row to be committed
FLUSH_TIMEOUT = 5.0

NO_JOURNAL = ('no journal: emulated orders (a bracket\'s held children, trailing stops, '
              'Close orders, a spot bracket\'s stop, OCO links) live in this process only '
              'and cannot survive a restart; a process killed leaves a position without '
              'them. Attach a journal (backtrader-live run records one; '
              'backtrader_live.journal.attach) to have them re-armed (docs/orders.md)')


def _num(value):
    """A finite float, or None (an unset price is NaN or inf upstream)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class Rearm:
    """The live broker's record of its emulated orders (one per broker)."""

    def __init__(self, broker):
        self.broker = broker
        self.journal = None
        self._saved = {}            # ref -> the row last written (without updated_at)
        self._batch = None          # rows collected while restoring (one transaction)
        self._warned = False        # the no-journal warning at the first emulated order
        self._started = set()       # symbols whose start was handled (restore or warning)
        self._durable = True        # the last flush committed everything
        self.rearmed = {}           # 'session:ref' of the dead process -> its order now
        self.not_rearmed = []       # [{from, type, reason}] said aloud and reported

    def use(self, journal):
        """Record in ``journal`` (a started Journal; the journal's analyzer calls this)."""
        self.journal = journal

    # -- what is recorded ----------------------------------------------------------------
    def _tracked(self, order):
        links, emulated = self.broker.links, self.broker.emulated
        ref = order.ref
        return (ref in self._saved or ref in links._kids or ref in links._groups
                or ref in links._held or ref in emulated._local)

    def _role(self, order):
        """held (a child waiting for its parent), local (watched here), firing
        (triggered here: sent, or about to be), exchange (linked, resting there)."""
        b = self.broker
        if order.ref in b.links._held:
            return 'held'
        if order.ref in b.emulated._local:
            return 'firing' if order.ref in b.emulated._firing else 'local'
        if b._book.client_id(order):
            return 'firing' if order.info.get('triggered_locally') else 'exchange'
        return None

    def row(self, order, role=None):
        b, links = self.broker, self.broker.links
        prev = self._saved.get(order.ref, {})
        group = links._groups.get(order.ref)
        valid = order.valid if isinstance(order.valid, float) else None
        return dict(
            ref=order.ref, symbol=order.data.p.dataname, side='buy' if order.isbuy() else 'sell',
            exectype=order.getordername(), status=order.getstatusname(),
            role=role or self._role(order) or prev.get('role') or 'local',
            size=abs(order.created.size), filled=abs(order.executed.size),
            price=_num(order.created.price), pricelimit=_num(order.created.pricelimit),
            trailamount=order.trailamount or None, trailpercent=order.trailpercent or None,
            created_dt=order.created.dt, seen_dt=b.emulated._seen.get(
                order.ref, prev.get('seen_dt')),
            valid=valid, dteos=_num(order.dteos), client_id=b._book.client_id(order),
            parent_ref=order.parent.ref if order.parent is not None else None,
            oco_ref=group[0].ref if group else prev.get('oco_ref'),
            protective=(id(group) in links._protective) if group else prev.get('protective'),
            options=b.order_options(order) or None,
            rearmed_from=order.info.get('rearmed_from'),
            reason=order.info.get('reject_reason') or order.info.get('rearm_reason'))

    # -- hooks (Cerebro's thread) ----------------------------------------------------------
    def notified(self, order):
        """Every live notification (the broker's notify)."""
        if self._tracked(order):
            self.save(order)

    def moved(self, order):
        """A watched order changed without a notification (watched or held
        here from now on): durable."""
        self.save(order)

    def trailed(self, order):
        """``order``'s trailed stop moved (emulated.py, each bar it ratchets):
        queued, not waited for (the module's docstring says why that is safe)."""
        self.save(order, durable=False)

    def sending(self, order):
        """``order`` got its client id and goes to the exchange now: on disk first."""
        if self._tracked(order) or order.info.get('triggered_locally'):
            self.save(order)
        if self._batch is not None:
            self.commit_batch()

    def save(self, order, role=None, durable=True):
        if self.journal is None:
            self._warn_first(order)
            return
        row = self.row(order, role)
        if self._saved.get(order.ref) == row:
            return
        self._saved[order.ref] = row
        if self._batch is not None:
            self._batch.append(dict(row, session=self.journal.session))
            return
        self.journal.record('emulated_orders', updated_at=utcnow(), **row)
        self._linked_too(order)
        if durable:
            self._flush()

    def _linked_too(self, order):
        """An OCO group made after its first order was sent (``oco=`` names
        an order already on the exchange): that one is recorded too, with its
        client id, or a restart could not link it again."""
        for other in self.broker.links._groups.get(order.ref) or ():
            if other.ref not in self._saved:
                self.save(other)

    def _flush(self):
        writer = self.journal.writer
        if not self._durable and writer.pending > 1:
            return      # the database is away: the rows wait in the queue (kept)
        self._durable = writer.flush(FLUSH_TIMEOUT)
        if not self._durable:
            log.warning('journal: an emulated order\'s state could not be committed within '
                        '%.0fs (database away?); it is kept in the writer\'s queue, and a '
                        'crash before it is written would lose it', FLUSH_TIMEOUT)

    def _warn_first(self, order):
        if self._warned:
            return
        self._warned = True
        log.warning('no journal: order %d (%s) is emulated by this process and cannot survive '
                    'a restart', order.ref, order.getordername())

    # -- the restore (restart.py calls it once a symbol's state is adopted) -----------------
    def started(self, data):
        """The first bar of ``data``'s symbol, its open orders adopted: re-arm
        what the dead process emulated (or warn that nothing can be)."""
        symbol = data.p.dataname
        if symbol in self._started:
            return
        self._started.add(symbol)
        if self.journal is None:
            if len(self._started) == 1:
                log.warning(NO_JOURNAL)
                self.broker.store.put_notification('no journal', NO_JOURNAL)
            return
        from .rearm_restore import earlier_run_left, restore
        if self.journal.session <= 1:
            earlier_run_left(self, data)    # a new run: re-arms nothing, says what it leaves
            return
        restore(self, data)

    def begin_batch(self):
        self._batch = []

    def add_to_batch(self, row):
        self._batch.append(row)

    def commit_batch(self):
        """Write the rows collected so far in one transaction (re-arming:
        the old session's rows end and the new ones start together, so a
        crash in between neither loses nor doubles an order)."""
        from .journal.writer import statement
        rows, self._batch = self._batch, []
        if not rows:
            return
        engine, now = self.journal.engine, utcnow()
        stmt = statement(engine.dialect.name, 'emulated_orders')
        with engine.begin() as conn:
            for row in rows:
                conn.execute(stmt, dict(row, run_id=self.journal.run_id, updated_at=now))

    def end_batch(self):
        try:
            self.commit_batch()
        finally:
            self._batch = None
