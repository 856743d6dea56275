"""The generic live broker: paper or live, behind one risk gate.

Paper mode *is* backtrader's BackBroker (we subclass it), so a paper run fills
exactly as a backtest would: market orders at the next bar's open, limit and
stop orders by the bar's range, commission from the market's fee rate.

Live mode sends orders through the store (ccxt) with our own client order id
and learns their fate from the user-data stream (REST when the stream is
down). Stream threads only *queue* events; every change to an order or a
position happens in Cerebro's thread, in ``next()``, so backtrader's objects
are never touched concurrently. The queue is bounded (``event_queue_size``):
when full, the stream thread waits for Cerebro's thread instead of dropping
an event (events.EventQueue).

Nothing a network can do raises out of ``cancel()`` or ``reconcile()``: a
create or a cancel whose answer is lost is settled by client order id
(recovery.py), never sent again blindly.
"""
import collections
import inspect
import logging
import time
from decimal import Decimal

from backtrader import Order
from backtrader.brokers import BackBroker

from .errors import (AuthenticationFailed, ConfigError, FatalError, LiveError, OrderNotFound,
                     OrderRejected, UnknownOutcome)
from .events import EventQueue, FundingPayment, OrderUpdate, PositionUpdate
from .accounts import SpotAccount, account_for, comminfo_for, contract_value
from .markets import SPOT
from .fills import LiveFills, TradeSizes
from .emulated import _LIMITED as _SENT_AS_LIMIT, Emulated
from .orderlinks import OrderLinks
from .orders import OrderBook, input_problem, order_problem, placeholder, round_order
from .recovery import cancel_window_left, resolve_unknown, settle_cancel, window_left
from .restart import adopt_open_orders, check_policy, exit_policy
from .risk import KillSwitch, gate_rules

log = logging.getLogger(__name__)

_PLACE = inspect.signature(BackBroker.buy)     # upstream's buy()/sell() arguments
_PLACE_NAMES = frozenset(_PLACE.parameters) - {'kwargs'}
_NUMERIC = ('size', 'price', 'plimit', 'trailamount', 'trailpercent')


