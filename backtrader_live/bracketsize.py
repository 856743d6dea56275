"""A bracket's children follow their parent's fills while it still works.

The children go out at the parent's first fill, sized to what filled
(orderlinks.py); each later fill grows them. A child is one backtrader Order
from start to end (the strategy's own object, its size updated, never a new
order it did not create), but on the exchange it may take more than one
order over its life. How it grows, per venue and kind (``Product(amend=...)``
in the exchange profiles, taken from the exchanges' published docs):

- **amend** in place (same order, same client id, no moment without it):
  Bybit v5 ``POST /v5/order/amend`` takes a new ``qty`` for a limit or an
  untriggered conditional order; Binance futures ``PUT /fapi|dapi/v1/order``
  a new quantity and price for a LIMIT order only. The amount asked is
  absolute, so an amend whose answer was lost and that is sent once more
  (after its receive window, and only if a look-up by client id shows it did
  not land) cannot double anything.
- **replace**, where no amend keeps the order as it is (Binance futures' stop
  orders, which live in the algo service; Binance spot, whose one-request
  ``cancelReplace`` fixes the new quantity before the exchange has cancelled:
  a fill of the old order in between would be sold twice): the exchange
  order is cancelled, and only once its end is known, with every fill it
  made applied (recovery.py settles a lost cancel answer by client id), the
  rest goes out as a new exchange order with a new client id. Cancel first:
  two resting reduce-only exits for more than the position, or a spot sell
  the locked coin cannot cover, are what the order of operations avoids; the
  price is a moment without that one exit, two requests long.
- a spot bracket's stop is triggered locally (emulated.py): its size is
  just updated.

An exchange order of a child that ends having filled less than the child's
size (it filled in full before an amend could grow it, or was cancelled to be
replaced) is followed by a new one for the rest, at the same price; a stop
that has triggered sends its rest at market. The strategy sees the fills as
Partial, then Completed once the child's whole size is filled.
"""
import logging
import time

from backtrader import Order

from .broker import conditional
from .errors import LiveError, OrderNotFound, OrderRejected, UnknownOutcome
from .orders import exact_sum
from .recovery import _left

log = logging.getLogger(__name__)

_STOPS = (Order.Stop, Order.StopLimit, Order.StopTrail, Order.StopTrailLimit)
_EPS = 1e-12


def step_down(broker, data, amount):
    """``amount`` truncated to the market's step (0.0 below one step)."""
    if amount <= _EPS:
        return 0.0
    try:
        return float(broker.store.exchange.amount_to_precision(data.p.dataname, amount))
    except Exception:   # ccxt refuses an amount below the step
        return 0.0


def set_total(order, size):
    """The child's size is now ``size`` (unsigned), what it filled kept."""
    signed = size if order.isbuy() else -size
    order.size = order.created.size = signed
    order.executed.remsize = exact_sum(signed, -order.executed.size)


