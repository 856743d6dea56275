"""The brokers' shared base: the one risk gate every order passes, paper or live.

Two brokers stand on :class:`BrokerBase`:

- :class:`~backtrader_live.paper.PaperBroker`: backtrader's BackBroker fills
  the orders from the bars exactly as a backtest would (market orders at the
  next bar's open, limit and stop orders by the bar's range, commission from
  the market's fee rate). Cerebro's default broker.
- :class:`~backtrader_live.live.LiveBroker`: orders go to the exchange with
  our client order id; their fate comes from the user-data stream.

Which of the two a broker is, is decided once, when it is made, by
``paper_trading`` (default True: safe by default). ``BrokerBase(...)``,
``BinanceBroker(...)``, ``store.getbroker(paper_trading=False)`` and any
user subclass of BrokerBase that picks no mode itself are made as that class
combined with the mode's class (:func:`broker_class`). Why this way: one
exchange broker class (BinanceBroker, a user's subclass with its own hooks,
the derivatives rules) serves both modes and keeps its name in reprs and
messages, and no method has to ask "am I live?": the mode's class supplies
the behaviour, so there is no paper/live branch anywhere in the brokers.
"""
import threading
import logging
import inspect
from decimal import Decimal

from backtrader import Order
from backtrader.brokers import BackBroker

from .errors import ConfigError
from .barfills import BAR_FILL_WAIT, check_bar_fill_wait
from .accounts import account_for, comminfo_for
from .markets import SPOT
from .history import HistoryTrimmer
from .orders import input_problem, order_problem, order_type_problem, placeholder, round_order
from .risk import KillSwitch, gate_rules

log = logging.getLogger(__name__)

_PLACE = inspect.signature(BackBroker.buy)     # upstream's buy()/sell() arguments
_PLACE_NAMES = frozenset(_PLACE.parameters) - {'kwargs'}
_NUMERIC = ('size', 'price', 'plimit', 'trailamount', 'trailpercent')

_MODES = {}         # paper_trading -> PaperBroker / LiveBroker (set by paper.py, live.py)
_MADE = {}          # (class, mode class) -> that class made paper or live
_MADE_LOCK = threading.Lock()


def broker_class(cls, paper_trading=None):
    """The class a broker of ``cls`` is made as, for ``paper_trading``.

    A class that already is PaperBroker or LiveBroker is itself (and refuses
    the other mode); any other BrokerBase class is combined with the mode's
    class, once, keeping its name and its parameters' defaults.
    """
    if paper_trading is None:
        paper_trading = cls.params.paper_trading
    if not isinstance(paper_trading, bool):
        raise ConfigError('paper_trading must be True (orders filled locally, the default) '
                          'or False (orders sent to the exchange), got %r' % (paper_trading,))
    mode = _MODES[paper_trading]
    fixed = next((m for m in _MODES.values() if issubclass(cls, m)), None)
    if fixed is not None:
        if fixed is not mode:
            raise ConfigError('%s is the %s broker: paper_trading=%s contradicts it (use '
                              'store.getbroker(paper_trading=%s))' % (
                                  cls.__name__, 'live' if fixed.live else 'paper',
                                  paper_trading, paper_trading))
        return cls
    if cls is BrokerBase:
        return mode
    with _MADE_LOCK:
        made = _MADE.get((cls, mode))
        if made is None:
            made = _MADE[cls, mode] = _combine(cls, mode, paper_trading)
    return made


def _combine(cls, mode, paper_trading):
    # The subclass's own defaults win over the mode's copy of BrokerBase's,
    # except paper_trading, which is the mode.
    params = tuple(cls.params._getpairs().items()) + (('paper_trading', paper_trading),)
    made = type(cls)('%s_%s' % (cls.__name__, mode.__name__), (cls, mode), {
        'params': params, '__module__': cls.__module__, '__doc__': cls.__doc__,
        '_made_from': (cls, paper_trading)})
    made.__name__, made.__qualname__ = cls.__name__, cls.__qualname__
    return made


def _remake(cls, paper_trading):
    """Unpickling a combined class's broker (optimisation workers)."""
    made = broker_class(cls, paper_trading)
    return made.__new__(made)