class BrokerBase(LiveFills, BackBroker):
    """Base of the exchange brokers; BackBroker underneath for paper mode."""

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
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError('event_queue_size must be a whole number >= 1 (events waiting '
                              'for the strategy thread), got %r' % (size,))
        self._events = self._event_queue()
        self._book = OrderBook()
        self.account = account_for(store.kind if store is not None else SPOT)
        self._datas = []
        self._restart_pending = []   # datas whose open orders are not handled yet
        self.halted = None           # the fatal error that stopped trading, if any
        self.last_risk_reason = None     # why check_risk_limits() last said False
        self._orphans = collections.deque(maxlen=256)
        self._funding_seen = collections.deque(maxlen=64)   # recent payments (dedupe)
        self._owners = []        # strategies whose history _trim_history bounds
        self._notified = 0
        self._last_poll = 0.0
        self._final_synced = False
        self._trade_sizes = TradeSizes()     # upstream Trade's float sums (fills.py)
        self._input_problem = None   # a bad buy()/sell() argument, for submit() (_checked)
        self._live_started = False   # _start_live finished: there is an account to sync
        self.risk_rules = [self._rule_supported, self._rule_market_minimums]
        # Tripped by RiskAnalyzer (or by hand); blocks orders that add exposure.
        self.kill_switch = KillSwitch()
        self.risk_rules += gate_rules(self)
        self.links = OrderLinks(self)       # OCO groups and brackets, live (orderlinks.py)
        self.emulated = Emulated(self)      # trailing, Close, expiry, local stops (emulated.py)

    def _wake_loop(self):
        if self.store is not None:
            self.store.wake_feeds()

    def _stopping(self):
        return self.store is None or self.store._stop_event.is_set()

    def _event_queue(self):
        # From stream threads; bounded, blocks the stream rather than drop (events.py)
        return EventQueue(self.p.event_queue_size, wake=self._wake_loop,
                          stopping=self._stopping)

    def _bind_paper_fast_paths(self):
        for name in self._PAPER_FAST + ('getcommissioninfo',):
            self.__dict__.pop(name, None)
        if self.live:
            return
        for name in self._PAPER_FAST:
            setattr(self, name, getattr(super(), name))
        if self.store is None:      # no market rules: upstream's comminfo as is
            self.getcommissioninfo = super().getcommissioninfo

    def __getstate__(self):
        # Optimization (maxcpus > 1) pickles Cerebro and its default broker for
        # the worker processes: the stream queue holds a lock; workers start empty
        # (and bind their fast paths again in start()).
        state = self.__dict__.copy()
        state.pop('_events', None)
        for name in self._PAPER_FAST + ('getcommissioninfo',):
            state.pop(name, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._events = self._event_queue()

    def __repr__(self):
        return '%s(paper_trading=%s, testnet=%s, store=%r)' % (
            type(self).__name__, self.p.paper_trading, self.p.testnet, self.store)

    @property
    def live(self):
        return not self.p.paper_trading

    # -- lifecycle -------------------------------------------------------------
    # Called every bar by upstream (observers, analyzers, the loop): in paper
    # mode they are upstream's own, bound on the instance at start(), so a
    # backtest pays nothing for the live layer's branches (issue 12: <= 2 %).
    _PAPER_FAST = ('next', 'getcash', 'getvalue')

    def start(self):
        super().start()
        self._live_started = self._final_synced = False
        self._bind_paper_fast_paths()
        if self.store is None:
            if self.live:
                raise FatalError('live trading needs a store (use store.getbroker())')
            return
        self.store.start(broker=self)
        if self.live:
            self._start_live()

    def _start_live(self):
        if self.store.p.testnet != self.p.testnet:
            raise FatalError('broker testnet=%s does not match its store (testnet=%s)'
                             % (self.p.testnet, self.store.p.testnet))
        if not self.store.has_credentials:
            raise FatalError('live trading needs an API key and secret (parameters or %s_API_KEY/'
                             '%s_API_SECRET)' % (self.store.env_prefix, self.store.env_prefix))
        check_policy(self.p.open_orders)
        self.account.load(self.store)   # also proves the keys work, once, no retry storm
        self.store.subscribe_user(self._events.put)
        self.startingcash = self.cash = self.getcash()
        self._live_started = True
        endpoint = self.store.p.endpoint
        log.info('%s live on %s (%s)', type(self).__name__,
                 'endpoint %s' % endpoint if endpoint else
                 'testnet' if self.p.testnet else 'MAINNET', self.store.p.market_type)

    def data_started(self, data):
        # Identity, not ==: backtrader's data objects overload == (a lines op).
        if any(d is data for d in self._datas):
            return
        self._datas.append(data)
        if self.live:
            self.prepare_market(data)
            # Position and open orders, read as one snapshot at the first bar
            # (the position needs a price): restart.py.
            self._restart_pending.append(data)

    def prepare_market(self, data):
        """Exchange settings a market needs before trading (derivatives)."""

    def stop(self):
        if self.live and self._live_started:
            # However the run ended (an exception, an interrupt): the
            # exchange's last word first, so the policy acts on what is open.
            self.sync_before_stop()
            self._drain_events()
            exit_policy(self)      # restart.py: cancel_on_exit, logged
            self.emulated.stopped()     # local-only orders end with the process, said
        super().stop()

    # -- cash, value, positions ---------------------------------------------------
    def cash_currency(self):
        if self.p.currency:
            return self.p.currency
        if self._datas and self.store is not None:
            return self._rules(self._datas[0]).settle
        return 'USDT'

    def _priced(self, datas):
        return [(self._rules(d), self.positions[d], d.close[0]) for d in datas if len(d)]

    def getcash(self):
        if not self.live:
            return super().getcash()
        if isinstance(self.account, SpotAccount):
            self.cash = self.account.cash(self.cash_currency())
        else:
            self.cash = self.account.cash(self.cash_currency(), self._priced(self._datas))
        return self.cash

    def getvalue(self, datas=None):
        if not self.live:
            return super().getvalue(datas)
        currency = self.cash_currency()
        if datas:   # the value of these datas' positions only
            return sum(contract_value(r, p.size, price) if r.contract else p.size * price
                       for r, p, price in self._priced(datas))
        self._value = self.account.value(currency, self._priced(self._datas))
        return self._value

    def sync_before_stop(self):
        """Once, as the run ends: ask the exchange about the open orders and
        the balances. Fills and balance changes come on their own socket and
        may land after the last bar's kline; asking here puts them in the
        final notifications and in the final cash and value, not in limbo."""
        if not self.live or not self._live_started or self._final_synced:
            return
        self._final_synced = True
        self._drain_events()
        self.reconcile()

    def settled(self):
        """True when no order waits for fills the exchange has announced, no
        cancel waits for its outcome, no market order (which ends within
        moments) is still open, and no local order waits to go out. A Close
        order or a local stop that triggered went out as a market order
        though its exectype says otherwise: its fills count too, or a run
        whose last bar triggers one ends before its fills are in."""
        return not self._book.awaiting() and not self._book.cancels_unsettled() and not any(
            _sent_as_market(o) for o in self._book.alive()) and not self.emulated.firing()

    def settle_time_needed(self):
        """Seconds the end of a run should allow for the orders to settle: a
        cancel without an answer is resent only once it can no longer land
        (its receive window), then checked every ``fill_wait`` (recovery.py)."""
        pending = self._book.cancels_unsettled() if self.live else ()
        return max([cancel_window_left(self, o) + 2 * self.p.fill_wait + 1.0
                    for o in pending] or [0.0])

    def get_balances(self):
        """``{asset: (free, used)}`` (spot) as the streams keep it: no REST call."""
        return {a: tuple(v) for a, v in getattr(self.account, 'balances', {}).items()}

    def get_orders_open(self, safe=False):
        """Orders not yet finished. Live: our order book (upstream's queues
        are empty, nothing goes through them); paper: BackBroker's."""
        if not self.live:
            return super().get_orders_open(safe)
        alive = self._book.alive() + self.links.held() + self.emulated.local()
        return [o.clone() for o in alive] if safe else alive

    # -- market rules and commission ------------------------------------------------
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

    def _rule_supported(self, order):
        if not self.live:
            return None
        if order.exectype == Order.Historical:
            return ('Historical orders replay a backtest\'s fills and cannot be sent to %s; '
                    'use Market, Limit, Stop, StopLimit, StopTrail, StopTrailLimit or Close'
                    % self.store.exchange_name)
        return None

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

    def _ocoize(self, order, oco):
        super()._ocoize(order, oco)         # upstream keeps the link here, not on the order
        if self.live:
            self.links.ocoize(order, oco)

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
                return place(owner, data, **kwargs)
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
        :meth:`_submit_paper_order` (backtrader's own broker fills them) or
        :meth:`_submit_live_order` (the exchange): the override points of a
        broker that places orders differently.
        """
        if self.live and (self.links.submit(order) or self.emulated.submit(order)):
            return order        # held: a bracket's, or an emulated type (orderlinks, emulated)
        # Bad numbers first and always (paper too, risk_management or not).
        reason = (self._input_problem or order_problem(order)
                  or self.risk_limit_reason(order))
        if reason:
            return self._reject_locally(order, reason)
        if not self.live:
            return self._submit_paper_order(order, check)
        return self._submit_live_order(order)

    def _submit_paper_order(self, order, check=True):
        """Paper trading: upstream BackBroker queues the order and fills it
        from the bars exactly as in a backtest."""
        return BackBroker.submit(self, order, check)

    def _reject_locally(self, order, reason):
        order.addinfo(reject_reason=reason)
        log.warning('order %s rejected before sending: %s', order.ref, reason)
        order.submit(self)
        self.notify(order)
        order.reject(self)
        self.notify(order)
        return order

    # -- live orders out ------------------------------------------------------------------
    def _submit_live_order(self, order):
        """Live trading: send ``order`` with our client order id; an unknown
        outcome is resolved by that id (recovery.py), never sent twice."""
        symbol = order.data.p.dataname
        cid = self.store.new_client_id()
        order.addcomminfo(self.getcommissioninfo(order.data))   # Trade accounting needs it
        self._book.add(order, cid)
        order.submit(self)
        self.notify(order)
        type_, price, params = self.order_request(order)
        params[self.store.CLIENT_ID_PARAM] = cid
        side = 'buy' if order.isbuy() else 'sell'
        try:
            raw = self.store.create_order(symbol, type_, side, abs(order.size), price, params)
        except UnknownOutcome as exc:
            log.warning('create of %s had no answer (%s); resolving by client id', cid, exc)
            raw = resolve_unknown(self, order, cid, symbol, _conditional(order))   # recovery.py
            if raw is None:
                return order
        except (OrderRejected, FatalError) as exc:
            self._finish_rejected(order, str(exc))
            self.halt_if_fatal(exc)
            return order
        self.apply_update(self._update_from(raw, 'rest'), order)
        return order

    def order_request(self, order):
        """(ccxt type, price, params) for a backtrader order."""
        ex = order.exectype
        params = self.order_options(order)
        if ex == Order.Market:
            return 'market', None, params
        if ex == Order.Limit:
            return 'limit', order.price, params
        params.update(self.store.trigger_params(order.price, rising=order.isbuy()))
        if ex == Order.Stop:
            return 'market', None, params
        return 'limit', order.pricelimit, params

    # Options a strategy may pass as keyword arguments of buy()/sell();
    # takeProfitPrice makes a Market/Limit order a conditional take-profit.
    ORDER_OPTIONS = ('postOnly', 'timeInForce', 'reduceOnly', 'takeProfitPrice')

    def order_options(self, order):
        """ccxt params from the order's keyword arguments (order.info)."""
        return {k: order.info[k] for k in self.ORDER_OPTIONS if k in order.info}

    def halt_if_fatal(self, exc):
        """Bad keys or a missing permission: stop trading with a clear
        message (the run ends, ``run_live`` raises it), never loop on it."""
        if not isinstance(exc, AuthenticationFailed) or self.halted is not None:
            return
        self.halted = exc
        log.error('trading stopped: the exchange refused our credentials: %s', exc)
        self.store.put_notification('trading stopped', str(exc))
        for data in self._datas:
            data.request_stop()

    def cancel(self, order, bracket=False):
        if not self.live:
            return super().cancel(order, bracket)
        if self.links.cancel(order):
            return order        # held or watched locally: cancelled here
        if order.alive() and self._book.client_id(order):
            if self._book.cancel_pending(order):
                log.info('cancel of %s already sent; waiting for the exchange to end it',
                         self._book.client_id(order))
            else:
                self._cancel_live(order)
        return order

    def _cancel_live(self, order):
        """Send one cancel; never raises. A cancel whose outcome is not known
        leaves the order alive with its cancel pending (recovery.py)."""
        cid = self._book.client_id(order)
        symbol = order.data.p.dataname
        self._book.cancel_sent(order)
        try:
            raw = self.store.cancel_order(self._book.exchange_id(order), symbol,
                                          self.store.client_id_query(cid, _conditional(order)))
        except OrderNotFound:
            # Not open on the exchange: filled or ended meanwhile, or a cancel
            # whose answer was lost landed. Ask instead of guessing.
            self.reconcile([order], balances=False)
            return
        except LiveError as exc:
            log.warning('cancel of %s: %s; the order stays open until the exchange says '
                        'how it ended', cid, exc)
            self.halt_if_fatal(exc)
            if isinstance(exc, UnknownOutcome):
                self.reconcile([order], balances=False)
            return
        self.apply_update(self._update_from(raw, 'rest'), order)

    def notify(self, order):
        super().notify(order)
        owner = order.owner
        if owner is not None and not any(o is owner for o in self._owners):
            self._owners.append(owner)
        self._notified += 1
        if self.p.history_kept is not None and self._notified % 256 == 0:
            self._trim_history(self.p.history_kept)
        if self.live:
            # Cerebro hands notifications over on its next round: make that
            # round happen now rather than after the feed's wait times out.
            self.store.wake_feeds()
            self.links.notified(order)      # OCO and bracket links act (orderlinks.py)

    # -- live events in (Cerebro's thread) -----------------------------------------------
    def _trim_history(self, keep):
        """Forget finished orders and closed trades beyond the last ``keep``:
        upstream keeps every one (Strategy._orders, Strategy._trades,
        BackBroker.orders) and reads only the alive ones and the last trade."""
        done = [o for o in self.orders if not o.alive()]
        if len(done) > keep:
            dropped = done[:len(done) - keep]
            ids = set(map(id, dropped))
            self.orders[:] = [o for o in self.orders if id(o) not in ids]
            for o in dropped:       # BackBroker's per-order OCO bookkeeping
                self._ocos.pop(o.ref, None)
                self._ocol.pop(o.ref, None)
        # BackBroker leaves an empty parent/children deque per executed order
        for ref in [r for r, pc in self._pchildren.items() if not pc]:
            del self._pchildren[ref]
        for strategy in self._owners:
            # notification snapshots (clones, frozen in the status they had):
            # upstream appends them and never reads them back
            if len(strategy._orders) > keep:
                del strategy._orders[:len(strategy._orders) - keep]
            for per_id in strategy._trades.values():
                for trades in per_id.values():
                    if len(trades) > keep:
                        del trades[:len(trades) - keep]

    def next(self):
        if not self.live:
            return super().next()
        self._drain_events()
        if self._restart_pending:
            adopt_open_orders(self, self._restart_pending)
        overdue = self._book.overdue(self.p.fill_wait)
        if overdue:
            self.reconcile(overdue)     # the stream did not deliver those fills
        cancelling = self._book.cancels_due(self.p.fill_wait)
        if cancelling:
            # cancels not settled yet (no answer, or no event since): ask
            self.reconcile(cancelling, balances=False)
        if not self.store.user_stream_live and self._book.alive():
            now = time.monotonic()
            if now - self._last_poll >= self.p.rest_poll_interval:
                self._last_poll = now
                self.reconcile()
        self.emulated.on_next()     # trailing stops, Close orders, expiry (emulated.py)

    def _drain_events(self):
        while True:
            try:
                event = self._events.get_nowait()
            except self._events.empty_error:
                return
            self._handle_event(event)

    def _handle_event(self, event):
        if isinstance(event, OrderUpdate):
            # A triggered conditional order reports as the regular order it
            # became: known by the exchange id its algo update announced.
            order = (self._book.by_client_id(event.client_id)
                     or self._book.by_exchange_id(event.exchange_id))
            if order is not None:
                self.apply_update(event, order)
            elif event.exchange_id and self._book.alive():
                # Maybe ours under an id not announced yet (a stop that just
                # triggered): keep it a while, bounded, until an alias arrives.
                self._orphans.append(event)
        elif self.account.on_event(event):
            if isinstance(event, PositionUpdate):
                self._check_position(event)
        elif isinstance(event, FundingPayment):
            self._on_funding(event)
        elif isinstance(event, tuple) and event[0] == 'state':
            _, state, reconnected = event
            self.store.put_notification('user stream %s' % state)
            if reconnected:
                self.reconcile()     # events may have been missed meanwhile
        elif isinstance(event, tuple) and event[0] == 'error':
            log.error('user stream: %s', event[1])
            self.store.put_notification('user stream error: %s' % event[1])

    def reconcile(self, orders=None, balances=True):
        """Ask the exchange about these (default: all alive) orders; never raises."""
        for order in (self._book.alive() if orders is None else orders):
            cid = self._book.client_id(order)
            try:
                raw = self.store.fetch_order_by_client_id(cid, order.data.p.dataname,
                                                          _conditional(order))
            except LiveError as exc:
                log.warning('reconcile of %s failed: %s', cid, exc)
                self.halt_if_fatal(exc)
                continue
            if raw is not None:
                self.apply_update(self._update_from(raw, 'reconcile'), order)
                settle_cancel(self, order, raw)
            elif order.status == Order.Submitted and not window_left(self, order):
                # Absent after its receive window: never placed (recovery.py).
                self._finish_rejected(order, 'the exchange has no order %s' % cid)
        if not balances:
            return
        try:
            self.account.load(self.store)
        except LiveError as exc:
            log.warning('balance reconcile failed: %s', exc)

    def _adopt_orphans(self, exchange_id, order):
        matched = [e for e in self._orphans if e.exchange_id == exchange_id]
        for event in matched:
            self._orphans.remove(event)
        for event in matched:
            self.apply_update(event, order)

    def _check_position(self, update):
        """After fills settle, our position must be the exchange's."""
        data = next((d for d in self._datas if d.p.dataname == update.symbol), None)
        if data is None or any(o.data is data for o in self._book.alive()):
            return      # orders in flight: the fills will bring it in line
        pos = self.positions[data]
        if abs(pos.size - update.size) > 1e-9 * max(1.0, abs(update.size)):
            log.warning('%s: position %s differs from the exchange\'s %s; adopting the '
                        'exchange\'s', update.symbol, pos.size, update.size)
            pos.set(update.size, update.entry_price or pos.price)
            self.store.put_notification('position corrected', update.symbol, update.size)

    def _on_funding(self, event):
        # A stream may deliver a message twice (a resend, a reconnect): one
        # payment is one notification. Cash comes from the wallet balance,
        # which a repeat cannot double.
        key = (event.asset, event.amount, event.symbol, event.timestamp)
        if event.timestamp is not None and key in self._funding_seen:
            return
        self._funding_seen.append(key)
        log.info('funding %s %s on %s', event.amount, event.asset, event.symbol)
        self.store.put_notification('funding', event.symbol, event.amount, event.asset)


def _sent_as_market(order):
    """True for an order that went to the exchange as a market order."""
    if order.info.get('triggered_locally'):     # emulated.py: limited ones go as limits
        return order.exectype not in _SENT_AS_LIMIT
    return order.exectype == Order.Market and not _conditional(order)


def _conditional(order):
    """Stops and take-profits are conditional: some exchanges keep them apart."""
    if order.info.get('triggered_locally'):
        return False        # sent as the plain order it became (emulated.py)
    return (order.exectype in (Order.Stop, Order.StopLimit)
            or 'takeProfitPrice' in order.info)

# The rest of upstream's broker module (BrokerBase's peers...), for drop-in imports.
import backtrader.broker as _upstream_broker  # noqa: E402
from ._namespace import merge_into  # noqa: E402
merge_into(globals(), _upstream_broker)