class ChildSizer:
    """Grows the children of a working parent (Cerebro's thread only)."""

    def __init__(self, broker):
        self.broker = broker
        self._replacing = set()     # refs whose exchange order is being cancelled to regrow
        self._unsettled = {}        # ref -> (child, amount, sent at) of an amend without answer
        self._dropped = set()       # refs cancelled for good (OCO, the strategy): never regrown
        self._waiting = {}          # ref -> child filled in full while its parent still works

    # -- growing ------------------------------------------------------------------------
    def resize(self, kid, size):
        """Make ``kid`` (alive, released) cover ``size`` in all."""
        b = self.broker
        if size <= abs(kid.created.size) + _EPS or kid.ref in self._dropped:
            return      # children only grow (a parent's fill never shrinks)
        if kid.ref in self._waiting:
            set_total(kid, size)
            return      # sent when its parent ends (parent_ended)
        old = abs(kid.created.size)
        set_total(kid, size)
        if kid.ref in b.emulated._local or kid.ref in self._replacing:
            return      # local (its trigger sends the new size), or regrown when it ends
        if not b._book.client_id(kid) or b._book.cancel_pending(kid) or \
                not b._book.by_client_id(b._book.client_id(kid)):
            return      # not on the exchange now: its end decides (see ended())
        log.info('bracket child %s grows from %s to %s', kid.ref, old, size)
        if self._amendable(kid):
            self._amend(kid)
        else:
            self._replace(kid)

    def _amendable(self, kid):
        product = self.broker.store.product
        kinds = product.extra.get('amend', ()) if product is not None else ()
        if kid.info.get('triggered_locally') or kid.executed.size and kid.exectype in _STOPS:
            return False    # a triggered stop is a market order now
        kind = 'stop' if conditional(kid) else 'limit' if kid.exectype == Order.Limit else None
        return kind in kinds

    def _exchange_amount(self, kid):
        """The amount the child's current exchange order must have."""
        return exact_sum(abs(kid.created.size), -kid.info.get('filled_replaced', 0.0))

    def _amend(self, kid):
        b, store = self.broker, self.broker.store
        cid = b._book.client_id(kid)
        amount = self._exchange_amount(kid)
        params = dict(store.client_id_query(cid, conditional(kid)))
        price = kid.price if kid.exectype == Order.Limit else None
        sent = time.monotonic()
        try:
            store.edit_order(b._book.exchange_id(kid), kid.data.p.dataname,
                             'limit' if price else 'market', 'buy' if kid.isbuy() else 'sell',
                             amount, price, params)
        except UnknownOutcome as exc:
            log.warning('amend of %s had no answer (%s); asking by client id', cid, exc)
            self._unsettled[kid.ref] = (kid, amount, sent)
            self.settle(kid)
            return
        except (OrderRejected, OrderNotFound) as exc:
            # filled or ended meanwhile (the race), or refused: ask what it is
            log.warning('amend of %s refused (%s); asking the exchange', cid, exc)
            self._after_refusal(kid)
            return
        except LiveError as exc:
            log.warning('amend of %s failed (%s); asking by client id', cid, exc)
            self._unsettled[kid.ref] = (kid, amount, sent)
            self.settle(kid)
            return
        self._unsettled.pop(kid.ref, None)

    def _after_refusal(self, kid):
        b = self.broker
        cid = b._book.client_id(kid)
        b.reconcile([kid], balances=False)     # ended: its rest may have gone out anew
        if kid.alive() and b._book.client_id(kid) == cid and b._book.by_client_id(cid) is kid \
                and kid.ref not in self._replacing and not b._book.cancel_pending(kid):
            self._replace(kid)      # still open, refused for another reason: regrow it so

    def settle(self, kid, now=True):
        """An amend without an answer: look the order up by client id (at
        once, then once its receive window has passed); if it is open with
        the old amount then, the amend never landed and is sent once more
        (an absolute amount: it can never double the exit)."""
        kid, amount, sent = self._unsettled.get(kid.ref, (kid, None, None))
        if amount is None or not kid.alive():
            self._unsettled.pop(kid.ref, None)
            return
        b = self.broker
        if not now and _left(b, sent):
            return      # it may still land: ask when it no longer can
        cid = b._book.client_id(kid)
        try:
            raw = b.store.fetch_order_by_client_id(cid, kid.data.p.dataname, conditional(kid))
        except LiveError as exc:
            # asked again a receive window from now (not on every loop round)
            log.warning('look-up of %s failed (%s); asking again later', cid, exc)
            self._unsettled[kid.ref] = (kid, amount, time.monotonic())
            return
        if raw is None:
            return
        b.apply_update(b._update_from(raw, 'reconcile'), kid)
        if abs(float(raw.get('amount') or 0.0) - amount) <= _EPS * max(1.0, amount):
            self._unsettled.pop(kid.ref, None)      # it landed
        elif kid.alive() and (raw.get('status') or 'open') == 'open' and \
                not b._book.cancel_pending(kid) and not _left(b, sent):
            log.warning('the amend of %s never reached the exchange; sending it again', cid)
            self._amend(kid)

    def on_next(self):
        """Every bar: amends still without an answer are looked up again."""
        for kid, _, _ in list(self._unsettled.values()):
            self.settle(kid, now=False)

    def _replace(self, kid):
        log.info('bracket child %s: cancelling its exchange order to send it for %s',
                 kid.ref, abs(kid.created.size))
        self._replacing.add(kid.ref)
        self.broker._cancel_live(kid)

    def parent_ended(self, kid):
        """The parent of ``kid`` is done: a child that filled in full while
        it worked sends what the parent filled since, or is Completed."""
        if self._waiting.pop(kid.ref, None) is None or not kid.alive():
            return
        rest = step_down(self.broker, kid.data, exact_sum(
            abs(kid.created.size), -kid.info.get('filled_replaced', 0.0)))
        if rest > _EPS:
            self._send_rest(kid, rest)
        else:
            kid.completed()
            self.broker.notify(kid)

    def waiting(self):
        """Children filled in full, waiting for their working parent's end."""
        return [k for k in self._waiting.values() if k.alive()]

    def cancel_waiting(self, kid):
        """True if ``kid`` waited for its parent (not on the exchange): ended here."""
        if self._waiting.pop(kid.ref, None) is None:
            return False
        kid.cancel()
        self.broker.notify(kid)
        return True

    def forget(self, kid):
        """The child is being cancelled for good (OCO, the strategy)."""
        self._dropped.add(kid.ref)
        self._replacing.discard(kid.ref)
        self._unsettled.pop(kid.ref, None)

    # -- an exchange order of a child ended ------------------------------------------------
    def ended(self, kid, closed):
        """True if ``kid`` goes on with a new exchange order: its exchange
        order ended (``closed``: filled in full; else cancelled) having filled
        less than the child's size, and no one cancelled the child."""
        b = self.broker
        replacing = kid.ref in self._replacing
        self._replacing.discard(kid.ref)
        self._unsettled.pop(kid.ref, None)
        # the exchange's amounts (a buy on spot is executed net of its fee)
        filled = exact_sum(kid.info.get('filled_replaced', 0.0), b._book.gross_filled(kid))
        rest = step_down(b, kid.data, exact_sum(abs(kid.created.size), -filled))
        if replacing and not closed and rest <= _EPS and kid.ref not in self._dropped:
            b._book.remove(kid)     # cancelled to grow, but what it filled is the whole
            kid.completed()
            b.notify(kid)
            return True
        waits = closed and rest <= _EPS and kid.parent is not None and kid.parent.alive()
        if not (closed or replacing) or (rest <= _EPS and not waits) or kid.ref in self._dropped:
            self._dropped.discard(kid.ref)
            return False
        b._book.remove(kid)
        kid.addinfo(filled_replaced=filled)
        if waits:
            # Filled in full while the parent still works (its rest is being
            # cancelled: orderlinks): a fill of the parent that raced it must
            # still find this exit, so it stays Partial until the parent ends.
            self._waiting[kid.ref] = kid
            kid.status = Order.Partial
            b.notify(kid)
            return True
        if closed:
            kid.status = Order.Partial
            b.notify(kid)           # its last fill: the child is not done
            if not kid.alive():
                return True
        self._send_rest(kid, rest)
        return True

    def _send_rest(self, kid, rest):
        b = self.broker
        if kid.executed.size and kid.exectype in _STOPS or kid.info.get('triggered_locally'):
            # the stop has triggered: what is left goes at market
            kid.addinfo(triggered_locally=True)
            type_, price, params = 'market', None, b.order_options(kid)
        else:
            type_, price, params = b.order_request(kid)
        log.info('bracket child %s: sending %s more (%s)', kid.ref, rest, type_)
        b.emulated._send(kid, type_, price, params, amount=rest)
