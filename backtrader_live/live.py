"""Live trading: orders to the exchange, behind the gate.

:class:`LiveBroker` sends orders through the store (ccxt) with our own client
order id and learns their fate from the user-data stream (REST when the
stream is down). Stream threads only *queue* events; every change to an
order or a position happens in Cerebro's thread, in ``next()``, so
backtrader's objects are never touched concurrently. The queue is bounded
(``event_queue_size``): when full, the stream thread waits for Cerebro's
thread instead of dropping an event (events.EventQueue).

Nothing a network can do raises out of ``cancel()`` or ``reconcile()``: a
create or a cancel whose answer is lost is settled by client order id
(recovery.py), never sent again blindly.
"""
import collections
import logging
import time

from backtrader import Order

from . import broker as _broker
from .barfills import BarFills, LookupAnswer
from .accounts import SpotAccount, contract_value
from .broker import BrokerBase, conditional
from .emulated import SENT_AS_LIMIT, Emulated
from .orderlinks import OrderLinks
from .rearm import Rearm
from .errors import (AuthenticationFailed, FatalError, LiveError, OrderNotFound, OrderRejected,
                     UnknownOutcome)
from .events import EventQueue, FundingPayment, OrderUpdate, PositionUpdate
from .fills import LiveFills, TradeSizes
from .orders import OrderBook
from .recovery import cancel_window_left, resolve_unknown, settle_cancel, window_left
from .restart import adopt_open_orders, check_policy, exit_policy
from .stream import LIVE

log = logging.getLogger(__name__)

# Seconds start-up waits for the user stream to carry the account's events
# (connected and, where the exchange answers, its subscription confirmed): an
# order sent before that would have its fills and status changes sent to no
# one. A refused or failing stream ends the wait at once (REST polls instead).
USER_STREAM_WAIT = 10.0


