"""A fill applied to backtrader's Position and Trade, exactly in decimals.

backtrader sums sizes as binary floats: long 0.009, sell 0.002 leaves
0.006999999999999999; ``close()`` then sends 0.006 (the step truncates) and
0.001 stays open; a position of 1e-18 is not flat. Here the position after a
fill is the decimal sum of the sizes the exchange sent, on the market's step
for contracts, so flat is 0.0 and ``close()`` sends what the exchange holds.

backtrader's Trade (upstream, built by the strategy from the order's
execution bits) sums the same sizes as floats; :class:`TradeSizes` replays
that sum so the bit that closes a trade makes the float sum land on exactly
zero, and the trade is reported closed.
"""
import datetime
import logging

from backtrader import Order

from .errors import LiveError
from .events import CANCELED, CLOSED, EXPIRED, REJECTED, TERMINAL, fill_from_ccxt, order_from_ccxt
from .orders import exact_sum, snap

log = logging.getLogger(__name__)

_EPS = 1e-12


def update_position(position, size, price, step=None):
    """``position.update`` with an exact size. Returns (size, price, opened,
    closed) as upstream's does; ``step``: snap the size to it (contracts)."""
    old = position.size
    position.update(size, price)        # upstream: price and the branches
    new = snap(exact_sum(old, size), step)
    position.size = new
    if not new:
        position.price = 0.0
        return new, position.price, 0.0, size
    if old and (old > 0) != (new > 0):      # reversed: the rest opens
        return new, position.price, new, -old
    if old and (old > 0) == (size > 0) or not old:
        return new, position.price, size, 0.0
    return new, position.price, 0.0, size


class TradeSizes:
    """The float size of each open backtrader Trade, as upstream will sum it
    (per owner, data and tradeid)."""

    def __init__(self):
        self._sizes = {}

    def closing_part(self, order, closed):
        """``closed`` adjusted by float noise only, so that the trade it ends
        sums to exactly 0.0 in upstream's Trade; and record the bit."""
        key = (id(order.owner), id(order.data), order.tradeid)
        size = self._sizes.get(key, 0.0)
        if closed:
            if size and abs(size + closed) <= 1e-9 * abs(closed):
                closed = -size          # the trade's own float: ends at 0.0
            size += closed
        self._sizes[key] = size
        return closed

    def opening_part(self, order, opened):
        key = (id(order.owner), id(order.data), order.tradeid)
        if opened:
            self._sizes[key] = self._sizes.get(key, 0.0) + opened


