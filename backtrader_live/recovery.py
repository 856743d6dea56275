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


def window_left(broker, order):
    """Seconds until an unanswered create of ``order`` can no longer land."""
    sent = broker._book.sent_at(order)
    if sent is None:
        return 0.0
    deadline = sent + broker.store.recv_window_ms / 1000.0 + SETTLE_MARGIN
    return max(0.0, deadline - time.monotonic())


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
