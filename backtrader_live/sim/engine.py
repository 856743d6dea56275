"""The matching engine: accounts, order validation, fills and fees.

Exchange-agnostic: it knows markets, accounts and orders; a protocol module
(e.g. :mod:`.binance`) turns requests into :class:`~.models.Order` records
and engine events into its own wire format.

The book is synthetic: around the current price ``p`` the best bid is ``p``
rounded down to the tick and the best ask one tick above; every level holds
``depth_qty`` and each further level is one tick worse.  Takers walk those
levels.  Resting limit orders fill when the clock's price path crosses their
price, sharing at most ``liquidity`` x the bar's volume per bar.
"""
import logging
from decimal import ROUND_DOWN, ROUND_UP

from .models import (CANCELED, EIGHT, EXPIRED, FILLED, NEW,
                     PARTIALLY_FILLED, ZERO, Account, EngineError, Trade, dec,
                     to_step)

log = logging.getLogger(__name__)


class Engine:
    """Orders and balances of every account, matched against the clock's price."""

    def __init__(self, markets, now, price_of, fees=(0.001, 0.001),
                 depth_qty=1.0, liquidity=0.5):
        self.markets = markets          # symbol id -> MarketRules
        self.now = now                  # () -> market time in ms
        self.price_of = price_of        # symbol id -> current float price
        self.maker_fee, self.taker_fee = dec(fees[0]), dec(fees[1])
        self.depth_qty = depth_qty      # float, or {symbol id: float}
        self.liquidity = dec(liquidity)
        self.accounts = {}
        self.orders = {}                # order id -> Order (all, kept for queries)
        self.trades = []
        self._open = {s: [] for s in markets}  # symbol -> open orders, time priority
        self._used = {}                 # (symbol, bar index) -> volume already filled
        self._next_order_id = 1000
        self._next_trade_id = 1
        self.listeners = []             # callables (kind, payload)

    # -- accounts -----------------------------------------------------------
    def add_account(self, key, secret, balances=None):
        acct = Account(key, secret)
        for asset, amount in (balances or {}).items():
            acct.bal(asset)[0] = dec(amount)
        self.accounts[key] = acct
        return acct

    def set_balance(self, key, asset, free, locked=None):
        b = self.accounts[key].bal(asset)
        b[0] = dec(free)
        if locked is not None:
            b[1] = dec(locked)
        self._emit_balance(key, [asset])

    # -- the synthetic book ---------------------------------------------------
    def best(self, symbol):
        """(best bid, best ask) as Decimals on the tick grid."""
        rules = self.markets[symbol]
        bid = rules.price(self.price_of(symbol), ROUND_DOWN)
        return bid, bid + rules.tick

    def level_qty(self, symbol):
        depth = self.depth_qty
        if isinstance(depth, dict):
            depth = depth.get(symbol, 1.0)
        return to_step(depth, self.markets[symbol].step)

    def _levels(self, symbol, side, start, qty=None, quote=None, limit=None):
        """Walk the book from ``start``: [(price, qty)] for a qty or a quote amount."""
        rules = self.markets[symbol]
        tick = rules.tick if side == 'BUY' else -rules.tick
        depth = self.level_qty(symbol)
        out, price, filled, spent = [], start, ZERO, ZERO  # running totals: linear time
        while price > ZERO and (limit is None or
                                (price <= limit if side == 'BUY' else price >= limit)):
            if qty is not None:
                take = min(depth, qty - filled)
            else:
                take = min(depth, to_step((quote - spent) / price, rules.step))
            if take <= ZERO:
                break
            out.append((price, take))
            filled += take
            spent += price * take
            price += tick
        return out

    # -- placing ----------------------------------------------------------------
    def place(self, order):
        """Validate, lock funds, accept and (for takers) execute ``order``."""
        rules = self.markets.get(order.symbol)
        if rules is None:
            raise EngineError('unknown_symbol')
        acct = self.accounts[order.account]
        levels = self._check(order, rules, acct)
        order.id = self._next_order_id
        self._next_order_id += 1
        order.time = order.update_time = self.now()
        order.working_time = order.time if order.triggered else -1
        self._lock(order, rules, acct, levels)
        self.orders[order.id] = order
        self._emit_order(order, 'NEW')
        self._emit_balance(acct.key, [order.lock_asset])
        if order.triggered:
            self._work(order, levels)
        if order.is_open:
            self._open[order.symbol].append(order)
        return order

    def check(self, order):
        """Refuse ``order`` exactly as :meth:`place` would, placing and keeping
        nothing (a test order): funds are locked for the check, then released."""
        rules = self.markets.get(order.symbol)
        if rules is None:
            raise EngineError('unknown_symbol')
        acct = self.accounts[order.account]
        self._lock(order, rules, acct, self._check(order, rules, acct))
        acct.lock(order.lock_asset, -order.locked)

    def _check(self, order, rules, acct):
        """Refuse a bad order the way the exchange does; returns taker levels."""
        if order.is_limit:
            self._check_price(order.price, rules)
        if order.stop_price:
            self._check_price(order.stop_price, rules)
        levels = None
        bid, ask = self.best(order.symbol)
        if order.triggered and not order.is_limit:
            start = ask if order.side == 'BUY' else bid
            levels = self._levels(order.symbol, order.side, start, qty=order.qty or None,
                                  quote=order.quote_qty or None)
            if order.quote_qty:
                order.qty = sum(q for _, q in levels)
        self._check_qty(order.qty, rules)
        ref = order.price if order.is_limit else (order.stop_price or bid)
        if order.qty * ref < self._min_notional(order, rules):
            raise EngineError('filter_notional')
        if any(o.client_id == order.client_id and o.account == acct.key
               for o in self._open[order.symbol]):
            raise EngineError('duplicate')
        trail = order.extra.get('trail')
        if trail is not None:
            self._start_trail(order, trail)
        elif not order.triggered and self._trigger_hit(order, self.price_of(order.symbol)):
            raise EngineError('would_trigger')
        if order.post_only and self._marketable(order, bid, ask):
            raise EngineError('would_take')
        return levels

    @staticmethod
    def _min_notional(order, rules):
        return rules.min_notional

    @staticmethod
    def _check_price(price, rules):
        if (price < rules.min_price or price > rules.max_price
                or (price - rules.min_price) % rules.tick != ZERO):
            raise EngineError('filter_price')

    @staticmethod
    def _check_qty(qty, rules):
        if qty < rules.min_qty or qty > rules.max_qty or (qty - rules.min_qty) % rules.step:
            raise EngineError('filter_lot')

    @staticmethod
    def _marketable(order, bid, ask):
        return order.price >= ask if order.side == 'BUY' else order.price <= bid

    @staticmethod
    def _trigger_hit(order, price):
        price = dec(price)
        return price >= order.stop_price if order.trigger_above else price <= order.stop_price

    def _lock(self, order, rules, acct, levels):
        if order.side == 'SELL':
            asset, amount = rules.base, order.qty
        elif order.is_limit:
            asset, amount = rules.quote, order.price * order.qty
        elif levels is not None:
            asset, amount = rules.quote, sum(p * q for p, q in levels)
        else:  # a stop-market buy: reserve at the stop price
            asset, amount = rules.quote, order.stop_price * order.qty
        amount = amount.quantize(EIGHT, ROUND_UP)
        if acct.free(asset) < amount:
            raise EngineError('insufficient_balance')
        acct.lock(asset, amount)
        order.lock_asset, order.locked = asset, amount

    # -- executing -------------------------------------------------------------
    def _work(self, order, levels=None):
        """A working order meets the book: takers fill now, makers rest."""
        bid, ask = self.best(order.symbol)
        if not order.is_limit:
            if levels is None:
                start = ask if order.side == 'BUY' else bid
                levels = self._levels(order.symbol, order.side, start, qty=order.remaining)
            self._take(order, levels)
            if order.is_open:  # the book ran out (only with a quote amount)
                self._finish(order, EXPIRED)
        else:
            levels = []
            if self._marketable(order, bid, ask):
                start = ask if order.side == 'BUY' else bid
                levels = self._levels(order.symbol, order.side, start,
                                      qty=order.remaining, limit=order.price)
            if order.tif == 'FOK' and sum(q for _, q in levels) < order.remaining:
                levels = []  # fill-or-kill: all now, or nothing
            self._take(order, levels)
            if order.tif in ('IOC', 'FOK') and order.is_open:
                self._finish(order, EXPIRED)  # immediate-or-cancel never rests

    def _take(self, order, levels):
        acct = self.accounts[order.account]
        for price, qty in levels:
            if not order.is_open:  # e.g. a reduce-only order that ran out of position
                return
            if not self._affordable(order, acct, price, qty):
                self._finish(order, EXPIRED)  # a stop-market buy that gapped too far
                return
            self._fill(order, price, qty, maker=False)

    @staticmethod
    def _affordable(order, acct, price, qty):
        return order.side == 'SELL' or order.locked + acct.free(order.lock_asset) >= price * qty

    def _fill(self, order, price, qty, maker):
        rules = self.markets[order.symbol]
        acct = self.accounts[order.account]
        quote = self._quote_value(rules, price, qty)
        release = self._release(order, qty, quote)
        order.locked -= release
        acct.lock(order.lock_asset, -release)
        fee = self.maker_fee if maker else self.taker_fee
        commission, asset, pnl = self._settle(order, rules, acct, price, qty, quote, fee)
        order.executed += qty
        order.cum_quote += quote
        order.update_time = self.now()
        order.status = FILLED if order.remaining <= ZERO else PARTIALLY_FILLED
        if order.status == FILLED and order.locked:
            acct.lock(order.lock_asset, -order.locked)  # rounding leftovers go back
            order.locked = ZERO
        trade = Trade(self._next_trade_id, order.id, order.account, order.symbol,
                      order.side, price, qty, quote, commission, asset,
                      order.update_time, maker, pnl)
        self._next_trade_id += 1
        self.trades.append(trade)
        self._emit_order(order, 'TRADE', trade)
        self._after_fill(order, rules, acct)
        return trade

    @staticmethod
    def _quote_value(rules, price, qty):
        return (price * qty).quantize(EIGHT)

    @staticmethod
    def _release(order, qty, quote):
        """The part of the order's lock a fill of ``qty`` frees."""
        if qty >= order.remaining:
            return order.locked
        release = (order.locked * qty / order.remaining).quantize(EIGHT)
        if order.side == 'BUY':  # walked levels may cost more than the share
            release = min(order.locked, max(release, quote))
        return release

    @staticmethod
    def _settle(order, rules, acct, price, qty, quote, fee):
        """Spot: swap the assets; fees are paid in the asset received."""
        if order.side == 'BUY':
            commission, asset = (qty * fee).quantize(EIGHT), rules.base
            acct.bal(rules.quote)[0] -= quote
            acct.bal(rules.base)[0] += qty - commission
        else:
            commission, asset = (quote * fee).quantize(EIGHT), rules.quote
            acct.bal(rules.base)[0] -= qty
            acct.bal(rules.quote)[0] += quote - commission
        return commission, asset, ZERO

    def _after_fill(self, order, rules, acct):
        self._emit_balance(acct.key, [rules.base, rules.quote])

    def _finish(self, order, status):
        """End an open order (cancel/expire) and give back what it locked."""
        if order.locked:
            self.accounts[order.account].lock(order.lock_asset, -order.locked)
            order.locked = ZERO
        order.status = status
        order.update_time = self.now()
        self._emit_order(order, status)
        self._emit_balance(order.account, [order.lock_asset])

    # -- cancel and queries --------------------------------------------------------
    def find(self, key, symbol, order_id=None, client_id=None):
        """The account's order by id or (latest) client id, or None."""
        if order_id is not None:
            o = self.orders.get(order_id)
            return o if o and o.account == key and o.symbol == symbol else None
        for o in reversed(list(self.orders.values())):
            if o.account == key and o.symbol == symbol and o.client_id == client_id:
                return o
        return None

    def cancel(self, key, symbol, order_id=None, client_id=None, tag=''):
        """Cancel an open order; ``tag`` is the protocol's id for the cancel."""
        order = self.find(key, symbol, order_id, client_id)
        if order is None or not order.is_open:
            raise EngineError('unknown_order')
        order.cancel_tag = tag
        self._finish(order, CANCELED)
        self._open[symbol].remove(order)
        return order

    def amend(self, order, qty, price):
        """Give a resting limit order a new quantity and price (Binance futures order
        modify): it goes to the back of the queue and takes liquidity if it now
        crosses. Filter failures refuse it and keep the order as it was; a quantity
        at or below what already filled, or a post-only order that would now take,
        cancels it (as Binance documents)."""
        rules, acct = self.markets[order.symbol], self.accounts[order.account]
        self._check_price(price, rules)
        self._check_qty(qty, rules)
        bid, ask = self.best(order.symbol)
        crosses = price >= ask if order.side == 'BUY' else price <= bid
        if qty <= order.executed or (order.post_only and crosses):
            return self.cancel(order.account, order.symbol, order.id)
        saved = (order.qty, order.price, order.lock_asset, order.locked)
        acct.lock(order.lock_asset, -order.locked)
        order.qty, order.price, order.locked = qty, price, ZERO
        try:
            self._lock(order, rules, acct, None)
        except EngineError:
            order.qty, order.price, order.lock_asset, order.locked = saved
            acct.lock(order.lock_asset, order.locked)
            raise
        order.update_time = self.now()
        book = self._open[order.symbol]
        book.remove(order)
        book.append(order)  # re-queued behind every other order at its price
        self._emit_order(order, 'AMENDMENT')
        self._emit_balance(acct.key, [order.lock_asset])
        if crosses:
            self._work(order)
            if not order.is_open:
                book.remove(order)
        return order

    def open_orders(self, key, symbol=None):
        symbols = [symbol] if symbol else list(self._open)
        return [o for s in symbols for o in self._open[s] if o.account == key]

    # -- the clock moved -------------------------------------------------------------
    def on_segment(self, seg):
        """Trigger stops and fill resting orders the price path crossed."""
        book = self._open.get(seg.symbol)
        if not book:
            return
        for order in list(book):
            if not order.is_open:
                continue
            if not order.triggered:
                trail = order.extra.get('trail')
                if trail is not None:
                    if not self._trail(order, trail, seg):
                        continue
                    # it triggered mid-segment, at its stop: not a gap from seg.first
                    self._trigger(order, seg._replace(first=float(order.stop_price)))
                elif not self._crossed(order, seg):
                    continue
                else:
                    self._trigger(order, seg)
            if order.is_open and order.is_limit:
                self._rest_fill(order, seg)
        book[:] = [o for o in book if o.is_open]

    def _crossed(self, order, seg):
        return (seg.high >= order.stop_price if order.trigger_above
                else seg.low <= order.stop_price)

    # -- trailing stops ----------------------------------------------------------------
    # ``order.extra['trail']``: {'delta': fraction, 'activation': price or None,
    # 'activate_above': bool, 'extreme': best price since tracking began or None}.
    # A SELL tracks the highest price and triggers after a fall of ``delta`` from it,
    # a BUY tracks the lowest and triggers after a rise; tracking starts at once, or
    # when the price meets ``activation`` (Binance's trailing stop FAQ).
    def _start_trail(self, order, trail):
        price = dec(self.price_of(order.symbol))
        activation = trail['activation']
        if activation is None or (price >= activation if trail['activate_above']
                                  else price <= activation):
            trail['extreme'] = price if activation is None else activation

    def _trail(self, order, trail, seg):
        """Follow the segment's path; True (and the stop set) once the order triggers."""
        sell = order.side == 'SELL'
        for p in map(dec, self._path(order.symbol, seg)):
            if trail['extreme'] is None:
                if trail['activation'] is None or not (
                        p >= trail['activation'] if trail['activate_above']
                        else p <= trail['activation']):
                    continue
                trail['extreme'] = trail['activation']
            trail['extreme'] = max(trail['extreme'], p) if sell else min(trail['extreme'], p)
            stop = trail['extreme'] * (1 - trail['delta'] if sell else 1 + trail['delta'])
            if (p <= stop) if sell else (p >= stop):
                rules = self.markets[order.symbol]
                order.stop_price = rules.price(stop, ROUND_DOWN if sell else ROUND_UP)
                order.trigger_above = not sell
                return True
        return False

    #: path samples per segment a trailing stop follows (1 h bars: one a minute,
    #: so the path's knots at a third and two thirds are hit exactly)
    TRAIL_SAMPLES = 60

    def _path(self, symbol, seg):
        """The segment's prices in time order: sampled from ``price_at(symbol, ms)``
        when the simulator gives one, else first, the extremes (the high first when
        the segment falls overall), last."""
        price_at = getattr(self, 'price_at', None)
        if price_at is None:
            lo, hi = (seg.high, seg.low) if seg.last < seg.first else (seg.low, seg.high)
            return (seg.first, lo, hi, seg.last)
        n = max(1, min(self.TRAIL_SAMPLES, (seg.end - seg.start) // 1000))
        return [seg.first] + [price_at(symbol, seg.start + (seg.end - seg.start) * k // n)
                              for k in range(1, n + 1)]

    def _trigger(self, order, seg):
        """A stop's price was reached: it becomes a market or limit order."""
        rules = self.markets[order.symbol]
        # a gap past the stop fills at the first price seen, not at the stop
        first = dec(seg.first)
        beyond = first >= order.stop_price if order.trigger_above else first <= order.stop_price
        at = first if beyond else order.stop_price
        order.triggered = True
        order.working_time = self.now()
        bid = rules.price(at, ROUND_DOWN)
        start = bid + rules.tick if order.side == 'BUY' else bid
        if not order.is_limit:
            self._work(order, self._levels(order.symbol, order.side, start,
                                           qty=order.remaining))
        elif (order.price >= start) if order.side == 'BUY' else (order.price <= start):
            self._take(order, self._levels(order.symbol, order.side, start,
                                           qty=order.remaining, limit=order.price))

    def _rest_fill(self, order, seg):
        crossed = seg.low <= order.price if order.side == 'BUY' else seg.high >= order.price
        if not crossed:
            return
        key = (seg.symbol, seg.index)
        room = self.liquidity * dec(seg.volume) - self._used.get(key, ZERO)
        qty = to_step(min(room, order.remaining), self.markets[order.symbol].step)
        if qty <= ZERO:
            return
        self._used[key] = self._used.get(key, ZERO) + qty
        if len(self._used) > 10000:  # old bars never come back: keep memory bounded
            for k in list(self._used)[:5000]:
                del self._used[k]
        self._fill(order, order.price, qty, maker=True)

    # -- events -------------------------------------------------------------------------
    def _emit_order(self, order, exec_type, trade=None):
        for listener in self.listeners:
            listener('order', (order.copy(), exec_type, trade))

    def _emit_balance(self, key, assets):
        acct = self.accounts[key]
        changed = {a: tuple(acct.bal(a)) for a in dict.fromkeys(assets) if a}
        for listener in self.listeners:
            listener('balance', (key, changed))


__all__ = ['Engine', 'EngineError', 'NEW']
