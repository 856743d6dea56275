"""Linked orders live: OCO groups and brackets, emulated by the broker.

backtrader keeps these links in its BackBroker, not on the orders: an OCO
group in ``_ocos``/``_ocol`` (filled by ``_ocoize`` while ``buy()``/``sell()``
build the order) and a bracket chain (``parent=``, ``transmit=False``) in its
``_pchildren`` queue. Live, the exchange knows none of it, so the broker
keeps the links here (Cerebro's thread only) and acts on every status change
it notifies (:meth:`OrderLinks.notified`):

- OCO: the first order of a group that fills (even partly), is cancelled,
  expires or is rejected cancels its siblings at once. Two fills racing on
  the stream (both filled before the cancel landed) are both applied: a fill
  is never dropped, and the strategy is told (``notify_store('oco race')``).
- Brackets: the chain is held until its last order is transmitted (as
  upstream does); the parent goes to the exchange, the children stay held
  (Submitted/Accepted with the parent, in upstream's notification order).
  At the parent's first fill they go out, sized to what it filled, reduce-only
  on derivatives (plain sells/buys of what is held on spot), linked as an
  OCO pair; each later fill of the parent grows them (bracketsize.py), so a
  parent that keeps working for hours never leaves a filled part without its
  exits, and one cancelled or expired after a fill leaves them for what
  filled. A fill too small for the market's minimums waits for the next (or
  for the parent's end). A parent rejected before filling rejects its
  children, one cancelled or expired cancels them (upstream's statuses).
  Once an exit fills while its parent still works, the parent's rest is
  cancelled: the trade is being closed, and more entry would be unprotected.

Spot exchanges lock the coin a resting sell holds, so the two children of
a spot bracket cannot both rest for the full amount: there the stop child is
triggered locally (emulated.py) and the target rests on the exchange.
"""
import collections
import contextlib
import logging
import math

from backtrader import Order

from .bracketsize import ChildSizer, step_down
from .events import CLOSED
from .orders import _set_size, native_stop_missing, order_problem

log = logging.getLogger(__name__)

# statuses after which an OCO group fires (the order filled or ended)
_FIRES = (Order.Partial, Order.Completed, Order.Canceled, Order.Expired, Order.Rejected,
          Order.Margin)
_FILLS = (Order.Partial, Order.Completed)
_STOPS = (Order.Stop, Order.StopLimit, Order.StopTrail, Order.StopTrailLimit)


