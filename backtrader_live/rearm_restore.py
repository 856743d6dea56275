"""Re-arming, after a restart, what the dead process emulated (rearm.py).

At the first bar of a symbol, once restart.py has adopted the exchange's
open orders (each of ours is then an order of this process, found by its
client id), the journal's ``emulated_orders`` rows still alive for the run
(earlier sessions) are re-armed by the exchange's state, never guessed:

- a bracket whose children were held: the parent still open -> new held
  children under the adopted parent (sent, sized to its fill, when it
  fills); the parent filled meanwhile (even partly) -> the children are sent
  now, sized to what it filled, as their OCO pair; the parent ended unfilled
  (or was never placed) -> the children end too (Canceled, said);
- an OCO group: a member that filled or ended while no process ran fired the
  group -> the others are cancelled (adopted ones on the exchange, local ones
  not re-armed, said); else the group is linked again;
- a local order (trailing stop, Close, a spot bracket's stop) -> watched
  again from its persisted stop and the last bar it was checked on, so the
  bars since (the backfill) are checked and trail it as they would have;
- a local order that had triggered (its order's client id is on disk before
  it is sent): on the exchange -> adopted, never sent again; absent once the
  create could no longer land -> sent now.

The old rows end (status ``Rearmed``, or the outcome) in one transaction
with the new rows, so a crash meanwhile neither loses nor doubles an order.
A re-armed order is a new backtrader order with no owner: Cerebro gives its
notifications (Submitted, Accepted, then its fate) to the first strategy,
which may cancel it; ``order.info['rearmed_from']`` is the ``'session:ref'``
it continues, ``broker.rearm.rearmed`` maps those to the orders. One store
notification ``('rearmed', summary)`` and log lines say what was done, order
by order; what cannot be re-armed is logged as an error with the reason.
"""
import logging

from backtrader import Order, num2date
from backtrader.order import BuyOrder, SellOrder
from sqlalchemy import and_, func, select
from sqlalchemy.exc import SQLAlchemyError

from .emulated import _bar_days
from .errors import LiveError
from .journal import tables as t
from .journal.core import utcnow
from .rearm import ALIVE
from .recovery import SETTLE_MARGIN

log = logging.getLogger(__name__)

_LOCAL = ('local', 'held')


def restore(rearm, data):
    try:
        records = _alive(rearm.journal, data.p.dataname)
    except SQLAlchemyError as exc:
        msg = ('the journal could not be read (%s): emulated orders of the last session of '
               '%s are NOT re-armed' % (exc, data.p.dataname))
        log.error('rearm: %s', msg)
        rearm.not_rearmed.append({'from': None, 'reason': msg})
        rearm.broker.store.put_notification('rearm failed', msg)
        return
    if records:
        Restore(rearm, data, records).run()


def earlier_run_left(rearm, data):
    """A new run (``--new-run`` after a crash, or a program that did not
    resume) re-arms nothing of the run before it: if that run's process died
    with emulated orders alive, say so loudly, order by order."""
    journal, symbol, tab = rearm.journal, data.p.dataname, t.emulated_orders
    try:
        with journal.engine.connect() as conn:
            last = conn.execute(select(func.max(t.runs.c.id)).where(
                t.runs.c.id < journal.run_id)).scalar()
            rows = [] if last is None else conn.execute(select(tab).where(and_(
                tab.c.run_id == last, tab.c.symbol == symbol,
                tab.c.status.in_(ALIVE)))).all()
    except SQLAlchemyError as exc:
        log.warning('rearm: the journal could not be read for the last run\'s emulated '
                    'orders: %s', exc)
        return
    if not rows:
        return
    msg = ('%d emulated order(s) of run %s on %s were alive when its process died and are NOT '
           're-armed by this new run (continue the crashed run instead: backtrader-live run '
           'without --new-run): %s' % (len(rows), last, symbol, ', '.join(
               '%d:%d %s %s %s' % (r.session, r.ref, r.exectype, r.side, r.size)
               for r in rows)))
    log.error('rearm: %s', msg)
    rearm.not_rearmed.append({'from': None, 'reason': msg})
    rearm.broker.store.put_notification('not rearmed', msg)


