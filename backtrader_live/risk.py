"""Risk controls behind the broker's single gate, and the kill switch.

Exchange-agnostic: everything here reads the broker's generic state
(positions, value, open orders, market rules) and never an exchange module,
so the same rules guard a backtest, a paper run and a live run alike.

``BrokerBase.risk_limit_reason`` (and ``check_risk_limits``, its bool) runs
``broker.risk_rules``, a list of
callables ``rule(order) -> reason or None``; :func:`gate_rules` gives the
rules of this module bound to one broker. Each reads its limit from the
broker's params *when an order arrives*, so a limit set to ``None`` is off
and a limit changed during a run applies to the next order.

"Reduces exposure" is defined once, in :func:`reduces_exposure`; the kill
switch and the position limit both rely on it.
"""
import collections
import functools
import itertools
import logging
import threading

from backtrader import Order

from .accounts import contract_value

log = logging.getLogger(__name__)

# Orders whose price fields are not a price the user typed (or no price at all).
_NO_PRICE_CHECK = (Order.Market, Order.Close, Order.StopTrail, Order.StopTrailLimit)


# -- exposure ------------------------------------------------------------------------
def reduces_exposure(position_size, order_size):
    """True when ``order_size`` moves ``position_size`` toward zero without flipping it.

    Both sizes are signed (buy > 0, sell < 0). A flat position cannot be
    reduced; an order larger than the position would open the other side,
    so it counts as increasing exposure (close first, then open). A relative
    tolerance of 1e-9 absorbs float noise between a ``close()`` and the
    position it closes.
    """
    if not position_size or not order_size or position_size * order_size > 0:
        return False
    return abs(order_size) <= abs(position_size) * (1.0 + 1e-9)


def is_protective_child(order):
    """A bracket's stop/limit exit: opposite side of its parent's entry.

    Those exits close the position their parent opens; judged against the
    position at submit time (still flat) they would look like new shorts.
    """
    parent = getattr(order, 'parent', None)
    return parent is not None and parent.isbuy() != order.isbuy()


def increases_exposure(broker, order):
    """Whether ``order`` may grow the absolute position on its data.

    Market/Close orders already on their way to reduce the same position are
    netted first (they will fill): a ``close()`` while a flatten is pending
    would otherwise pass and, once both fill, open the other side. Resting
    conditional exits (stops, limits) are not netted, because one of them
    may never fill and a manual close must still be possible.
    """
    if is_protective_child(order):
        return False
    position = broker.getposition(order.data).size
    committed = sum(o.executed.remsize for o in open_orders(broker)
                    if o is not order and o.data is order.data
                    and o.exectype in (Order.Market, Order.Close)
                    and reduces_exposure(position, o.executed.remsize))
    remaining = position + committed
    if position and (remaining * position <= 0):
        return True      # already fully being closed: anything more opens the other side
    return not reduces_exposure(remaining, order.size)


# -- broker state, read generically -------------------------------------------------------
def market_rules(broker, data):
    """The market's rules (``MarketRules``) for ``data``, or None in a plain backtest.

    Our brokers give them per data (``BrokerBase.market_rules``: fetched once
    from the store); upstream brokers and store-less runs have none.
    """
    getter = getattr(broker, 'market_rules', None)
    if getter is None:
        return None
    try:
        return getter(data)
    except Exception as exc:    # a market lookup must never break sizing or the gate
        log.warning('no market rules for %s: %s', getattr(data, '_name', data), exc)
        return None


def open_orders(broker):
    """Orders not yet terminal: live ones from the broker's order book, paper
    ones from BackBroker's queues (submitted but unchecked, then pending)."""
    if getattr(broker, 'live', False):
        return broker.get_orders_open()
    queues = itertools.chain(getattr(broker, 'submitted', ()), getattr(broker, 'pending', ()))
    return [o for o in queues if o.alive()]


def reference_price(order):
    """The price an order is judged at: its limit, else its price, else the last close."""
    price = order.pricelimit or order.price
    if price and order.exectype not in (Order.Market, Order.Close):
        return price
    return order.created.pclose or (order.data.close[0] if len(order.data) else None)


def multiplier(broker, data):
    """backtrader's contract multiplier of ``data`` (1 for spot)."""
    return float(broker.getcommissioninfo(data).p.mult or 1.0)


def notional(broker, data, size, price):
    """Value of ``|size|`` at ``price`` in the account's cash currency.

    Exchange contracts are valued as the account values them (contract size;
    inverse contracts in the settle coin); everything else is size x price x
    backtrader's multiplier.
    """
    rules = market_rules(broker, data)
    if rules is not None and getattr(rules, 'contract', False):
        return contract_value(rules, abs(size), price)
    return abs(size) * price * multiplier(broker, data)


def gross_exposure(broker, datas):
    """Sum of the notional of every position at its last price.

    Runs every bar (RiskAnalyzer), so it asks in the cheapest order: the
    position first (a dict lookup; most bars of most datas are flat), the
    data's length (a chain of calls) only for a position that needs a price,
    and the close as ``data.lines.close``, a plain attribute, where
    ``data.close`` goes through LineSeries.__getattr__. A position on a data
    without bars yet (adopted from the exchange at start) has no price: 0.
    """
    gross = 0
    for data in datas:
        size = broker.getposition(data).size
        if size and len(data):
            gross += notional(broker, data, size, data.lines.close[0])
    return gross


def bar_time(data):
    """The data's current bar time (naive UTC), or None before its first bar."""
    return data.datetime.datetime(0) if len(data) else None