class OrderLinks:
    """The OCO groups and bracket chains of a live broker."""

    def __init__(self, broker):
        self.broker = broker
        self._groups = {}       # order ref -> its OCO group (a shared list of orders)
        self._fired = {}        # id(group) -> the order that fired it
        self._chains = {}       # parent ref -> orders of a chain not transmitted yet
        self._kids = {}         # parent ref -> children held until the parent's first fill
        self._following = {}    # parent ref -> children out, growing with its fills
        self._growing = {}      # parent ref -> parent whose new fills its children await
        self._batch = 0         # > 0 while fills are applied together (fill_batch)
        self._exits = set()     # refs of bracket children sent out (their fills end the entry)
        self.sizer = ChildSizer(broker)
        self._held = {}         # ref -> a held child (not on the exchange)
        self._releasing = set()     # refs going through the normal submit path
        self._todo = collections.deque()
        self._deferred = []         # parents done whose children wait for next()
        self.exiting = False        # the run ends: local orders end, resting ones stay
        self._protective = set()    # ids of the OCO pairs made of a bracket's children
        self._busy = False

    # -- capture (the broker's hooks) ---------------------------------------------------
    def ocoize(self, order, oco):
        """Record ``order`` in ``oco``'s group (from BackBroker._ocoize's hook)."""
        if oco is None:
            return
        group = self._groups.get(oco.ref)
        if group is None:
            group = self._groups[oco.ref] = [oco]
        group.append(order)
        self._groups[order.ref] = group

    def submit(self, order):
        """True if ``order`` is held or refused here instead of being sent now."""
        if order.ref in self._releasing:
            return False
        ended = next((o for o in self._groups.get(order.ref, ()) if o is not order
                      and (not o.alive() or self._fired.get(id(self._groups[order.ref])))),
                     None)
        if ended is not None:
            self._refuse(order, 'its OCO group has already fired (order %s is %s): sent now '
                         'it would be an unlinked order' % (ended.ref, ended.getstatusname()))
            return True
        if order.parent is None and order.transmit:
            return False
        problem = order_problem(order)
        if problem:
            self._refuse(order, problem)
            return True
        pref = (order.parent or order).ref
        if order.parent is not None and pref not in self._chains and pref not in self._kids:
            # upstream: a child whose parent is gone is rejected (no Submitted)
            order.addinfo(reject_reason='its parent order %s is not alive' % pref)
            order.reject(self.broker)
            self.broker.notify(order)
            return True
        chain = self._chains.setdefault(pref, [])
        chain.append(order)
        if order.transmit:
            del self._chains[pref]
            self._transmit(pref, chain)
        return True

    def _transmit(self, pref, chain):
        parent = chain[0] if chain[0].ref == pref else None
        kids = [o for o in chain if o is not parent]
        for kid in kids:
            self._held[kid.ref] = kid
        self._kids.setdefault(pref, []).extend(kids)
        if parent is None:      # children added to a parent already sent
            p = kids[0].parent
            for kid in kids:
                self._follow(kid, p)
            if _filled(p):
                self._track(p)
            return
        self._releasing.add(parent.ref)
        try:
            self.broker.submit_order(parent)
        finally:
            self._releasing.discard(parent.ref)

    def _refuse(self, order, reason):
        self.broker._reject_locally(order, reason)

    # -- cancel of a held order ------------------------------------------------------------
    def cancel(self, order):
        """True if ``order`` is held here (so cancelled here); a cancelled
        parent's children follow through :meth:`notified`."""
        if order.ref in self._chains:
            # never transmitted: nothing was notified yet; drop the chain
            for o in self._chains.pop(order.ref):
                o.cancel()
                self.broker.notify(o)
            return True
        held = self._held.pop(order.ref, None)
        if held is None:
            if order.parent is not None:
                if self.sizer.cancel_waiting(order):
                    return True
                self.sizer.forget(order)    # cancelled for good: never regrown
            return self.broker.emulated.cancel(order)
        if held.alive():
            held.cancel()
            self.broker.notify(held)
        return True

    def held(self):
        """Alive orders held here, not on the exchange."""
        return [o for o in self._held.values() if o.alive()] + self.sizer.waiting()

    # -- acting on status changes -------------------------------------------------------------
    def notified(self, order):
        """Every live notification passes here; actions run one at a time
        (a cancel answered at once notifies again, re-entering)."""
        if order.ref not in self._kids and order.ref not in self._following \
                and order.ref not in self._groups and order.ref not in self._exits:
            return
        # the group as it is now: a sibling's cancel answered at once must
        # still find it when its own (queued) notification is handled
        self._todo.append((order, order.status, self._groups.get(order.ref)))
        if self._busy:
            return
        self._busy = True
        touched = []
        try:
            while self._todo:
                order, status, group = self._todo.popleft()
                if order.ref in self._kids or order.ref in self._following:
                    self._parent_status(order, status)
                if order.ref in self._exits:
                    if status in _FILLS:
                        self._exit_filled(order)
                    if not order.alive():
                        self._exits.discard(order.ref)
                if group is not None and status in _FIRES and not self.exiting:
                    self._oco_fired(order, status, group)
                    touched.append(group)
        finally:
            self._busy = False
        for group in touched:
            if all(not o.alive() for o in group):
                self._forget(group)
        if self._growing and not self._batch:
            self.grow()     # growths noted while a batch ended inside this loop

    def _follow(self, kid, parent):
        """A held child takes its parent's Submitted/Accepted as upstream's do."""
        if parent.status in (Order.Submitted, Order.Accepted, Order.Partial,
                             Order.Completed) and kid.status == Order.Created:
            kid.submit(self.broker)
            self.broker.notify(kid)
        if parent.status != Order.Submitted and kid.status == Order.Submitted:
            kid.accept(self.broker)
            self.broker.notify(kid)

    def _parent_status(self, parent, status):
        kids = self._kids.get(parent.ref, ())
        if status in (Order.Submitted, Order.Accepted):
            for kid in kids:
                self._follow(kid, parent)
        elif status in (Order.Rejected, Order.Margin) and not _filled(parent):
            self._end_kids(parent, 'reject')
        elif status in (Order.Canceled, Order.Expired) and not _filled(parent):
            self._end_kids(parent, 'cancel')
        elif status in _FIRES and _filled(parent):
            if _ready(parent.data):
                self._track(parent)
            else:   # the feed is mid-load (a final sync): send from next() instead
                self._deferred.append(parent)

    def flush(self):
        """Children whose parent filled while the feed was loading a bar; and
        growths whose amend had no answer (bracketsize.py)."""
        while self._deferred:
            parent = self._deferred.pop(0)
            if parent.ref in self._kids or parent.ref in self._following:
                self._track(parent)
        self.grow()
        self.sizer.on_next()

    def exchange_order_ended(self, order, status):
        """True if a bracket child's exchange order ended short of the
        child's size and the child goes on with a new one (bracketsize.py)."""
        return order.parent is not None and self.sizer.ended(order, status == CLOSED)

    def _end_kids(self, parent, how):
        for kid in self._kids.pop(parent.ref, []):
            self._held.pop(kid.ref, None)
            if not kid.alive():
                continue
            if how == 'reject':
                kid.addinfo(reject_reason='its parent order %s was rejected' % parent.ref)
                kid.reject(self.broker)
            else:
                kid.cancel()
            self.broker.notify(kid)

    def _track(self, parent):
        """The children follow what ``parent`` has filled: out at its first
        fill, grown at each later one, for the whole of it at its end."""
        # once for all the fills of one answer or message (a market order
        # walking a thin book fills in many parts at once)
        self._growing[parent.ref] = parent
        if not self._batch:
            self.grow()

    @contextlib.contextmanager
    def fill_batch(self):
        """Fills applied together (fills.py): the children grow once, after."""
        self._batch += 1
        try:
            yield
        finally:
            self._batch -= 1
        if not self._batch and not self._busy:
            self.grow()

    def grow(self):
        """Children out for, or grown to, what their parents filled so far."""
        for parent in list(self._growing.values()):
            self._growing.pop(parent.ref, None)
            if parent.ref in self._kids and not self._send_kids(parent):
                continue
            self._grow(parent)

    def _grow(self, parent):
        for kid in self._following.get(parent.ref, ()):
            if kid.alive():
                self.sizer.resize(kid, self._size(kid, parent))
        if not parent.alive():
            for kid in self._following.pop(parent.ref, ()):
                self.sizer.parent_ended(kid)

    def _send_kids(self, parent):
        """Send the children, sized to what the parent filled, as an OCO pair;
        False (held still) while that is below the market's minimums and the
        parent may fill more."""
        kids = [k for k in self._kids[parent.ref] if k.alive()]
        small = [k for k in kids if not self._placeable(k, self._size(k, parent))]
        if small and parent.alive():
            log.info('bracket %s: filled %s so far, below what its exits may be sent for; '
                     'they go out at its next fill', parent.ref, parent.executed.size)
            return False
        del self._kids[parent.ref]
        for kid in kids:
            self._held.pop(kid.ref, None)
            self._follow(kid, parent)
        if len(kids) > 1:
            group = list(kids)
            self._protective.add(id(group))
            for kid in kids:
                self._groups[kid.ref] = group
        self._following[parent.ref] = kids
        self._exits.update(k.ref for k in kids)
        for kid in kids:
            if kid.alive():     # a sibling sent first may have ended it (OCO)
                self._release(kid, parent)
        return True

    def _size(self, kid, parent):
        """What ``kid`` must cover now, in the market's step (truncated)."""
        broker = self.broker
        size = _filled(parent)
        if not broker._rules(kid.data).contract and kid.issell():
            # sell what is held (a fee taken in the coin leaves less), plus
            # what this exit already sold
            size = min(size, abs(kid.executed.size) + abs(broker.positions[kid.data].size))
        return step_down(broker, kid.data, size)

    def _placeable(self, kid, size):
        rules = self.broker._rules(kid.data)
        if size <= 0 or (rules.min_amount and size < rules.min_amount):
            return False
        exempt = rules.contract and (self.broker.store.kind in
                                     self.broker.store.REDUCE_ONLY_SKIPS_MIN_NOTIONAL)
        price = kid.price or kid.data.close[0]
        return exempt or not rules.min_notional or size * price >= rules.min_notional

    def _release(self, kid, parent):
        broker = self.broker
        size = self._size(kid, parent)
        spot = not broker._rules(kid.data).contract
        if not spot and 'reduceOnly' not in kid.info:   # spot has no reduce-only
            kid.addinfo(reduceOnly=True)
        _set_size(kid, size)
        kid.activate()
        if (spot and kid.exectype in _STOPS and self._groups.get(kid.ref)) or \
                native_stop_missing(kid, broker.store):
            # spot: the resting sibling locks the coin; elsewhere the exchange
            # has no such stop order: trigger this one locally
            broker.emulated.hold(kid, local_stop=True)
            return
        broker.emulated.send(kid)

    def claim(self, order):
        """``order`` fires its group now (a local stop about to be sent):
        its siblings' cancels must not cancel it in turn."""
        group = self._groups.get(order.ref)
        if group is not None and id(group) not in self._fired:
            self._fired[id(group)] = order
            if order.ref in self._exits:
                self._exit_filled(order)    # a local stop: its market sell goes out now
        return [o for o in group or () if o is not order]

    def _oco_fired(self, order, status, group):
        fired = self._fired.get(id(group))
        if fired is None and status == Order.Rejected and id(group) in self._protective:
            # a bracket child refused (e.g. a partial fill below one exit's
            # minimum): its sibling still protects the position, keep it
            log.warning('bracket child %s rejected; its sibling stays', order.ref)
            return
        if fired is None:
            fired = self._fired[id(group)] = order
            log.info('OCO: order %s %s; cancelling its siblings', order.ref,
                     order.getstatusname())
        elif fired is not order and status in _FILLS:
            self._race(order, fired)
        if fired is order:
            for sibling in group:
                if sibling is not order and sibling.alive():
                    self.broker.cancel(sibling)

    def _exit_filled(self, kid):
        """A bracket's exit filled while its parent still works: cancel the
        parent's rest (more entry now would have no exit); fills of it that
        race the cancel still grow this exit (bracketsize.py)."""
        parent = kid.parent
        if parent is not None and parent.alive():
            log.info('bracket exit %s filled; cancelling the rest of its parent %s',
                     kid.ref, parent.ref)
            self.broker.cancel(parent)

    def _race(self, order, fired):
        """A sibling filled before our cancel reached it: the fill stands."""
        msg = ('order %s filled (%s) after its OCO sibling %s had %s: the cancel came too late; '
               'the position includes both' % (order.ref, order.executed.size, fired.ref,
                                                fired.getstatusname().lower()))
        log.warning('OCO race: %s', msg)
        order.addinfo(oco_race=fired.ref)
        self.broker.store.put_notification('oco race', msg)

    def _forget(self, group):
        # keep the 'fired' mark while any member could still report a late fill
        self._fired.pop(id(group), None)
        self._protective.discard(id(group))
        for o in group:
            self._groups.pop(o.ref, None)


def _filled(parent):
    """What ``parent`` has filled: in this process, plus, for an order
    adopted at a restart, what it had filled before (restart.py): that part
    is in the adopted position and its exits must cover it too."""
    return abs(parent.executed.size) + parent.info.get('filled_before', 0.0)


def _ready(data):
    """True when the data's current bar is complete (not mid-load): orders
    may be priced and gated against it."""
    return len(data) > 0 and not math.isnan(data.datetime[0])