def _alive(journal, symbol):
    tab = t.emulated_orders
    with journal.engine.connect() as conn:
        rows = conn.execute(select(tab).where(and_(
            tab.c.run_id == journal.run_id, tab.c.session < journal.session,
            tab.c.symbol == symbol, tab.c.status.in_(ALIVE))).order_by(
            tab.c.session, tab.c.ref))
        return [r._asdict() for r in rows]


def _key_name(key):
    return '%d:%d' % key


class Restore:
    """One symbol's re-arming (Cerebro's thread, at its first bar)."""

    def __init__(self, rearm, data, records):
        self.rearm, self.b, self.data = rearm, rearm.broker, data
        self.recs = {(r['session'], r['ref']): r for r in records}
        self.state = {}         # key -> (kind, order or raw): open, filled, ended, absent, unknown
        self.done = set()
        self.report = []

    def run(self):
        log.warning('rearm: %d emulated order(s) of the last session of %s are alive in the '
                    'journal; re-arming them by the exchange\'s state', len(self.recs),
                    self.data.p.dataname)
        self.rearm.begin_batch()
        try:
            for key, rec in self.recs.items():
                if rec['client_id']:
                    self.state[key] = self._exchange_state(rec)
            self._brackets()
            self._groups()
            for key in [k for k in self.recs if k not in self.done]:
                self._lone(key, self.recs[key])
        finally:
            self.rearm.end_batch()
        self.b.store.put_notification('rearmed', {'symbol': self.data.p.dataname,
                                                  'orders': self.report})

    # -- the exchange's word ------------------------------------------------------------
    def _exchange_state(self, rec):
        cid = rec['client_id']
        order = self.b._book.by_client_id(cid)
        if order is not None and order.alive():
            return ('open', order)
        conditional = rec['role'] == 'exchange' and (
            rec['exectype'] in ('Stop', 'StopLimit') or 'takeProfitPrice' in (
                rec['options'] or {}))
        try:
            raw = self._fetch(cid, conditional, rec)
        except LiveError as exc:
            return ('unknown', 'the exchange could not be asked for %s: %s' % (cid, exc))
        if raw is None:
            return ('absent', None)
        if (raw.get('status') or 'open') == 'open':
            return ('unknown', 'order %s is open on the exchange but not tracked (open_orders='
                    '%r)' % (cid, self.b.p.open_orders))
        return ('filled' if float(raw.get('filled') or 0.0) > 0 else 'ended', raw)

    def _fetch(self, cid, conditional, rec):
        """The exchange's order, or None once a create sent when the row was
        written can no longer land (its receive window has passed)."""
        store, symbol = self.b.store, self.data.p.dataname
        raw = store.fetch_order_by_client_id(cid, symbol, conditional)
        if raw is None:
            age = (utcnow() - rec['updated_at']).total_seconds()
            left = store.recv_window_ms / 1000.0 + SETTLE_MARGIN - age
            if left > 0 and not store._stop_event.wait(left):
                raw = store.fetch_order_by_client_id(cid, symbol, conditional)
        return raw

    # -- new orders ---------------------------------------------------------------------
    def _make(self, key, rec, parent=None):
        """A new order with the dead process's definition, not notified yet."""
        cls = BuyOrder if rec['side'] == 'buy' else SellOrder
        order = cls(owner=None, data=self.data, size=rec['size'], price=rec['price'],
                    pricelimit=rec['pricelimit'], exectype=Order.ExecTypes.index(rec['exectype']),
                    trailamount=rec['trailamount'], trailpercent=rec['trailpercent'],
                    parent=parent)
        # the stop as it was (trailed), not as a new order would start it
        order.created.price = rec['price'] if rec['price'] is not None else order.created.price
        if rec['pricelimit'] is not None:
            order.created.pricelimit = rec['pricelimit']
        order.created.dt = rec['created_dt'] if rec['created_dt'] is not None else \
            order.created.dt
        order.valid = rec['valid']
        if rec['dteos'] is not None:
            order.dteos = rec['dteos']
        order.addcomminfo(self.b.getcommissioninfo(self.data))
        if rec['options']:
            order.addinfo(**rec['options'])
        order.addinfo(rearmed_from=_key_name(key))
        self.rearm.rearmed[_key_name(key)] = order
        return order

    def _accept(self, order):
        order.submit(self.b)
        self.b.notify(order)
        order.accept(self.b)
        self.b.notify(order)

    def _arm_local(self, key, rec, fire=False):
        order = self._make(key, rec)
        emulated = self.b.emulated
        emulated.hold(order)
        # the bars up to the last one it was checked on are history
        emulated._seen[order.ref] = rec['seen_dt'] or rec['created_dt'] or \
            emulated._seen[order.ref]
        if fire:
            emulated._firing.add(order.ref)
        self._accept(order)
        self.rearm.moved(order)
        return order

    # -- bookkeeping -----------------------------------------------------------------------
    def _end(self, key, status, reason, now=None, action=None):
        rec = {k: v for k, v in self.recs[key].items() if k not in ('id', 'run_id',
                                                                    'updated_at')}
        rec.update(status=status, reason=reason)
        self.rearm.add_to_batch(rec)
        self.done.add(key)
        entry = {'from': _key_name(key), 'type': rec['exectype'], 'side': rec['side'],
                 'size': rec['size'], 'price': rec['price'], 'ref': now.ref if now else None,
                 'action': action or status.lower(), 'reason': reason}
        self.report.append(entry)
        if now is not None:
            log.info('rearm: order %s (%s %s %s, price %s) re-armed as order %d: %s',
                     entry['from'], rec['exectype'], rec['side'], rec['size'], rec['price'],
                     now.ref, reason)
        elif status in ('NotRearmed',):
            log.error('rearm: order %s (%s %s %s) NOT re-armed: %s', entry['from'],
                      rec['exectype'], rec['side'], rec['size'], reason)
            self.rearm.not_rearmed.append(entry)
        else:
            log.warning('rearm: order %s (%s %s %s) not re-armed, %s: %s', entry['from'],
                        rec['exectype'], rec['side'], rec['size'], status, reason)

    def _unknown(self, keys, why):
        """The exchange's state is not known: the rows stay alive (a later
        restart tries again), this process runs without them, said loudly."""
        for key in keys:
            self.done.add(key)
            rec = self.recs[key]
            entry = {'from': _key_name(key), 'type': rec['exectype'], 'side': rec['side'],
                     'size': rec['size'], 'price': rec['price'], 'ref': None,
                     'action': 'not re-armed', 'reason': why}
            log.error('rearm: order %s (%s) NOT re-armed: %s', entry['from'],
                      rec['exectype'], why)
            self.report.append(entry)
            self.rearm.not_rearmed.append(entry)

    # -- brackets -------------------------------------------------------------------------
    def _brackets(self):
        kids_of = {}
        for key, rec in self.recs.items():
            if rec['role'] == 'held' and rec['parent_ref'] is not None:
                kids_of.setdefault((key[0], rec['parent_ref']), []).append(key)
        for pkey, kids in kids_of.items():
            kind, found = self.state.get(pkey, ('missing', None))
            if kind == 'open':
                self._kids_follow(pkey, kids, found)
            elif kind == 'filled':
                self._kids_now(pkey, kids, found)
            elif kind in ('ended', 'absent'):
                why = ('its parent %s ended unfilled while no process ran (%s)' % (
                    _key_name(pkey), found.get('status') if found else 'never placed'))
                for key in kids:
                    self._end(key, 'Canceled', why)
                self._end(pkey, 'Canceled' if found else 'Rejected', 'ended on the exchange '
                          'while no process ran' if found else 'never reached the exchange')
            elif kind == 'unknown':
                self._unknown(kids + [pkey], found)
            else:
                for key in kids:
                    self._end(key, 'NotRearmed', 'its parent order %s is not in the journal '
                              'with a client id' % _key_name(pkey))

    def _kids_follow(self, pkey, kids, parent):
        """The parent still works (adopted): its children wait for it again,
        or go out now for what it filled while no process ran."""
        made = [self._make(k, self.recs[k], parent=parent) for k in kids]
        self.rearm.save(parent, role='exchange')
        # what it filled while no process ran is in the adopted position: its
        # exits must cover it now, not wait for its next fill (orderlinks.py)
        before = parent.info.get('filled_before') or 0.0
        note = ('' if not before else '; it had filled %s while no process ran: its exits go '
                'out now for that and grow with its later fills' % before)
        self._end(pkey, 'Rearmed', 'working on the exchange: adopted' + note, parent)
        how = ('sent for what its parent %d filled' if before else
               'held until its parent %d fills') % parent.ref
        for key, order in zip(kids, made):
            self._end(key, 'Rearmed', how, order)
        # last: a child sent now commits the batch first, the old rows' end with it
        self.b.links._transmit(parent.ref, made)    # "children added to a parent already sent"

    def _kids_now(self, pkey, kids, raw):
        """The parent filled while no process ran: the children go now, sized
        to what it filled, as their OCO pair."""
        prec = self.recs[pkey]
        filled = float(raw['filled'])
        parent = (BuyOrder if prec['side'] == 'buy' else SellOrder)(
            owner=None, data=self.data, size=filled, exectype=Order.Market)
        parent.executed.size = filled if parent.isbuy() else -filled
        parent.status = Order.Completed     # a stand-in: its fills are in the adopted position
        made = [self._make(k, self.recs[k], parent=parent) for k in kids]
        self._end(pkey, 'Completed', 'filled %s while no process ran' % filled)
        for key, order in zip(kids, made):
            self._end(key, 'Rearmed', 'its parent filled %s while no process ran: sent now, '
                      'sized to it' % filled, order)
        self.b.links._transmit(parent.ref, made)    # not alive: released at once

    # -- OCO groups -------------------------------------------------------------------------
    def _groups(self):
        groups = {}
        for key, rec in self.recs.items():
            if key not in self.done and rec['oco_ref'] is not None:
                groups.setdefault((key[0], rec['oco_ref']), []).append(key)
        for keys in groups.values():
            states = {k: self._member(k) for k in keys}
            unknown = [s[1] for s in states.values() if s[0] == 'unknown']
            if unknown:
                self._unknown(keys, unknown[0])
                continue
            fired = next((k for k in keys if self._fired(k, states[k])), None)
            if fired is not None:
                self._group_fired(keys, states, fired)
            else:
                self._relink(keys, states)

    def _member(self, key):
        rec = self.recs[key]
        if rec['client_id']:
            return self.state[key]
        return ('local', None)

    def _fired(self, key, state):
        kind, found = state
        rec = self.recs[key]
        if kind == 'filled' or (kind == 'open' and rec['role'] == 'firing'):
            return True
        if kind == 'ended':     # a rejected bracket child leaves its sibling protecting
            return not (rec['protective'] and found.get('status') == 'rejected')
        return False

    def _group_fired(self, keys, states, fired):
        fkind, found = states[fired]
        what = 'its OCO sibling %s %s while no process ran' % (
            _key_name(fired), 'filled' if fkind in ('filled', 'open') else found.get('status'))
        for key in keys:
            kind, order = states[key]
            if key == fired:
                if fkind == 'open':
                    self._end(key, 'Rearmed', 'triggered: on the exchange, adopted', order)
                else:
                    self._end(key, 'Completed' if fkind == 'filled' else 'Canceled',
                              'ended on the exchange while no process ran')
            elif kind == 'open':
                order.addinfo(rearm_reason=what)
                self.b.cancel(order)
                self._end(key, 'Canceled', what + ': cancelled on the exchange')
            else:
                self._end(key, 'Canceled', what)

    def _relink(self, keys, states):
        members, fire, send = [], [], []
        for key in keys:
            rec, (kind, found) = self.recs[key], states[key]
            if kind == 'open':
                members.append(found)
                self._end(key, 'Rearmed', 'working on the exchange: adopted', found)
            elif kind == 'local' or (kind == 'absent' and rec['role'] == 'firing'):
                order = self._make(key, rec)    # watched here again (a firing one fires)
                members.append(order)
                fire.append((key, rec, order))
            elif kind == 'absent':      # its create never landed: sent now
                order = self._make(key, rec)
                members.append(order)
                send.append((key, rec, order))
            else:
                self._end(key, 'Canceled', 'ended on the exchange while no process ran')
        if len(members) > 1:
            links = self.b.links
            for order in members[1:]:
                links.ocoize(order, members[0])
            if any(self.recs[k]['protective'] for k in keys):
                links._protective.add(id(links._groups[members[0].ref]))
        for key, rec, order in fire:
            self._place_local(key, rec, order)
        for key, rec, order in send:
            self._send(key, rec, order)
        for order in members:
            if order.ref in self.b._book._by_ref:
                self.rearm.save(order, role='exchange')

    def _place_local(self, key, rec, order):
        emulated = self.b.emulated
        emulated.hold(order)
        emulated._seen[order.ref] = rec['seen_dt'] or rec['created_dt'] or \
            emulated._seen[order.ref]
        if rec['role'] == 'firing':
            emulated._firing.add(order.ref)
        self._accept(order)
        self.rearm.moved(order)
        why = ('triggered before the crash, never sent: sent now' if rec['role'] == 'firing'
               else 'watched again from stop %s' % rec['price'])
        self._end(key, 'Rearmed', why + self._gap(order), order)

    def _gap(self, order):
        """Bars that closed while no process ran and that the backfill no
        longer holds were never checked against the stop: said (and noted
        in ``order.info['rearm_gap']``)."""
        seen, bar = self.b.emulated._seen[order.ref], _bar_days(self.data)
        first = self.data.datetime[0]
        if not bar or not len(self.data) or first - seen <= bar * 1.5:
            return ''
        gap = ('; the bars from %s to before %s closed while no process ran and are not in '
               'the backfill: they were never checked against the stop' % (
                   num2date(seen + bar), num2date(first)))
        log.warning('rearm: order %d%s', order.ref, gap)
        order.addinfo(rearm_gap=gap[2:])
        return gap

    def _send(self, key, rec, order):
        self._end(key, 'Rearmed', 'never reached the exchange: sent now', order)
        self._accept(order)
        self.b.emulated.send(order)

    # -- the rest ----------------------------------------------------------------------------
    def _lone(self, key, rec):
        kind, found = self.state.get(key, ('local', None))
        if kind == 'unknown':
            self._unknown([key], found)
        elif rec['role'] in _LOCAL and kind == 'local':
            order = self._make(key, rec)
            self._place_local(key, rec, order)
        elif kind == 'open':
            self._end(key, 'Rearmed', 'working on the exchange: adopted', found)
        elif kind == 'absent' and rec['role'] == 'firing':
            order = self._make(key, rec)
            self._place_local(key, rec, order)      # triggered, never sent: fires now
        elif kind == 'absent' and rec['parent_ref'] is not None:
            self._send(key, rec, self._make(key, rec))
        elif kind == 'absent':
            self._end(key, 'Rejected', 'never reached the exchange')
        else:
            self._end(key, 'Completed' if kind == 'filled' else 'Canceled',
                      'ended on the exchange while no process ran (%s)' % found.get('status'))
