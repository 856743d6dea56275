"""Bookkeeping of live orders, and rounding orders to a market's rules."""
import math
import numbers
import time
from decimal import Decimal

import ccxt
from backtrader import Order

from .events import TERMINAL


# -- exact quantities ----------------------------------------------------------------
# Exchanges count in decimals (0.009 - 0.002 = 0.007); binary floats do not
# (0.006999999999999999), and a position that is off by 1e-18 is not flat and
# cannot be closed in the market's step. Every quantity here is the shortest
# decimal of a float (what the exchange sent), so sums are done on those.

def dec(x):
    """The decimal a float stands for (its shortest repr), exactly."""
    return x if isinstance(x, Decimal) else Decimal(repr(float(x)))


def exact_sum(*values):
    """The decimal sum of ``values`` as a float: 0.009 - 0.002 == 0.007."""
    return float(sum((dec(v) for v in values), Decimal(0)))


def snap(value, step):
    """``value`` on the nearest multiple of ``step`` (contracts are whole steps)."""
    if not step:
        return value
    step = dec(step)
    return float((dec(value) / step).to_integral_value() * step)


class _Record:
    __slots__ = ('order', 'client_id', 'exchange_id', 'gross', 'trade_ids',
                 'awaiting_since', 'final_status', 'filled', 'sent_at',
                 'cancel_sent_at', 'cancel_checked_at', 'cancels_sent')

    def __init__(self, order, client_id):
        self.order = order
        self.client_id = client_id
        self.exchange_id = None
        self.gross = 0.0            # filled amount before fees, as the exchange counts
        self.trade_ids = set()      # fills already applied (de-duplication)
        self.awaiting_since = None  # monotonic time we started waiting for fills
        self.final_status = None    # a terminal status announced by the exchange
        self.filled = 0.0           # the most the exchange said was filled
        self.sent_at = time.monotonic()   # when the create left (recvWindow rule)
        self.cancel_sent_at = None  # when our last cancel left; None: no cancel pending
        self.cancel_checked_at = None   # when we last asked how a pending cancel ended
        self.cancels_sent = 0


class OrderBook:
    """Our live orders by backtrader ref and by client order id.

    Only alive orders are kept: a terminal order is removed, so the book
    never grows over a long run.
    """

    def __init__(self):
        self._by_ref = {}
        self._by_cid = {}
        self._by_xid = {}           # every exchange id an order is known by

    def add(self, order, client_id):
        rec = _Record(order, client_id)
        self._by_ref[order.ref] = rec
        self._by_cid[client_id] = rec
        order.addinfo(client_id=client_id)

    def remove(self, order):
        rec = self._by_ref.pop(order.ref, None)
        if rec is not None:
            self._by_cid.pop(rec.client_id, None)
            for xid in [x for x, r in self._by_xid.items() if r is rec]:
                del self._by_xid[xid]

    def by_exchange_id(self, exchange_id):
        rec = self._by_xid.get(exchange_id) if exchange_id else None
        return rec.order if rec else None

    def add_alias(self, order, exchange_id):
        rec = self._by_ref.get(order.ref)
        if rec is not None and exchange_id:
            self._by_xid[str(exchange_id)] = rec

    def by_client_id(self, client_id):
        rec = self._by_cid.get(client_id)
        return rec.order if rec else None

    def client_id(self, order):
        rec = self._by_ref.get(order.ref)
        return rec.client_id if rec else order.info.get('client_id')

    def sent_at(self, order):
        """Monotonic time the order's create was sent (None: not ours)."""
        rec = self._by_ref.get(order.ref)
        return rec.sent_at if rec else None

    def exchange_id(self, order):
        rec = self._by_ref.get(order.ref)
        return rec.exchange_id if rec else None

    def set_exchange_id(self, order, exchange_id):
        rec = self._by_ref.get(order.ref)
        if rec is not None and rec.exchange_id is None:
            rec.exchange_id = exchange_id
            order.addinfo(exchange_id=exchange_id)
        if rec is not None:
            self._by_xid[str(exchange_id)] = rec

    def alive(self):
        return [r.order for r in self._by_ref.values() if r.order.alive()]

    # -- cancels: pending until the exchange says how the order ended ------------
    def cancel_sent(self, order):
        rec = self._by_ref.get(order.ref)
        if rec is not None:
            rec.cancel_sent_at = rec.cancel_checked_at = time.monotonic()
            rec.cancels_sent += 1

    def cancel_pending(self, order):
        """True while a cancel we sent has not ended the order."""
        rec = self._by_ref.get(order.ref)
        return rec is not None and rec.cancel_sent_at is not None

    def cancel_sent_at(self, order):
        rec = self._by_ref.get(order.ref)
        return rec.cancel_sent_at if rec else None

    def cancels_sent(self, order):
        rec = self._by_ref.get(order.ref)
        return rec.cancels_sent if rec else 0

    def cancel_dropped(self, order):
        """Give up on a cancel (refused for good): the order is plain open again."""
        rec = self._by_ref.get(order.ref)
        if rec is not None:
            rec.cancel_sent_at = rec.cancel_checked_at = None

    def cancels_unsettled(self):
        """Alive orders with a cancel sent that has not ended them yet."""
        return [r.order for r in self._by_ref.values()
                if r.cancel_sent_at is not None and r.order.alive()]

    def cancels_due(self, wait):
        """Alive orders whose cancel has not ended them for ``wait`` s since
        we last asked (each is returned at most once per ``wait``)."""
        now = time.monotonic()
        due = [r for r in self._by_ref.values() if r.cancel_sent_at is not None
               and r.order.alive() and now - r.cancel_checked_at >= wait]
        for rec in due:
            rec.cancel_checked_at = now
        return [r.order for r in due]

    def await_fills(self, order):
        rec = self._by_ref.get(order.ref)
        if rec is not None and rec.awaiting_since is None:
            rec.awaiting_since = time.monotonic()

    def announce(self, order, status, filled):
        """(status, filled) known so far: a terminal status, once announced,
        stays; the filled amount only grows."""
        rec = self._by_ref[order.ref]
        if status in TERMINAL:
            rec.final_status = status
        rec.filled = max(rec.filled, filled or 0.0)
        return rec.final_status or status, rec.filled

    def fills_arrived(self, order):
        rec = self._by_ref.get(order.ref)
        if rec is not None:
            rec.awaiting_since = None

    def awaiting(self):
        return [r.order for r in self._by_ref.values() if r.awaiting_since is not None]

    def overdue(self, wait):
        """Orders whose announced fills have not arrived within ``wait`` s."""
        now = time.monotonic()
        late = [r for r in self._by_ref.values()
                if r.awaiting_since is not None and now - r.awaiting_since > wait]
        for rec in late:
            rec.awaiting_since = None
        return [r.order for r in late]

    def new_fill(self, order, trade_id):
        """True the first time a trade id is seen for this order."""
        rec = self._by_ref.get(order.ref)
        if rec is None or trade_id in rec.trade_ids:
            return False
        rec.trade_ids.add(trade_id)
        return True

    def add_gross(self, order, amount):
        rec = self._by_ref[order.ref]
        rec.gross = exact_sum(rec.gross, amount)

    def gross_filled(self, order):
        rec = self._by_ref.get(order.ref)
        return rec.gross if rec else 0.0