class LiveFills:
    """The live broker's side of an order update: status, fills, position
    and trade (a mixin of BrokerBase; Cerebro's thread only)."""

    def apply_update(self, update, order):
        """Bring a backtrader order to the exchange's state; idempotent."""
        if not order.alive():
            return
        if update.exchange_id:
            self._book.set_exchange_id(order, update.exchange_id)
        for alias in update.aliases:
            self._book.add_alias(order, alias)
            self._adopt_orphans(alias, order)
        if update.status == REJECTED:
            self._finish_rejected(order, update.reason or 'rejected by the exchange')
            return
        if order.status == Order.Submitted:
            order.accept(self)
            self.notify(order)
        # The exchange may announce the end (FILLED) before the fills that
        # make it up arrive (a REST answer, Bybit's order topic before its
        # execution topic): remember the announcement until they are in.
        status, filled = self._book.announce(order, update.status, update.filled)
        # A fill may also outrun its order's status (Bybit's execution topic
        # before its order topic, reordered messages): once every unit asked
        # for is filled the order is done, and its last fill is no "Partial".
        # the exchange order's own amount: a bracket child sent anew for its
        # rest (bracketsize.py) counts what its earlier orders filled apart
        total = abs(order.created.size) + order.info.get('filled_before', 0.0) \
            - order.info.get('filled_replaced', 0.0)
        complete_at = filled if status == CLOSED else total
        self._apply_fills(order, update.fills, complete_at)
        if status not in TERMINAL and self._book.gross_filled(order) + _EPS >= total:
            status = CLOSED
        if self._book.gross_filled(order) + _EPS < filled:
            if update.source != 'reconcile' and self.store.user_stream_live:
                # The stream brings these fills in moments; asking REST for
                # them on every order would only spend rate limit.
                self._book.await_fills(order)
                return
            self._fetch_missing_fills(order, complete_at)
            if self._book.gross_filled(order) + _EPS < filled:
                self._book.await_fills(order)     # try again later, never guess
                return
        self._book.fills_arrived(order)
        if status in TERMINAL:
            self._finish(order, status)

    def _update_from(self, raw, source):
        """An OrderUpdate from a ccxt order, with the exchange's expiry words."""
        return order_from_ccxt(raw, source, getattr(self.store, 'EXPIRED_WHEN', None))

    def _fetch_missing_fills(self, order, complete_at):
        """The exchange says more was filled than we saw: fetch the trades."""
        try:
            trades = self.store.fetch_order_trades(self._book.exchange_id(order),
                                                   order.data.p.dataname)
        except LiveError as exc:
            log.warning('could not fetch fills of %s: %s', self._book.client_id(order), exc)
            return
        trades = sorted(trades, key=lambda t: t.get('timestamp') or 0)
        self._apply_fills(order, [fill_from_ccxt(t) for t in trades], complete_at)

    def _apply_fills(self, order, fills, complete_at):
        """Execute new fills, each notified as Partial unless it completes
        the order (``complete_at``: the filled amount that means done), whose
        Completed notification follows. A bracket's children grow once for
        them all (orderlinks.py)."""
        with self.links.fill_batch():
            for fill in fills:
                if not self._apply_fill(order, fill):
                    continue
                if complete_at is None or self._book.gross_filled(order) + _EPS < complete_at:
                    order.partial()
                    self.notify(order)

    def _apply_fill(self, order, fill):
        if not self._book.new_fill(order, fill.trade_id):
            return False   # the same trade from the REST answer and the stream
        # the exchange's trade ids, one per execution bit, for the journal (a
        # fill seen twice is then recorded once, by that id)
        order.addinfo(trade_ids=tuple(order.info.get('trade_ids') or ()) + (fill.trade_id,))
        rules = self._rules(order.data)
        size, comm = self.account.fill_terms(fill, rules)
        signed = self.account.settle_dust(rules, self.positions[order.data].size,
                                          size if order.isbuy() else -size)
        self._execute_fill(order, signed, fill.price, comm, fill.timestamp)
        self._book.add_gross(order, fill.amount)
        return True

    def _execute_fill(self, order, size, price, comm, ts):
        position = self.positions[order.data]
        psize_orig, pprice_orig = position.size, position.price
        rules = self._rules(order.data)
        psize, pprice, opened, closed = update_position(
            position, size, price, rules.amount_step if rules.contract else None)
        pprice = position.price = self.account.entry_price(
            rules, psize_orig, pprice_orig, position)
        closed = self._trade_sizes.closing_part(order, closed)
        self._trade_sizes.opening_part(order, opened)
        ci = order.comminfo
        share = abs(closed) / abs(size) if size else 0.0
        closedcomm, openedcomm = comm * share, comm * (1.0 - share)
        closedvalue = ci.getoperationcost(closed, pprice_orig)
        openedvalue = ci.getoperationcost(opened, price)
        pnl = ci.profitandloss(-closed, pprice_orig, price)
        margin = ci.getvaluesize(size, price)
        dt = order.data.date2num(_utc(ts)) if ts else order.data.datetime[0]
        executed = exact_sum(order.executed.size, size)
        order.execute(dt, size, price, closed, closedvalue, closedcomm, opened,
                      openedvalue, openedcomm, margin, pnl, psize, pprice)
        # upstream sums these as floats too: keep them the exchange's decimals
        order.executed.size = executed
        order.executed.remsize = exact_sum(order.created.size, -executed)
        order.status = Order.Partial if order.executed.remsize else Order.Completed

    def _finish(self, order, status):
        if status in (CLOSED, CANCELED) and self.links.exchange_order_ended(order, status):
            return      # a bracket child goes on with a new exchange order (bracketsize.py)
        if status == CLOSED:
            order.completed()
        elif status == CANCELED and order.info.get('expiring'):
            order.status = Order.Expired    # cancelled by us at its `valid` (emulated.py)
        elif status == CANCELED:
            order.cancel()
        elif status == EXPIRED:
            # Upstream's Order.expire() only expires by its own validity date
            # (and never a market order); the exchange's word is final here.
            order.status = Order.Expired
        self.notify(order)
        self._book.remove(order)

    def _finish_rejected(self, order, reason):
        if order.info.get('sent_reduce_only'):
            reason = '%s (sent reduce-only: %s; pass reduceOnly=False to send it as a plain ' \
                     'order)' % (reason, order.info['sent_reduce_only'])
        order.addinfo(reject_reason=reason)
        log.warning('order %s (%s) rejected: %s', order.ref, self._book.client_id(order), reason)
        order.reject(self)
        self.notify(order)
        self._book.remove(order)


def _utc(ts_ms):
    return datetime.datetime.fromtimestamp(ts_ms / 1000.0, datetime.timezone.utc).replace(tzinfo=None)
