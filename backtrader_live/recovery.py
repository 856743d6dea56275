"""Settling an order whose create got no answer: never twice, never lost.

A create that timed out, was reset or got a 5xx may have been accepted. The
broker never sends it again; it asks for our client order id:

- found: that is the order, placed once; it is tracked from there;
- not found: final only once the request can no longer be accepted. The
  exchange refuses a signed request older than its receive window (Binance
  ``recvWindow``, Bybit ``X-BAPI-RECV-WINDOW``), so once that window has
  passed since sending, an absent order was never placed: it is Rejected
  with that reason. Before that, a delayed request may still land, so the
  broker waits out the window and asks once more;
- the queries fail as well: the order stays Submitted and ``reconcile()``
  (after a stream reconnect, or by the REST poll) settles it by the same rule.

The store's ``recv_window`` parameter (ms) sets the window, so it bounds how
long a lost create can keep ``buy()`` waiting.
"""
import logging
import time

from .errors import LiveError

log = logging.getLogger(__name__)

#: seconds past the window before "not found" is final (server processing time)
SETTLE_MARGIN = 0.5

NOT_PLACED = ('the create request got no answer and the exchange has no order %s after its '
              'receive window: nothing was placed')


def _left(broker, sent):
    """Seconds until a signed request sent at ``sent`` (monotonic) can no
    longer be accepted: the exchange refuses one older than its window."""
    if sent is None:
        return 0.0
    deadline = sent + broker.store.recv_window_ms / 1000.0 + SETTLE_MARGIN
    return max(0.0, deadline - time.monotonic())


def window_left(broker, order):
    """Seconds until an unanswered create of ``order`` can no longer land."""
    return _left(broker, broker._book.sent_at(order))


def resolve_unknown(broker, order, cid, symbol, conditional):
    """The exchange's order for ``cid`` (a ccxt dict), or None: then the
    order was Rejected (surely never placed) or stays Submitted (unknown)."""
    store = broker.store
    failures = 0
    while failures < broker.p.resolve_attempts:
        try:
            raw = store.fetch_order_by_client_id(cid, symbol, conditional)
        except LiveError as exc:
            log.warning('resolving %s failed (%s); attempt %d', cid, exc, failures + 1)
            broker.halt_if_fatal(exc)
            if store._backoff.wait(failures, store._stop_event):
                break
            failures += 1
            continue
        if raw is not None:
            log.info('order %s was placed once; tracking it', cid)
            return raw
        left = window_left(broker, order)
        if not left:
            broker._finish_rejected(order, NOT_PLACED % cid)
            return None
        log.info('order %s not on the exchange yet; asking again in %.1fs, when its '
                 'receive window has passed', cid, left)
        if store._stop_event.wait(left):
            break
    log.error('order %s outcome still unknown; reconcile will settle it', cid)
    return None


# -- cancels -------------------------------------------------------------------------
# A cancel is settled the same way. Its answer may be lost (a reset, a timeout, a
# 5xx) after the exchange cancelled the order, or the cancel may never have
# arrived. Sending it again blindly would answer "order not found" at best; so
# the order stays alive with its cancel pending, and the broker asks for the
# client order id (now, and again every ``fill_wait`` seconds until it knows):
#
# - the order ended (cancelled, filled, expired): apply what the exchange says;
# - the order is still open once the cancel's receive window has passed: that
#   cancel can no longer land, so it never arrived; only then is a new cancel
#   sent (at most ``resolve_attempts`` in all, then the broker gives up and
#   says so: the order stays open and the strategy may cancel again);
# - the look-up fails too: nothing changes; the stream's event or the next
#   look-up settles it. No error reaches the strategy.

GAVE_UP = ('cancel of %s refused %d times; giving up: the order stays open on the exchange '
           '(cancel it again to retry)')


def cancel_window_left(broker, order):
    """Seconds until the last cancel sent for ``order`` can no longer land."""
    return _left(broker, broker._book.cancel_sent_at(order))


def settle_cancel(broker, order, raw):
    """After looking the order up (``raw``, a ccxt dict or None): resend the
    cancel if it surely never arrived. Returns True if a new cancel was sent."""
    book = broker._book
    if not order.alive() or not book.cancel_pending(order) or raw is None:
        return False
    if (raw.get('status') or 'open') != 'open' or cancel_window_left(broker, order):
        return False     # ending (the stream will say how), or our cancel may still land
    cid = book.client_id(order)
    if book.cancels_sent(order) >= broker.p.resolve_attempts:
        log.error(GAVE_UP, cid, book.cancels_sent(order))
        broker.store.put_notification('cancel failed', cid)
        book.cancel_dropped(order)
        return False
    log.warning('the cancel of %s never reached the exchange (still open after its receive '
                'window); sending it again', cid)
    broker._cancel_live(order)
    return True