class LiveBroker(LiveFills, BrokerBase):
    """Orders go to the exchange (``paper_trading=False``); needs a store."""

    live = True
    params = (('paper_trading', False),)

    # Options a strategy may pass as keyword arguments of buy()/sell();
    # takeProfitPrice makes a Market/Limit order a conditional take-profit.
    ORDER_OPTIONS = ('postOnly', 'timeInForce', 'reduceOnly', 'takeProfitPrice')

    def __init__(self, store=None):
        super().__init__(store)
        self._events = self._event_queue()
        self._book = OrderBook()
        self._restart_pending = []   # datas whose open orders are not handled yet
        self._orphans = collections.deque(maxlen=256)
        self._funding_seen = collections.deque(maxlen=64)   # recent payments (dedupe)
        self._last_poll = 0.0
        self._final_synced = False
        self._trade_sizes = TradeSizes()     # upstream Trade's float sums (fills.py)
        self._live_started = False   # _start_live finished: there is an account to sync
        self.links = OrderLinks(self)       # OCO groups and brackets, live (orderlinks.py)
        self.emulated = Emulated(self)      # trailing, Close, expiry, local stops (emulated.py)
        self.bar_fills = BarFills(self)     # a bar's own fills before the bar (barfills.py)
        self.rearm = Rearm(self)            # emulated orders across a restart (rearm.py)

    def _wake_loop(self):
        if self.store is not None:
            self.store.wake_feeds()

    def _stopping(self):
        return self.store is None or self.store._stop_event.is_set()

    def _event_queue(self):
        # From stream threads; bounded, blocks the stream rather than drop (events.py)
        return EventQueue(self.p.event_queue_size, wake=self._wake_loop,
                          stopping=self._stopping)

    def __getstate__(self):
        # the stream queue holds a lock: a copy starts with an empty one
        state = super().__getstate__()
        state.pop('_events', None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._events = self._event_queue()

    # -- lifecycle -------------------------------------------------------------
    def start(self):
        super().start()
        self._live_started = self._final_synced = False
        if self.store is None:
            raise FatalError('live trading needs a store: make the broker with '
                             'store.getbroker(paper_trading=False)')
        self.store.start(broker=self)
        if self.store.p.testnet != self.p.testnet:
            raise FatalError('broker testnet=%s does not match its store (testnet=%s)'
                             % (self.p.testnet, self.store.p.testnet))
        if not self.store.has_credentials:
            raise FatalError('live trading needs an API key and secret (parameters or %s_API_KEY/'
                             '%s_API_SECRET)' % (self.store.env_prefix, self.store.env_prefix))
        check_policy(self.p.open_orders)
        self.account.load(self.store)   # also proves the keys work, once, no retry storm
        self.store.subscribe_user(self._events.put)
        self._wait_user_stream()
        self.startingcash = self.cash = self.getcash()
        self._live_started = True
        endpoint = self.store.p.endpoint
        log.info('%s live on %s (%s)', type(self).__name__,
                 'endpoint %s' % endpoint if endpoint else
                 'testnet' if self.p.testnet else 'MAINNET', self.store.p.market_type)

    def _wait_user_stream(self):
        # None: no stream that could (the store said so already)
        if self.store.wait_user_stream(USER_STREAM_WAIT) is False:
            log.warning('the user-data stream does not carry the account yet: orders are '
                        'followed over REST (every %ss) until it does',
                        self.p.rest_poll_interval)

    def data_started(self, data):
        if not super().data_started(data):
            return False
        self.prepare_market(data)
        # Position and open orders, read as one snapshot at the first bar
        # (the position needs a price): restart.py.
        self._restart_pending.append(data)
        return True

    def prepare_market(self, data):
        """Exchange settings a market needs before trading (derivatives)."""

    def stop(self):
        if self._live_started:
            try:
                # However the run ended (an exception, an interrupt): the
                # exchange's last word first, so the policy acts on what is open.
                self.sync_before_stop()
                self._drain_events()
                exit_policy(self)      # restart.py: cancel_on_exit, logged
                self.emulated.stopped()     # local-only orders end with the process, said
            finally:
                self.bar_fills.stop()       # its REST worker thread, joined
        super().stop()

    def sync_before_stop(self):
        """Once, as the run ends: ask the exchange about the open orders and
        the balances. Fills and balance changes come on their own socket and
        may land after the last bar's kline; asking here puts them in the
        final notifications and in the final cash and value, not in limbo."""
        if not self._live_started or self._final_synced:
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
        """A cancel without an answer is resent only once it can no longer
        land (its receive window), then checked every ``fill_wait``
        (recovery.py)."""
        return max([cancel_window_left(self, o) + 2 * self.p.fill_wait + 1.0
                    for o in self._book.cancels_unsettled()] or [0.0])

    # -- cash, value, positions: the exchange's --------------------------------------------
    def _priced(self, datas):
        return [(self._rules(d), self.positions[d], d.close[0]) for d in datas if len(d)]

    def getcash(self):
        if isinstance(self.account, SpotAccount):
            self.cash = self.account.cash(self.cash_currency())
        else:
            self.cash = self.account.cash(self.cash_currency(), self._priced(self._datas))
        return self.cash

    def getvalue(self, datas=None):
        currency = self.cash_currency()
        if datas:   # the value of these datas' positions only
            return sum(contract_value(r, p.size, price) if r.contract else p.size * price
                       for r, p, price in self._priced(datas))
        self._value = self.account.value(currency, self._priced(self._datas))
        return self._value

    def get_orders_open(self, safe=False):
        """Orders not yet finished: our order book (upstream's queues are
        empty, nothing goes through them)."""
        alive = self._book.alive() + self.links.held() + self.emulated.local()
        return [o.clone() for o in alive] if safe else alive

    # -- the gate's first rule ----------------------------------------------------------------
    def _placement_rules(self):
        return [self._rule_supported]

    def _rule_supported(self, order):
        if order.exectype == Order.Historical:
            return ('Historical orders replay a backtest\'s fills and cannot be sent to %s; '
                    'use Market, Limit, Stop, StopLimit, StopTrail, StopTrailLimit or Close'
                    % self.store.exchange_name)
        return None

    def _ocoize(self, order, oco):
        super()._ocoize(order, oco)         # upstream keeps the link here, not on the order
        self.links.ocoize(order, oco)

    # -- live orders out ------------------------------------------------------------------
    def _held(self, order):
        # a type the exchange cannot take is refused before anything is held,
        # with its whole bracket (the exchange's order types: store.order_types)
        if self._refused_type(order):
            return True
        # a bracket's child waiting for its parent, or a type the broker
        # emulates (orderlinks.py, emulated.py): taken here, gated on release
        return self.links.submit(order) or self.emulated.submit(order)

    def _submit_accepted(self, order, check):
        return self._submit_live_order(order)

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
            raw = resolve_unknown(self, order, cid, symbol, conditional(order))   # recovery.py
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
                                          self.store.client_id_query(cid, conditional(order)))
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
        # Cerebro hands notifications over on its next round: make that
        # round happen now rather than after the feed's wait times out.
        self.store.wake_feeds()
        self.links.notified(order)      # OCO and bracket links act (orderlinks.py)
        self.rearm.notified(order)      # and the journal keeps them for a restart (rearm.py)

    # -- live events in (Cerebro's thread) -----------------------------------------------
    def next(self):
        self._drain_events()
        # before anything acts on the bar: the fills made inside it (barfills.py)
        self.bar_fills.on_next()
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
        elif isinstance(event, LookupAnswer):
            self.bar_fills.answered(event)      # a REST look-up for a bar (barfills.py)
        elif self.account.on_event(event):
            if isinstance(event, PositionUpdate):
                self._check_position(event)
        elif isinstance(event, FundingPayment):
            self._on_funding(event)
        elif isinstance(event, tuple) and event[0] == 'state':
            _, state, reconnected = event
            self.store.put_notification('user stream %s' % state)
            # Events may have been missed while it was down or not yet
            # subscribed: ask about every order alive (and the balances).
            if reconnected or (state == LIVE and self._book.alive()):
                self.reconcile()
        elif isinstance(event, tuple) and event[0] == 'error':
            log.error('user stream: %s', event[1])
            self.store.put_notification('user stream error: %s' % event[1])

    def reconcile(self, orders=None, balances=True):
        """Ask the exchange about these (default: all alive) orders; never raises."""
        for order in (self._book.alive() if orders is None else orders):
            cid = self._book.client_id(order)
            try:
                raw = self.store.fetch_order_by_client_id(cid, order.data.p.dataname,
                                                          conditional(order))
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


_broker._MODES[False] = LiveBroker


def _sent_as_market(order):
    """True for an order that went to the exchange as a market order."""
    if order.info.get('triggered_locally'):     # emulated.py: limited ones go as limits
        return order.exectype not in SENT_AS_LIMIT
    return order.exectype == Order.Market and not conditional(order)