def _set_size(order, amount):
    signed = amount if order.isbuy() else -amount
    order.size = order.created.size = order.executed.remsize = signed


def round_order(order, exchange, rules, min_notional=True):
    """Round an order in place to the market's steps; the reason if invalid.

    Amounts are truncated (never more than asked), prices rounded to the
    tick. Checks the minimum amount and (unless ``min_notional`` is False:
    a reduce-only order where the exchange exempts those) the minimum
    notional after rounding, because that is what the exchange will judge.
    """
    symbol = rules.symbol
    try:
        amount = float(exchange.amount_to_precision(symbol, abs(order.size)))
    except (ccxt.InvalidOrder, ccxt.ArgumentsRequired, ValueError):
        amount = 0.0
    if amount <= 0:
        return ('amount %.8g is below the market step %s for %s'
                % (abs(order.size), rules.amount_step, symbol))
    if rules.min_amount and amount < rules.min_amount:
        return ('amount %s is below the minimum %s for %s'
                % (amount, rules.min_amount, symbol))
    _set_size(order, amount)
    if order.exectype in (Order.StopTrail, Order.StopTrailLimit):
        return _notional_problem(order, amount, rules, min_notional)   # prices trail later
    if order.price is not None and order.exectype != Order.Market:
        order.price = order.created.price = float(
            exchange.price_to_precision(symbol, order.price))
    if order.pricelimit:
        order.pricelimit = order.plimit = order.created.pricelimit = float(
            exchange.price_to_precision(symbol, order.pricelimit))
    return _notional_problem(order, amount, rules, min_notional)


def _notional_problem(order, amount, rules, min_notional):
    ref_price = order.pricelimit or order.price or order.created.pclose
    if min_notional and rules.min_notional and ref_price and \
            amount * ref_price < rules.min_notional:
        return ('notional %.8g (amount %s x price %s) is below the minimum %s for %s'
                % (amount * ref_price, amount, ref_price, rules.min_notional, rules.symbol))
    return None


# -- what a strategy may pass -------------------------------------------------------------
# A NaN from an indicator, an inf, a string or a missing price must reject that
# one order with a reason, never crash the run (decimal.InvalidOperation,
# TypeError deep in the rounding). Checked for paper and live orders alike,
# whether or not risk_management is on.

NUMBER = 'a finite number > 0 (int, float or Decimal)'
_PRICED = (Order.Limit, Order.Stop, Order.StopLimit)
NUMERIC_OPTIONS = ('takeProfitPrice',)       # order keyword arguments that are prices
FLAG_OPTIONS = ('reduceOnly', 'postOnly')    # ... that are True/False


