"""A bar's own fills in before the strategy sees the bar, as in a backtest.

A stop or a resting limit filled inside bar X is reported on the account
(user) stream; bar X's close comes on the market stream, another socket read
by another thread. When the close is handled first, the strategy's
``next()`` for bar X runs without the fill, and a bracket's children (held
here until the parent fills: orderlinks.py) go out a bar late: the position
has no stop for that bar, and a target the price already crossed fills at
the market. Upstream's BackBroker fills such an order while it processes bar
X, so the strategy sees it in ``next()`` of bar X and the children work from
bar X + 1.

So on every new closed bar, in the broker's ``next()`` (Cerebro's thread,
before the strategy's ``next()``), :class:`BarFills`:

1. finds our working orders on that bar's symbol that the bar's range
   reached, by upstream's fill rules (a buy limit at or above the low, a buy
   stop at or below the high, ...; a market order always), and keeps those
   with no fill reported since the symbol's previous bar (a partial fill
   counts as reported);
2. none: nothing more (the common path costs a few comparisons);
3. else waits for the account stream, at most half of ``bar_fill_wait``
   seconds (a broker parameter), applying its events as they come;
4. an order still without news is looked up once by REST (by client order
   id, its trades with it) on a named worker thread, waited for until
   ``bar_fill_wait`` seconds have passed in all, and its answer applied.

A look-up that fails or answers late never ends the run and never holds the
bar longer: a warning is logged, a late answer is applied when it comes
(fills are matched by trade id, so the stream's copy adds nothing), and the
stream's fill is applied when it arrives, as before. While the user stream
is down the REST look-up goes first. ``bar_fill_wait=None`` (or 0) turns
this off.
"""
import dataclasses
import logging
import math
import queue
import threading
import time
from typing import Optional

from backtrader import Order

from .errors import ConfigError, LiveError
from .events import OrderUpdate, fill_from_ccxt

log = logging.getLogger(__name__)

#: default seconds a closed bar may wait for its own fills (stream, then REST)
BAR_FILL_WAIT = 2.0
_SENT_AS_LIMIT = (Order.StopLimit, Order.StopTrailLimit)


def check_bar_fill_wait(value):
    """``value`` if it is a valid ``bar_fill_wait`` (seconds; None or 0:
    off); a ConfigError otherwise."""
    if value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0:
        raise ConfigError('bar_fill_wait must be a number of seconds >= 0 (the most a closed '
                          'bar waits for the fills made inside it: the account stream, then '
                          'one REST look-up), or None or 0 (off), got %r' % (value,))
    return value


def reached(order, high, low):
    """True if a bar trading from ``low`` to ``high`` reaches ``order``'s
    price by upstream's rules (BackBroker: a buy limit fills at or above the
    low, a buy stop triggers at or below the high; a stop-limit needs its
    trigger and its limit in the range). An order that went out as a market
    order (a Market, a locally triggered stop) fills whatever the range."""
    ex, buy = order.exectype, order.isbuy()
    if order.info.get('triggered_locally'):
        if ex not in _SENT_AS_LIMIT:
            return True
        return _limit_hit(buy, order.created.pricelimit, high, low)
    take_profit = order.info.get('takeProfitPrice')
    if take_profit is not None:
        # a conditional take-profit: triggered as the price comes to it
        if not (low <= take_profit if buy else high >= take_profit):
            return False
        return ex != Order.Limit or _limit_hit(buy, order.created.price, high, low)
    if ex == Order.Market:
        return True
    if ex == Order.Limit:
        return _limit_hit(buy, order.created.price, high, low)
    triggered = high >= order.created.price if buy else low <= order.created.price
    if ex == Order.StopLimit:
        return triggered and _limit_hit(buy, order.created.pricelimit, high, low)
    return triggered


def _limit_hit(buy, price, high, low):
    return low <= price if buy else high >= price


@dataclasses.dataclass
class LookupAnswer:
    """What the REST look-up of one order found (from the worker thread,
    through the broker's event queue): an update or the error."""
    ref: int
    update: Optional[OrderUpdate] = None
    error: Optional[Exception] = None


