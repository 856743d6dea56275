"""Order types no exchange API gives as backtrader means them, emulated live.

Held here, in Cerebro's thread, and watched on every closed bar (the
broker's ``next()``, before the strategy sees the bar, as BackBroker does):

- StopTrail / StopTrailLimit: the stop follows the bar closes exactly as
  upstream's ``Order.trailadjust`` moves it (we call it), and is **triggered
  locally**: when a closed bar's range reaches the stop, a market order
  (StopTrailLimit: a limit at the trailed limit price) is sent. Why local and
  not a re-armed exchange stop: the exchanges' native trailing orders trail
  the tick price by their own rules (Binance: callbackRate in 0.1 % steps
  from an activation price, Bybit: a distance on the position), not
  upstream's bar-close rule, and cancel-and-replace of a resting stop on
  every bar costs two requests per bar and leaves a window without any stop.
- Close: backtrader fills it at the close of the *session* (upstream
  BackBroker: the first bar at or past ``order.dteos``, at the close of the
  session's last bar; on daily bars that is the next bar); live, a market
  order is sent when the bar that ends the session closes (its open plus
  its length reaches ``dteos``), so it fills at the session's closing price.
- The stop child of a spot bracket (orderlinks.py): spot exchanges lock the
  coin a resting sell holds, and the target child already holds it.
- ``valid`` (a datetime, a timedelta, ``Order.DAY``): an order whose
  validity has passed at a closed bar is cancelled on the exchange (held ones
  locally) and reported Expired, as upstream's ``Order.expire`` decides.

A locally triggered order needs this process running: if it stops, nothing
guards the position (docs/orders.md).
"""
import logging
import math

from backtrader import Order, TimeFrame

from .errors import FatalError, OrderRejected, UnknownOutcome
from .orders import order_problem
from .recovery import resolve_unknown

log = logging.getLogger(__name__)

LOCAL_TYPES = (Order.StopTrail, Order.StopTrailLimit, Order.Close)
SENT_AS_LIMIT = (Order.StopLimit, Order.StopTrailLimit)