def _is_number(value, signed=False):
    """A finite number > 0 (``signed``: of any sign but zero: a sell's size)."""
    # the usual cases first, without the ABC isinstance below (per order in a backtest)
    if type(value) is float:
        return math.isfinite(value) and (abs(value) if signed else value) > 0
    if type(value) is int:
        return (abs(value) if signed else value) > 0
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, Decimal)):
        return False
    try:
        return math.isfinite(value) and (abs(value) if signed else value) > 0
    except (TypeError, ValueError, ArithmeticError):
        return False


def _bad(name, value, why):
    return '%s %r is not valid%s: %s must be %s' % (name, value, why, name, NUMBER)


def input_problem(exectype, size, price=None, plimit=None, trailamount=None,
                  trailpercent=None, options=None):
    """Why these order arguments cannot make an order (a clear sentence), or None."""
    kind = Order.ExecTypes[exectype] if isinstance(exectype, int) and \
        0 <= exectype < len(Order.ExecTypes) else 'Market'
    if not _is_number(size, signed=True):
        return _bad('size', size, '')
    if price is None and exectype in _PRICED:
        return 'a %s order needs a price: price must be %s' % (kind, NUMBER)
    for name, value in (('price', price), ('plimit', plimit), ('trailamount', trailamount),
                        ('trailpercent', trailpercent)):
        if value is not None and not _is_number(value):
            return _bad(name, value, ' for a %s order' % kind)
    for name, value in (options or {}).items():
        if name in NUMERIC_OPTIONS and value is not None and not _is_number(value):
            return _bad(name, value, '')
        if name in FLAG_OPTIONS and not isinstance(value, bool):
            return '%s %r is not valid: %s must be True or False' % (name, value, name)
    return None


def placeholder(value):
    """What an order object can hold in place of a non-number (NaN)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return float('nan')
    return value


def order_problem(order):
    """:func:`input_problem` for an order already built."""
    return input_problem(order.exectype, order.size, order.price, order.pricelimit,
                         order.trailamount, order.trailpercent, dict(order.info))


# The exchange order type each backtrader type needs (exchanges.profile.ORDER_TYPES):
# natively, and when an emulated one (emulated.py) triggers.
NATIVE = {Order.Market: 'market', Order.Limit: 'limit', Order.Stop: 'stop',
          Order.StopLimit: 'stop_limit'}
SENT_AS = {**NATIVE, Order.StopTrail: 'market', Order.StopTrailLimit: 'limit',
           Order.Close: 'market'}
# A bracket's stop child where the exchange has no such stop is triggered
# locally on closed bars and sent as this type (orderlinks.py, emulated.py).
TRIGGERED_AS = {Order.Stop: 'market', Order.StopLimit: 'limit'}


def native_stop_missing(order, store):
    """True if ``order`` is a Stop/StopLimit the exchange's market has no
    native order for (orderlinks triggers such a bracket child locally)."""
    return order.exectype in TRIGGERED_AS and NATIVE[order.exectype] not in store.order_types


def _instead(needs, offered):
    """What to use instead of a ``needs`` order, from what is ``offered``."""
    if needs == 'stop' and 'stop_limit' in offered:
        return 'use a StopLimit order (a stop with a limit price: price=..., plimit=...)'
    if needs == 'stop_limit' and 'stop' in offered:
        return 'use a Stop order (it fills at market when triggered)'
    if needs in ('stop', 'stop_limit'):
        send = 'Market' if 'market' in offered else 'Limit'
        return ('the exchange has no conditional orders: watch the price in next() and send '
                'a %s order when it is reached' % send)
    if needs == 'market':
        return 'use a Limit order at a price that crosses the book (a marketable limit)'
    return 'use a Market order'


def order_type_problem(order, store):
    """Why ``store``'s market cannot take ``order``'s type, or None: paper
    and live refuse the same orders, so a paper run shows what live would."""
    needs = SENT_AS.get(order.exectype)
    offered = store.order_types
    if needs is None or needs in offered:
        return None
    what = order.getordername()
    local = TRIGGERED_AS.get(order.exectype) if order.parent is not None else None
    if local in offered:
        return None     # a bracket's stop: triggered locally instead (orderlinks.py)
    instead = _instead(needs, offered)
    if local:
        what += (" (a bracket's stop, triggered locally and sent as a %s order where the "
                 'exchange has no stop order)' % local)
        instead = ("give the bracket a StopLimit stop (stopexec=Order.StopLimit, "
                   "stopargs={'plimit': ...}): sent as a limit order when it triggers"
                   if local == 'market' and 'limit' in offered else
                   'protect the position from next()')
    elif needs != NATIVE[order.exectype]:
        what += ' (sent as a %s order when it triggers)' % needs.replace('_', '-')
    return ('%s orders cannot be placed on %s %s: it takes %s orders only; %s'
            % (what, store.exchange_name, store.kind,
               ', '.join(t.replace('_', '-') for t in offered), instead))