class BarFills:
    """The live broker's wait for the fills of the bar about to be shown."""

    def __init__(self, broker):
        self.broker = broker
        self._bars = {}         # id(data) -> the last bar (datetime number) looked at
        self._gross = {}        # order ref -> gross filled at its symbol's last bar
        self._asked = {}        # order ref -> order looked up and not answered yet
        self._lookups = None    # the REST worker (started on first need)
        self.waiting = ()       # refs of the orders a bar waits for now (tests, logs)
        self.held_bars = 0      # bars that waited for fills (metrics, tests)
        self.lookups = 0        # REST look-ups sent

    # -- every round of Cerebro's loop ---------------------------------------------------
    def on_next(self):
        bound = self.broker.p.bar_fill_wait
        due = self._due()
        if not due or not bound or self._stopping():
            return
        self._settle(due, bound)
        for order in due:      # what came now belongs to this bar, not the next
            self._gross[order.ref] = self.broker._book.gross_filled(order)

    def _stopping(self):
        b = self.broker
        return b.halted is not None or b._stopping()

    def _new_bars(self):
        """The datas that delivered a live bar since the last round."""
        fresh = []
        for data in self.broker._datas:
            if not len(data):
                continue
            dt = data.datetime[0]
            if math.isnan(dt) or self._bars.get(id(data)) == dt:
                continue
            self._bars[id(data)] = dt
            if getattr(data, '_laststatus', None) == data.LIVE:
                fresh.append(data)
        # the shortest timeframe first: its bar is the range just traded
        return sorted(fresh, key=lambda d: getattr(d, '_tf_ms', 0))

    def _due(self):
        """Orders the new bars reached whose fill the stream has not reported."""
        fresh = self._new_bars()
        if not fresh:
            return []
        book, due, looked = self.broker._book, [], set()
        alive = book.alive()
        for data in fresh:
            symbol, dt = data.p.dataname, data.datetime[0]
            for order in alive:
                if order.ref in looked or order.data.p.dataname != symbol:
                    continue
                looked.add(order.ref)
                before = self._gross.get(order.ref, 0.0)
                self._gross[order.ref] = gross = book.gross_filled(order)
                if gross > before or not order.created.dt < dt:
                    continue    # reported in this bar already, or placed after it
                if reached(order, data.high[0], data.low[0]):
                    due.append(order)
        alive_refs = {o.ref for o in alive}
        for ref in [r for r in self._gross if r not in alive_refs]:
            del self._gross[ref]
        return due

    # -- the bounded wait ---------------------------------------------------------------
    def _settle(self, due, bound):
        start = time.monotonic()
        self.held_bars += 1
        baseline = {o.ref: self._gross[o.ref] for o in due}

        def news(order):
            return (not order.alive() or order.ref not in self._asked and order.ref in asked
                    or self.broker._book.gross_filled(order) > baseline[order.ref])
        asked = set()
        try:
            self.waiting = tuple(o.ref for o in due)
            # a user stream that is down brings nothing: straight to REST
            stream_live = self.broker.store.user_stream_live
            left = self._await(due, start + bound / 2.0 if stream_live else start, news)
            if left:
                asked.update(o.ref for o in left)
                self._ask(left)
                left = self._await(left, start + bound, news)
            if left:
                log.warning('bar fill: no word on order(s) %s within bar_fill_wait=%ss (stream '
                            'and REST): the bar goes on without; their fills are applied '
                            'when they come', ', '.join(str(o.ref) for o in left), bound)
        finally:
            self.waiting = ()

    def _await(self, orders, deadline, news):
        """Apply stream events until each of ``orders`` has news or the
        deadline passes; returns those still without."""
        b = self.broker
        left = [o for o in orders if not news(o)]
        while left:
            wait = deadline - time.monotonic()
            if wait <= 0 or self._stopping():
                break
            try:
                event = b._events.get(wait)
            except b._events.empty_error:
                break
            b._handle_event(event)
            left = [o for o in left if not news(o)]
        return left

    # -- REST look-ups (a worker thread: its time never holds the bar past the bound) ---------
    def _ask(self, orders):
        from .broker import conditional     # here: the broker module imports this one
        b = self.broker
        if self._lookups is None:
            self._lookups = _Lookups(b.store, b._events.put, b._update_from)
        for order in orders:
            if order.ref in self._asked:
                continue        # an earlier bar's look-up not answered yet: its answer counts
            self.lookups += 1
            self._asked[order.ref] = order
            log.info('bar fill: order %s reached by the bar, no fill streamed yet; asking '
                     'the exchange', order.ref)
            self._lookups.ask(order.ref, b._book.client_id(order), order.data.p.dataname,
                              conditional(order))

    def answered(self, answer):
        """A look-up's answer (Cerebro's thread, from the event queue)."""
        order = self._asked.pop(answer.ref, None)
        if order is None:
            return
        if answer.error is not None:
            log.warning('bar fill look-up of order %s failed: %s; its fill is applied when '
                        'the stream brings it', order.ref, answer.error)
            self.broker.halt_if_fatal(answer.error)
        elif answer.update is not None:
            self.broker.apply_update(answer.update, order)

    def stop(self):
        if self._lookups is not None:
            self._lookups.stop()
            self._lookups = None


class _Lookups:
    """One named thread asking the exchange about orders, one at a time."""

    def __init__(self, store, put, update_from):
        self._store, self._put, self._update_from = store, put, update_from
        self._requests = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name='bt-live-bar-fills', daemon=True)
        self._thread.start()

    def ask(self, ref, client_id, symbol, conditional):
        self._requests.put((ref, client_id, symbol, conditional))

    def stop(self):
        self._stop.set()
        self._requests.put(None)
        # a call in flight ends within the store's timeout and retries
        self._thread.join(self._store.p.timeout * (self._store.p.rest_retries + 1) + 5.0)
        if self._thread.is_alive():
            log.warning('bar fill look-up thread still busy at stop; left to end on its own')

    def _run(self):
        while not self._stop.is_set():
            request = self._requests.get()
            if request is None:
                return
            ref = request[0]
            try:
                answer = LookupAnswer(ref, update=self._look(*request[1:]))
            except Exception as exc:    # LiveError mapped by the store, or anything else
                if not isinstance(exc, LiveError):
                    log.exception('bar fill look-up of order %s', ref)
                answer = LookupAnswer(ref, error=exc)
            if not self._stop.is_set():
                self._put(answer)

    def _look(self, client_id, symbol, conditional):
        """The order by our client id, with its trades if it has fills."""
        raw = self._store.fetch_order_by_client_id(client_id, symbol, conditional)
        if raw is None:
            return None
        update = self._update_from(raw, 'lookup')
        update.client_id = update.client_id or client_id
        if update.filled and not update.fills and update.exchange_id:
            trades = self._store.fetch_order_trades(update.exchange_id, symbol)
            update.fills = [fill_from_ccxt(t) for t in sorted(
                trades, key=lambda t: t.get('timestamp') or 0)]
        return update