class Emulated:
    """Orders watched locally, and the sending of held orders."""

    def __init__(self, broker):
        self.broker = broker
        self._local = {}        # ref -> order triggered locally
        self._seen = {}         # ref -> the last bar (datetime number) it was checked on
        self._firing = set()    # refs waiting for their siblings' cancels to settle
        self._skip_next = set()     # refs whose next new bar is still history
        self._done = {}             # id(data) -> the bar datetime on_next last passed

    def local(self):
        return [o for o in self._local.values() if o.alive()]

    def firing(self):
        """Triggered orders not sent yet: their siblings' cancels are pending."""
        return [self._local[r] for r in self._firing if r in self._local]

    # -- in ------------------------------------------------------------------------------
    def submit(self, order):
        """True if ``order``'s type is emulated: gated, accepted and held here."""
        b = self.broker
        if order.exectype == Order.Historical:
            # refused whether or not risk_management is on: nothing can send it
            b._reject_locally(order, b._rule_supported(order))
            return True
        if order.exectype not in LOCAL_TYPES:
            return False
        reason = b._input_problem or order_problem(order) or b.risk_limit_reason(order)
        if reason:
            b._reject_locally(order, reason)
            return True
        order.addcomminfo(b.getcommissioninfo(order.data))
        order.submit(b)
        b.notify(order)
        order.accept(b)
        b.notify(order)
        self.hold(order)
        return True

    def hold(self, order, local_stop=False):
        self._local[order.ref] = order
        # bars from the next one on (upstream activates a bracket child on the
        # bar after its parent filled): the current bar's range is history
        now = order.data.datetime[0] if len(order.data) else 0.0
        self._seen[order.ref] = max(order.created.dt, 0.0 if math.isnan(now) else now)
        if order.parent is not None and self._done.get(id(order.data)) == now:
            # A bracket child released after this bar's pass (from the
            # strategy's next(), or between two bars): its parent filled while
            # the next bar forms, so that bar is history too, as upstream
            # activates children on the bar after the parent's. Released in
            # the pass itself (the bar's own fills), the next bar counts.
            # Else whether the stream's fill landed before or after a bar
            # closed would decide if that bar's range counts.
            self._skip_next.add(order.ref)
        log.info('order %s (%s) is watched locally: it triggers on closed bars while this '
                 'process runs', order.ref, order.getordername())
        self.broker.rearm.moved(order)      # on disk: re-armed after a restart (rearm.py)

    def cancel(self, order):
        """True if ``order`` was watched here (now cancelled)."""
        if self._local.pop(order.ref, None) is None:
            return False
        self._firing.discard(order.ref)
        if order.alive():
            order.cancel()
            self.broker.notify(order)
        return True

    def send(self, order):
        """A held order (Accepted) goes out now: gated, then to the exchange,
        or watched here if its type is emulated."""
        if order.exectype in LOCAL_TYPES:
            self.hold(order)
            return
        reason = self.broker.risk_limit_reason(order)
        if reason:
            self._reject(order, reason)
            return
        self._send(order, *self.broker.order_request(order))

    def stopped(self):
        """The run ends: orders that live only in this process (watched here,
        or a bracket's held children) end with it, said aloud, never silently."""
        b = self.broker
        gone = self.local() + b.links.held()
        if not gone:
            return
        log.warning('the run ends: %d emulated order(s) stop being watched and are cancelled: '
                    '%s', len(gone), ', '.join('%s (%s)' % (o.ref, o.getordername())
                                              for o in gone))
        b.store.put_notification('emulated orders cancelled at exit', [o.ref for o in gone])
        b.links.exiting = True      # these cancels must not fire OCO groups on the exchange
        for order in gone:
            b.cancel(order)

    # -- every closed bar ------------------------------------------------------------------
    def on_next(self):
        self.broker.links.flush()
        for order in list(self._local.values()):
            if not order.alive():
                self._drop(order)
            elif order.ref in self._firing:
                self._fire(order)   # its siblings' cancels were pending
            elif self._new_bar(order):
                self._check(order)
        self._expire()
        for data in self.broker._datas:
            if len(data):
                self._done[id(data)] = data.datetime[0]

    def _new_bar(self, order):
        data = order.data
        if not len(data) or data.datetime[0] <= self._seen.get(order.ref, 0.0):
            return False
        self._seen[order.ref] = data.datetime[0]
        if order.ref in self._skip_next:
            self._skip_next.discard(order.ref)
            return False
        return True

    def _check(self, order):
        data = order.data
        if order.exectype == Order.Close:
            if _session_closed(order):
                self._fire(order)
            return
        stop = order.created.price
        hit = data.high[0] >= stop if order.isbuy() else data.low[0] <= stop
        if hit:
            log.info('order %s: bar %s reached the stop %s; sending it', order.ref,
                     data.datetime.datetime(0), stop)
            self._fire(order)
        elif order.exectype in (Order.StopTrail, Order.StopTrailLimit):
            stop = order.created.price
            order.trailadjust(data.close[0])     # upstream's rule, after the check
            if order.created.price != stop:
                self.broker.rearm.trailed(order)    # queued, not waited for (rearm.py)

    def _fire(self, order):
        siblings = [s for s in self.broker.links.claim(order) if s.alive()]
        for sibling in siblings:
            if not self.broker._book.cancel_pending(sibling):
                self.broker.cancel(sibling)
        if any(s.alive() for s in siblings):
            self._firing.add(order.ref)     # a sibling's cancel is pending: next round
            return
        self._firing.discard(order.ref)
        self._drop(order)
        if any(s.executed.size for s in siblings):
            # a sibling filled before its cancel: this side must not go out
            order.cancel()
            self.broker.notify(order)
            return
        order.triggered = True
        order.addinfo(triggered_locally=True)
        options = self.broker.order_options(order)
        if order.exectype in SENT_AS_LIMIT:
            ex = self.broker.store.exchange
            price = float(ex.price_to_precision(order.data.p.dataname, order.created.pricelimit))
            self._send(order, 'limit', price, options)
        else:
            self._send(order, 'market', None, options)

    def _drop(self, order):
        self._local.pop(order.ref, None)
        self._seen.pop(order.ref, None)
        self._skip_next.discard(order.ref)

    def _expire(self):
        b = self.broker
        for order in b._book.alive() + self.local():
            if not order.valid or order.exectype == Order.Market or not len(order.data) \
                    or order.data.datetime[0] <= order.valid or order.info.get('expiring'):
                continue
            log.info('order %s: valid until %s has passed; cancelling it', order.ref,
                     order.data.num2date(order.valid))
            if order.ref in self._local:
                self._drop(order)
                order.expire()
                b.notify(order)
            else:
                order.addinfo(expiring=True)    # the exchange's Canceled means Expired
                b.cancel(order)

    # -- out ---------------------------------------------------------------------------------
    def _reject(self, order, reason):
        order.addinfo(reject_reason=reason)
        log.warning('order %s rejected before sending: %s', order.ref, reason)
        order.reject(self.broker)
        self.broker.notify(order)

    def _send(self, order, type_, price, params, amount=None):
        """The broker's live send for an order already Accepted here (no
        second Submitted/Accepted): an unknown outcome is resolved by
        client id (recovery.py), never sent twice. ``amount``: the rest of a
        bracket child sent anew (bracketsize.py), else the order's size."""
        b, store = self.broker, self.broker.store
        symbol = order.data.p.dataname
        cid = store.new_client_id()
        order.addcomminfo(b.getcommissioninfo(order.data))
        b._book.add(order, cid)
        params[store.CLIENT_ID_PARAM] = cid
        b.rearm.sending(order)      # its client id on disk before the create (rearm.py)
        conditional = 'takeProfitPrice' in order.info or (
            order.exectype in (Order.Stop, Order.StopLimit)
            and not order.info.get('triggered_locally'))
        try:
            raw = store.create_order(symbol, type_, 'buy' if order.isbuy() else 'sell',
                                     amount or abs(order.size), price, params)
        except UnknownOutcome as exc:
            log.warning('create of %s had no answer (%s); resolving by client id', cid, exc)
            raw = resolve_unknown(b, order, cid, symbol, conditional)
            if raw is None:
                return
        except (OrderRejected, FatalError) as exc:
            b._finish_rejected(order, str(exc))
            b.halt_if_fatal(exc)
            return
        b.apply_update(b._update_from(raw, 'rest'), order)


def _session_closed(order):
    """True when the data's bar, which closed just now, ends the session of
    the bar the Close order was created on (live bars are stamped at their
    open, so the bar ends at its stamp plus its length)."""
    data = order.data
    length = _bar_days(data)
    return data.datetime[0] > order.created.dt and data.datetime[0] + length >= order.dteos


def _bar_days(data):
    """The data's bar length in days (backtrader's date numbers)."""
    minutes = {TimeFrame.Minutes: 1, TimeFrame.Days: 1440, TimeFrame.Weeks: 7 * 1440,
               TimeFrame.Months: 28 * 1440}.get(data._timeframe)
    if minutes is None:
        return 0.0
    return minutes * data._compression / 1440.0