class _MetaBroker(type(BackBroker)):
    """Makes a broker as its paper or live class (backtrader's doprenew hook)."""

    def doprenew(cls, *args, **kwargs):
        cls, args, kwargs = super().doprenew(*args, **kwargs)
        return broker_class(cls, kwargs.get('paper_trading')), args, kwargs


class BrokerBase(BackBroker, metaclass=_MetaBroker):
    """The risk gate and what paper and live share; made as PaperBroker or
    LiveBroker by ``paper_trading`` (see the module's docstring)."""

    params = (
        ('paper_trading', True),    # safe by default: nothing is sent
        ('testnet', True),
        ('risk_management', True),  # False skips check_risk_limits (not advised)
        ('currency', None),         # cash currency; default: first data's quote
        ('cancel_on_exit', False),  # cancel our open orders when stopping
        ('adopt_positions', True),  # spot holdings become the start position
        ('open_orders', 'track'),   # open orders found at start: 'track'|'cancel'|'leave'
        ('rest_poll_interval', 5.0),  # seconds between REST polls w/o stream
        ('resolve_attempts', 5),    # queries to settle an unknown create
        ('fill_wait', 2.0),         # seconds to wait for streamed fills before REST
        # Live: the most a closed bar waits, before the strategy sees it, for
        # the fills of our orders its range reached (half for the account
        # stream, then one REST look-up); None: off. See barfills.py.
        ('bar_fill_wait', BAR_FILL_WAIT),
        # Stream events waiting for Cerebro's thread; when full the stream
        # thread waits (never drops an event): see events.EventQueue.
        ('event_queue_size', 10000),
        # Finished orders/closed trades backtrader keeps per strategy and in the
        # paper broker (upstream never forgets them: ~4 KB per order over a
        # long run). Keep this many; None keeps all (backtrader's behaviour).
        ('history_kept', 1000),
        # Risk gate limits (None: off); see backtrader_live/risk.py, docs/risk.md
        ('max_order_notional', None),   # quote value of one order
        ('max_position_pct', None),     # resulting position / equity, e.g. 0.3
        ('max_open_orders', None),      # open orders on the account
        ('max_price_deviation', None),  # limit/stop price vs last close, e.g. 0.1
    )

    def __init__(self, store=None):
        super().__init__()
        self.store = store
        size = self.p.event_queue_size
        # Checked in paper too: a paper run's settings must be fit to go live.
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError('event_queue_size must be a whole number >= 1 (events waiting '
                              'for the strategy thread), got %r' % (size,))
        check_bar_fill_wait(self.p.bar_fill_wait)     # paper too: fit to go live
        self.account = account_for(store.kind if store is not None else SPOT)
        self._datas = []
        self.halted = None           # the fatal error that stopped trading, if any
        self.last_risk_reason = None     # why check_risk_limits() last said False
        self._history = HistoryTrimmer()
        self._notified = 0
        self._input_problem = None   # a bad buy()/sell() argument, for submit() (_checked)
        self._input_checked = False  # buy()/sell() checked this order's numbers (_checked)
        self.risk_rules = self._placement_rules() + [self._rule_market_minimums]
        # Tripped by RiskAnalyzer (or by hand); blocks orders that add exposure.
        self.kill_switch = KillSwitch()
        self.risk_rules += gate_rules(self)

    def __getstate__(self):
        # Optimization (maxcpus > 1) pickles Cerebro and its default broker for
        # the worker processes; methods bound on the instance at start() are
        # bound again there.
        state = self.__dict__.copy()
        state.pop('getcommissioninfo', None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __reduce_ex__(self, protocol):
        made_from = type(self).__dict__.get('_made_from')
        if made_from is None:
            return super().__reduce_ex__(protocol)
        # a combined class is no module attribute: rebuild it from its parts
        return _remake, made_from, self.__getstate__()

    def __repr__(self):
        return '%s(paper_trading=%s, testnet=%s, store=%r)' % (
            type(self).__name__, self.p.paper_trading, self.p.testnet, self.store)

    def data_started(self, data):
        """Called by the store as each of its feeds starts (upstream's hook).
        The feed learns its broker here, for the end of the run (feed.py).
        Returns True the first time ``data`` is seen."""
        # Identity, not ==: backtrader's data objects overload == (a lines op).
        if any(d is data for d in self._datas):
            return False
        self._datas.append(data)
        data.attach_broker(self)
        return True

    # -- the end of a run (feed.py asks; nothing to wait for unless live) -----------
    def sync_before_stop(self):
        """Once, as the run ends: bring the exchange's last word in. Paper:
        nothing is at an exchange."""

    def settled(self):
        """True when no order waits for the exchange."""
        return True

    def settle_time_needed(self):
        """Seconds the end of a run should allow for the orders to settle."""
        return 0.0

    # -- cash, balances, market rules and commission ----------------------------------
    def cash_currency(self):
        if self.p.currency:
            return self.p.currency
        if self._datas and self.store is not None:
            return self._rules(self._datas[0]).settle
        return 'USDT'

    def get_balances(self):
        """``{asset: (free, used)}`` (spot) as the streams keep it: no REST call."""
        return {a: tuple(v) for a, v in getattr(self.account, 'balances', {}).items()}

    def market_rules(self, data):
        """The exchange's rules (steps, minimums, fees) for ``data``'s market,
        or None without a store (a plain backtest)."""
        return self._rules(data) if self.store is not None else None

    def _rules(self, data):
        rules = getattr(data, '_market_rules', None)
        if rules is None and self.store is not None:
            rules = data._market_rules = self.store.market_rules(data.p.dataname)
        return rules

    def getcommissioninfo(self, data):
        """User-set commission wins; else the market's taker fee."""
        if data._name in self.comminfo or self.store is None:
            return super().getcommissioninfo(data)
        ci = getattr(data, '_market_comminfo', None)
        if ci is None:
            ci = data._market_comminfo = comminfo_for(
                self._rules(data), self.account_leverage(data))
        return ci

    def account_leverage(self, data):
        return getattr(self.account, 'leverage', {}).get(data.p.dataname) or 1.0

    # -- the single risk gate ---------------------------------------------------------
    def check_risk_limits(self, order):
        """Every order passes here: True if it may go, False if the gate
        refuses it. Why it was refused: :meth:`risk_limit_reason`, or
        ``last_risk_reason`` right after a False.

        ``self.risk_rules`` is a list of callables ``rule(order) -> reason or
        None``; add rules by appending to it.
        """
        self.last_risk_reason = self.risk_limit_reason(order)
        return self.last_risk_reason is None

    def risk_limit_reason(self, order):
        """None if ``order`` passes the risk gate, else the first rule's reason."""
        if not self.p.risk_management:
            return None
        for rule in self.risk_rules:
            reason = rule(order)
            if reason:
                return reason
        return None

    def _placement_rules(self):
        """The first rules of the gate: what this broker can place at all."""
        return []

    def _rule_market_minimums(self, order):
        if self.store is None:
            return None
        rules = self._rules(order.data)
        exempt = (self.store.kind in self.store.REDUCE_ONLY_SKIPS_MIN_NOTIONAL
                  and self.sent_reduce_only(order))
        return round_order(order, self.store.exchange, rules, min_notional=not exempt)

    def sent_reduce_only(self, order):
        """True if ``order`` goes to the exchange reduce-only (derivatives)."""
        return order.info.get('reduceOnly') is True

    # -- orders in: arguments checked before anything is built or sent ---------------
    def buy(self, owner, data, *args, **kwargs):
        return self._checked(super().buy, owner, data, args, kwargs)

    def sell(self, owner, data, *args, **kwargs):
        return self._checked(super().sell, owner, data, args, kwargs)

    def _checked(self, place, owner, data, args, kwargs):
        """Build the order through upstream's ``buy``/``sell``, or, if an
        argument is no valid number (NaN, inf, a string, a missing price),
        build it with NaN in that place and reject it with the reason."""
        if not args:
            # Strategy.buy()/sell() pass keywords only: check them as they are
            # (binding a signature costs more than a backtest may spend here).
            options = {k: v for k, v in kwargs.items() if k not in _PLACE_NAMES}
            problem = input_problem(kwargs.get('exectype'), kwargs.get('size'),
                                    kwargs.get('price'), kwargs.get('plimit'),
                                    kwargs.get('trailamount'), kwargs.get('trailpercent'),
                                    options)
            if problem is None and not any(isinstance(kwargs.get(n), Decimal) for n in _NUMERIC):
                self._input_checked = True      # submit_order need not check them again
                try:
                    return place(owner, data, **kwargs)
                finally:
                    self._input_checked = False
        bound = _PLACE.bind(self, owner, data, *args, **kwargs)
        given = bound.arguments
        problem = input_problem(given.get('exectype'), given.get('size'), given.get('price'),
                                given.get('plimit'), given.get('trailamount'),
                                given.get('trailpercent'), given.get('kwargs'))
        for name in _NUMERIC:
            if given.get(name) is not None or (problem and name == 'size'):
                # Decimal -> float (exact: its repr); a non-number -> NaN
                given[name] = placeholder(given.get(name))
        self._input_problem = problem
        try:
            return place(*bound.args[1:], **bound.kwargs)
        finally:
            self._input_problem = None

    def submit(self, order, check=True):
        # backtrader's buy()/sell() call submit(): the roadmap's submit_order.
        return self.submit_order(order, check)

    def submit_order(self, order, check=True):
        """Send ``order`` through the risk gate to paper or live trading.

        Refused orders are rejected here with the reason; the rest go to
        :meth:`_submit_paper_order` (PaperBroker: backtrader's own broker
        fills them) or :meth:`_submit_live_order` (LiveBroker: the
        exchange): the override points of a broker that places orders
        differently.
        """
        if self._held(order):
            return order
        # Bad numbers first and always (paper too, risk_management or not).
        reason = (self._input_problem
                  or (None if self._input_checked else order_problem(order)))
        if reason:
            return self._reject_locally(order, reason)
        if self._refused_type(order):
            return order
        reason = self.risk_limit_reason(order)
        if reason:
            return self._reject_locally(order, reason)
        return self._submit_accepted(order, check)

    def _refused_type(self, order):
        """True if the exchange's market does not take ``order``'s type (paper
        too, so a paper run refuses what live would): it is rejected with the
        reason, and a bracket child's parent cancelled with it (never a parent
        without its stop)."""
        reason = None if self.store is None else order_type_problem(order, self.store)
        if not reason:
            return False
        self._reject_locally(order, reason)
        if order.parent is not None and order.parent.alive():
            self._cancel_parent(order.parent)
        return True

    def _cancel_parent(self, parent):
        """Cancel a bracket's parent whose child was refused (with its
        other children): the mode's class knows where a held parent waits."""
        self.cancel(parent)

    def _held(self, order):
        """True if the mode's class takes ``order`` aside before the gate
        (live: held bracket children, emulated types); paper: never."""
        return False

    def _submit_accepted(self, order, check):
        """Place an order the gate let through: the mode's class says how."""
        raise NotImplementedError('%s places no orders itself: brokers are made as '
                                  'PaperBroker or LiveBroker' % type(self).__name__)

    def _reject_locally(self, order, reason):
        order.addinfo(reject_reason=reason)
        log.warning('order %s rejected before sending: %s', order.ref, reason)
        order.submit(self)
        self.notify(order)
        order.reject(self)
        self.notify(order)
        return order

    def notify(self, order):
        super().notify(order)
        self._history.add_owner(order.owner)
        self._notified += 1
        if self.p.history_kept is not None and self._notified % 256 == 0:
            self._trim_history(self.p.history_kept)

    def _trim_history(self, keep):
        """Forget finished orders and closed trades beyond the last ``keep``
        (history.py: the one place that edits upstream's private lists)."""
        return self._history.trim(self, keep)


def conditional(order):
    """Stops and take-profits are conditional: some exchanges keep them apart."""
    if order.info.get('triggered_locally'):
        return False        # sent as the plain order it became (emulated.py)
    return (order.exectype in (Order.Stop, Order.StopLimit)
            or 'takeProfitPrice' in order.info)


# The two modes register themselves in _MODES (they import this module).
from .paper import PaperBroker  # noqa: E402,F401
from .live import LiveBroker  # noqa: E402,F401

# The rest of upstream's broker module (BrokerBase's peers...), for drop-in imports.
import backtrader.broker as _upstream_broker  # noqa: E402
from ._namespace import merge_into  # noqa: E402
merge_into(globals(), _upstream_broker)