# -- the kill switch --------------------------------------------------------------------------
Trip = collections.namedtuple('Trip', 'kind reason since until')


class KillSwitch:
    """While tripped, only orders that reduce exposure pass the broker's gate.

    Each trip has a ``kind`` ('drawdown', 'daily_loss', 'exposure', or your
    own, e.g. 'manual') so conditions clear independently: a trip with an
    ``until`` time expires by itself once bar time reaches it; one without
    stays until :meth:`clear`. Thread-safe: an operator may trip or clear it
    from another thread while Cerebro submits orders.
    """

    def __init__(self):
        self._trips = {}
        self._lock = threading.Lock()

    def __getstate__(self):
        # Optimization pickles the broker for worker processes: not the lock.
        with self._lock:
            return {'_trips': dict(self._trips)}

    def __setstate__(self, state):
        self._trips = state['_trips']
        self._lock = threading.Lock()

    def trip(self, kind, reason, since=None, until=None):
        """Trip (or re-trip with a new reason/expiry) the ``kind`` condition."""
        with self._lock:
            self._trips[kind] = Trip(kind, reason, since, until)
        log.warning('kill switch tripped (%s): %s%s', kind, reason,
                    ' until %s' % until if until else '')

    def clear(self, kind=None):
        """Clear one condition, or all of them with ``kind=None``."""
        with self._lock:
            kinds = list(self._trips) if kind is None else [kind]
            cleared = [k for k in kinds if self._trips.pop(k, None) is not None]
        for k in cleared:
            log.info('kill switch cleared (%s)', k)
        return cleared

    def active(self, now=None):
        """``{kind: Trip}`` still in force at bar time ``now`` (expired ones dropped)."""
        with self._lock:
            expired = [k for k, t in self._trips.items()
                       if now is not None and t.until is not None and now >= t.until]
            for k in expired:
                del self._trips[k]
            trips = dict(self._trips)
        for k in expired:
            log.info('kill switch condition %s expired at %s', k, now)
        return trips

    @property
    def armed(self):
        """True if any condition is recorded (some may have expired by now):
        a cheap test that needs no bar time, taken without the lock (reading a
        dict's size is atomic)."""
        return bool(self._trips)

    @property
    def tripped(self):
        return bool(self.active())

    def __repr__(self):
        return 'KillSwitch(%s)' % (', '.join(sorted(self._trips)) or 'clear')


# -- the rules ----------------------------------------------------------------------------------
def rule_kill_switch(broker, order):
    if not broker.kill_switch.armed:    # the usual case: no bar time, no lock, no copy
        return None
    trips = broker.kill_switch.active(bar_time(order.data))
    if not trips or not increases_exposure(broker, order):
        return None
    why = '; '.join('%s: %s' % (t.kind, t.reason) for t in trips.values())
    return 'kill switch active (%s): only orders that reduce the position are accepted' % why


def rule_max_open_orders(broker, order):
    limit = broker.p.max_open_orders
    if limit is None:
        return None
    count = len(open_orders(broker))
    if count >= limit:
        return ('%d orders already open: max_open_orders is %d' % (count, limit))
    return None


def rule_price_deviation(broker, order):
    """Fat-finger guard: a limit/stop price far from the last price."""
    limit = broker.p.max_price_deviation
    if limit is None or order.exectype in _NO_PRICE_CHECK or not len(order.data):
        return None
    last = order.data.close[0]
    for label, price in (('price', order.price), ('limit price', order.pricelimit)):
        if price and last and abs(price - last) / last > limit:
            return ('%s %s is %.1f%% away from the last price %s: max_price_deviation is '
                    '%.1f%%' % (label, price, 100.0 * abs(price - last) / last, last,
                                100.0 * limit))
    return None


def rule_max_order_notional(broker, order):
    limit = broker.p.max_order_notional
    price = reference_price(order)
    if limit is None or not price:
        return None
    value = notional(broker, order.data, order.size, price)
    if value > limit:
        return ('order notional %.2f (%s x %s) exceeds max_order_notional %s'
                % (value, abs(order.size), price, limit))
    return None


def rule_max_position(broker, order):
    """The position this order could leave, as a share of equity.

    Open orders on the same data *in the same direction* count as filled:
    several orders each under the limit must not add up past it. Orders the
    other way are not netted, because a resting stop may never fill.
    """
    limit = broker.p.max_position_pct
    price = reference_price(order)
    if limit is None or not price or not increases_exposure(broker, order):
        return None
    equity = broker.getvalue()
    if equity <= 0:
        return 'equity is %.2f: no order may add exposure' % equity
    same_way = sum(o.executed.remsize for o in open_orders(broker)
                   if o.data is order.data and (o.executed.remsize > 0) == (order.size > 0))
    projected = broker.getposition(order.data).size + same_way + order.size
    share = notional(broker, order.data, projected, price) / equity
    if share > limit * (1.0 + 1e-9):
        return ('resulting position %s is %.1f%% of equity %.2f: max_position_pct is %.1f%%'
                % (projected, 100.0 * share, equity, 100.0 * limit))
    return None


#: the order in which the broker runs them; the first reason wins
GATE_RULES = (rule_kill_switch, rule_max_open_orders, rule_price_deviation,
              rule_max_order_notional, rule_max_position)


def gate_rules(broker):
    """This module's rules bound to ``broker``, ready for ``broker.risk_rules``."""
    bound = []
    for rule in GATE_RULES:
        fn = functools.partial(rule, broker)
        fn.__name__ = rule.__name__     # readable in logs and reprs
        bound.append(fn)
    return bound
