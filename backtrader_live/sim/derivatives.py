"""Perpetual contracts on top of the matching engine: positions, margin, funding.

Exchange-neutral, like :mod:`.engine`: a protocol module turns requests into
orders and engine events into its wire format.  One :class:`DerivEngine` holds
one family of contracts (e.g. Binance USD-M, or Binance COIN-M), each market
priced by a candle feed (``MarketRules.feed``), so one candle file can drive
``BTCUSDT`` spot, the ``BTCUSDT`` perpetual and ``BTCUSD_PERP`` at once.

Simplified rules (documented in docs/simulator.md):

- one-way positions: a signed size per symbol; the entry price is the
  volume-weighted average of the opening fills (for inverse contracts the
  contract-weighted harmonic mean, which is the same thing in coin terms);
- the mark price is the market price of the feed;
- initial margin = notional at entry / leverage; an order reserves the margin
  of the part that would open or grow the position (reduce-only: nothing);
  available = wallet + unrealised PnL of cross positions - position margins -
  order margins; a new order needing more than available is refused;
- liquidation when the mark crosses the liquidation price, where equity
  (collateral + PnL) equals ``mmr`` x notional at the mark; collateral is the
  position margin (isolated) or the wallet minus the other margins (cross).
  The position is closed at that price by an order with client id
  ``autoclose-<ms>``; open orders of the symbol are canceled first;
- funding every ``funding_hours`` of market time on UTC boundaries:
  ``-size x notional(mark) x rate`` paid to / taken from the wallet
  (longs pay when the rate is positive).
"""
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, ROUND_UP

from .engine import Engine
from .models import CANCELED, EIGHT, EXPIRED, ZERO, EngineError, Order, dec, to_step

HOUR = 3600000
CROSS, ISOLATED = 'cross', 'isolated'


@dataclass
class Position:
    symbol: str
    size: object = ZERO       # signed contracts: > 0 long, < 0 short
    entry: object = ZERO
    realized: object = ZERO   # cumulative realised PnL (fills only)
    update_time: int = 0

    def copy(self):
        return replace(self)


@dataclass
class FundingEvent:
    id: int
    account: str
    symbol: str
    asset: str
    amount: object            # > 0 received, < 0 paid
    rate: object
    mark: object
    size: object
    time: int

    def copy(self):
        return replace(self)


@dataclass
class DerivAccount:
    """A futures wallet: balances per settle asset, positions and settings per symbol."""
    key: str
    secret: str
    wallet: dict = field(default_factory=dict)        # asset -> Decimal
    order_margin: dict = field(default_factory=dict)  # asset -> Decimal reserved
    positions: dict = field(default_factory=dict)     # symbol -> Position
    leverage: dict = field(default_factory=dict)      # symbol -> int
    mode: dict = field(default_factory=dict)          # symbol -> cross / isolated
    update_time: dict = field(default_factory=dict)   # asset -> ms of last change

    def lock(self, asset, amount):
        """Reserve (or with a negative amount free) order margin."""
        self.order_margin[asset] = self.order_margin.get(asset, ZERO) + amount

    def position(self, symbol):
        return self.positions.setdefault(symbol, Position(symbol))


class DerivEngine(Engine):
    """Matching plus positions, margin, liquidation and funding for contracts."""

    def __init__(self, markets, now, price_of, price_at, fees=(0.0002, 0.0005),
                 depth_qty=1.0, liquidity=0.5, funding_rate=0.0001, funding_hours=8,
                 default_leverage=20):
        super().__init__(markets, now, price_of, fees, depth_qty, liquidity)
        self.price_at = price_at          # (symbol, ms) -> float price at that time
        self.funding_rate = funding_rate  # float, or {symbol: float}
        self.funding_ms = int(funding_hours * HOUR)
        self.default_leverage = default_leverage
        self.funding = []                 # FundingEvent, oldest first
        self._next_funding_id = 1

    # -- accounts and settings ------------------------------------------------------
    def add_account(self, key, secret, balances=None):
        acct = DerivAccount(key, secret)
        for asset, amount in (balances or {}).items():
            acct.wallet[asset] = dec(amount)
            acct.update_time[asset] = self.now()
        self.accounts[key] = acct
        return acct

    def set_balance(self, key, asset, free, locked=None):
        acct = self.accounts[key]
        acct.wallet[asset] = dec(free)
        acct.update_time[asset] = self.now()
        self._emit_account(key, 'DEPOSIT', [asset], [])

    def leverage(self, acct, symbol):
        return acct.leverage.get(symbol, self.default_leverage)

    def margin_mode(self, acct, symbol):
        return acct.mode.get(symbol, CROSS)

    def set_leverage(self, key, symbol, leverage):
        rules = self._rules(symbol)
        lev = int(leverage)
        if not 1 <= lev <= rules.max_leverage or lev != dec(leverage):
            raise EngineError('bad_leverage', str(leverage))
        acct = self.accounts[key]
        old = acct.leverage.get(symbol)
        acct.leverage[symbol] = lev
        if self.available(acct, rules.settle) < ZERO:  # the position needs more margin
            acct.leverage[symbol] = old if old else self.default_leverage
            raise EngineError('insufficient_margin')
        if lev != old:
            # The exchanges announce it, position or not (Binance:
            # ACCOUNT_CONFIG_UPDATE; Bybit: the position topic).
            for listener in self.listeners:
                listener('leverage', (key, symbol, lev))
        return lev

    def set_margin_mode(self, key, symbol, mode):
        self._rules(symbol)
        acct = self.accounts[key]
        if mode not in (CROSS, ISOLATED):
            raise EngineError('bad_param', 'marginType')
        if self.margin_mode(acct, symbol) == mode:
            raise EngineError('no_change')
        if acct.position(symbol).size:
            raise EngineError('position_exists')
        if self.open_orders(key, symbol):
            raise EngineError('open_orders_exist')
        acct.mode[symbol] = mode

    def _rules(self, symbol):
        rules = self.markets.get(symbol)
        if rules is None:
            raise EngineError('unknown_symbol')
        return rules

    # -- contract arithmetic -----------------------------------------------------------
    @staticmethod
    def notional(rules, qty, price):
        """Value of ``qty`` contracts at ``price`` in the settle asset."""
        price = dec(price)
        if rules.inverse:
            return qty * rules.contract_size / price if price else ZERO
        return qty * rules.contract_size * price

    @staticmethod
    def pnl(rules, size, entry, price):
        """PnL of a signed ``size`` opened at ``entry``, valued at ``price``."""
        price = dec(price)
        if not size or not entry or not price:
            return ZERO
        if rules.inverse:
            return size * rules.contract_size * (1 / entry - 1 / price)
        return size * rules.contract_size * (price - entry)

    def position_margin(self, acct, pos):
        rules = self.markets[pos.symbol]
        return self.notional(rules, abs(pos.size), pos.entry) / self.leverage(acct, pos.symbol)

    def unrealized(self, pos):
        return self.pnl(self.markets[pos.symbol], pos.size, pos.entry,
                        self.price_of(pos.symbol))

    def _positions_in(self, acct, asset):
        return [p for p in acct.positions.values()
                if p.size and self.markets[p.symbol].settle == asset]

    def available(self, acct, asset):
        """Wallet + cross unrealised PnL - position margins - order margins."""
        total = acct.wallet.get(asset, ZERO) - acct.order_margin.get(asset, ZERO)
        for pos in self._positions_in(acct, asset):
            total -= self.position_margin(acct, pos)
            if self.margin_mode(acct, pos.symbol) == CROSS:
                total += self.unrealized(pos)
        return total

    def balance_view(self, acct, asset):
        """{wallet, unrealized, margin_balance, position_margin, order_margin, available}."""
        positions = self._positions_in(acct, asset)
        upnl = sum((self.unrealized(p) for p in positions), ZERO)
        wallet = acct.wallet.get(asset, ZERO)
        return {'wallet': wallet, 'unrealized': upnl, 'margin_balance': wallet + upnl,
                'position_margin': sum((self.position_margin(acct, p) for p in positions),
                                       ZERO),
                'order_margin': acct.order_margin.get(asset, ZERO),
                'maint': sum((self.markets[p.symbol].mmr * self.notional(
                    self.markets[p.symbol], abs(p.size), self.price_of(p.symbol))
                    for p in positions), ZERO),
                'available': self.available(acct, asset)}

    def liquidation_price(self, acct, pos):
        """Where equity = mmr x notional at the mark (0: none)."""
        if not pos.size:
            return ZERO
        rules = self.markets[pos.symbol]
        if self.margin_mode(acct, pos.symbol) == ISOLATED:
            collateral = self.position_margin(acct, pos)
        else:
            others = [p for p in self._positions_in(acct, rules.settle) if p is not pos]
            collateral = (acct.wallet.get(rules.settle, ZERO)
                          - acct.order_margin.get(rules.settle, ZERO)
                          - sum((self.position_margin(acct, p) for p in others), ZERO))
        s, mmr, e = pos.size, rules.mmr, pos.entry
        if rules.inverse:  # M + s*cs*(1/e - 1/p) = mmr*|s|*cs/p
            den = collateral + s * rules.contract_size / e
            price = rules.contract_size * (s + mmr * abs(s)) / den if den else ZERO
        else:              # M + s*(p - e) = mmr*|s|*p
            price = (s * e - collateral) / (s - mmr * abs(s))
        return to_step(price, rules.tick, ROUND_DOWN) if price > ZERO else ZERO

    # -- hooks of the matching engine ----------------------------------------------------
    def _min_notional(self, order, rules):
        # reduce-only orders are exempt (as on Binance); contracts of inverse
        # markets are priced in USD already, their rule is on the count
        if order.reduce_only or order.close_position or rules.inverse:
            return ZERO
        return rules.min_notional

    def _check(self, order, rules, acct):
        pos = acct.position(order.symbol)
        if order.close_position:
            if not self._reduces(order, pos):
                raise EngineError('reduce_only')
            order.qty = abs(pos.size)
        if order.reduce_only and order.triggered and not self._reduces(order, pos):
            raise EngineError('reduce_only')
        return super()._check(order, rules, acct)

    @staticmethod
    def _reduces(order, pos):
        return pos.size < ZERO if order.side == 'BUY' else pos.size > ZERO

    def _opening_qty(self, order, pos):
        if order.reduce_only or order.close_position:
            return ZERO
        if self._reduces(order, pos):
            return max(ZERO, order.remaining - abs(pos.size))
        return order.remaining

    def _lock(self, order, rules, acct, levels):
        if order.is_limit:
            ref = order.price
        elif levels:
            ref = sum(p * q for p, q in levels) / sum(q for _, q in levels)
        else:
            ref = order.stop_price or dec(self.price_of(order.symbol))
        opening = self._opening_qty(order, acct.position(order.symbol))
        need = (self.notional(rules, opening, ref)
                / self.leverage(acct, order.symbol)).quantize(EIGHT, ROUND_UP)
        if need and self.available(acct, rules.settle) < need:
            raise EngineError('insufficient_margin')
        acct.lock(rules.settle, need)
        order.lock_asset, order.locked = rules.settle, need

    def _trigger(self, order, seg):
        # announce the trigger (Binance ALGO_UPDATE TRIGGERED, Bybit "Triggered")
        order.triggered = True
        order.working_time = self.now()
        self._emit_order(order, 'TRIGGERED')
        super()._trigger(order, seg)

    @staticmethod
    def _affordable(order, acct, price, qty):
        return True  # margin was reserved on placement; a gap does not cancel

    @staticmethod
    def _quote_value(rules, price, qty):
        return DerivEngine.notional(rules, qty, price).quantize(EIGHT)

    @staticmethod
    def _release(order, qty, quote):
        if qty >= order.remaining:
            return order.locked
        return (order.locked * qty / order.remaining).quantize(EIGHT)

    def _fill(self, order, price, qty, maker):
        if order.reduce_only or order.close_position:
            pos = self.accounts[order.account].position(order.symbol)
            room = abs(pos.size) if self._reduces(order, pos) else ZERO
            if room <= ZERO:
                self._finish(order, EXPIRED)  # nothing left to reduce: never flips
                return None
            qty = min(qty, room)
        trade = super()._fill(order, price, qty, maker)
        if order.is_open and (order.reduce_only or order.close_position) and \
                not self.accounts[order.account].position(order.symbol).size:
            self._finish(order, EXPIRED)
        return trade

    def _settle(self, order, rules, acct, price, qty, quote, fee):
        commission = (quote * fee).quantize(EIGHT)
        realized = self._apply_fill(acct, rules, qty if order.side == 'BUY' else -qty, price)
        asset = rules.settle
        acct.wallet[asset] = acct.wallet.get(asset, ZERO) + realized - commission
        acct.update_time[asset] = self.now()
        return commission, asset, realized

    def _apply_fill(self, acct, rules, delta, price):
        """Move the position by a signed ``delta`` at ``price``; returns realised PnL."""
        pos = acct.position(rules.symbol)
        s, realized = pos.size, ZERO
        if not s or (s > 0) == (delta > 0):
            q, total = abs(delta), abs(s) + abs(delta)
            if rules.inverse:
                pos.entry = total / (abs(s) / pos.entry + q / price) if s else price
            else:
                pos.entry = (abs(s) * pos.entry + q * price) / total
        else:
            closing = min(abs(delta), abs(s))
            realized = self.pnl(rules, closing if s > 0 else -closing, pos.entry, price)
            realized = realized.quantize(EIGHT)
            if abs(delta) > abs(s):
                pos.entry = price  # flipped: the rest opens at the fill price
        pos.size = s + delta
        if not pos.size:
            pos.entry = ZERO
        pos.entry = pos.entry.quantize(EIGHT) if pos.entry else ZERO
        pos.realized += realized
        pos.update_time = self.now()
        return realized

    def _after_fill(self, order, rules, acct):
        self._emit_account(acct.key, 'ORDER', [rules.settle], [rules.symbol])

    def _emit_balance(self, key, assets):
        pass  # order margin is not a wallet change: no account event on place/cancel

    def _emit_account(self, key, reason, assets, symbols, change=ZERO):
        # change: the balance change that is not PnL or commission (Binance's
        # ACCOUNT_UPDATE 'bc'), e.g. the funding fee itself.
        for listener in self.listeners:
            listener('account', (key, reason, list(assets), list(symbols), change))

    # -- the clock moved --------------------------------------------------------------
    def on_segment(self, seg):
        """Match, then liquidate and fund every market the feed ``seg`` prices."""
        for symbol, rules in self.markets.items():
            if rules.feed != seg.symbol:
                continue
            volume = seg.volume
            if rules.inverse:  # the feed counts coins; these markets count contracts
                volume = seg.volume * seg.last / float(rules.contract_size)
            mine = seg._replace(symbol=symbol, volume=volume)
            super().on_segment(mine)
            self._check_liquidations(rules, mine)
            self._apply_funding(rules, mine)

    def _check_liquidations(self, rules, seg):
        for acct in list(self.accounts.values()):
            pos = acct.positions.get(rules.symbol)
            if not pos or not pos.size:
                continue
            liq = self.liquidation_price(acct, pos)
            if liq and (seg.low <= liq if pos.size > 0 else seg.high >= liq):
                self._liquidate(acct, rules, pos, liq)

    def _liquidate(self, acct, rules, pos, price):
        for order in self.open_orders(acct.key, rules.symbol):
            self.cancel(acct.key, rules.symbol, order.id)
        order = Order(id=self._next_order_id, client_id='autoclose-%d' % self.now(),
                      account=acct.key, symbol=rules.symbol,
                      side='SELL' if pos.size > 0 else 'BUY', type='MARKET',
                      qty=abs(pos.size), reduce_only=True, extra={'liquidation': True})
        self._next_order_id += 1
        order.time = order.update_time = order.working_time = self.now()
        self.orders[order.id] = order
        self._emit_order(order, 'NEW')
        trade = self._fill(order, price, order.qty, maker=False)
        if trade is not None:
            trade.kind = 'Liquidation'

    def _apply_funding(self, rules, seg):
        boundary = (seg.start // self.funding_ms + 1) * self.funding_ms
        while boundary <= seg.end:
            self._fund(rules, boundary)
            boundary += self.funding_ms

    def funding_rate_of(self, symbol):
        rate = self.funding_rate
        return dec(rate.get(symbol, 0.0001) if isinstance(rate, dict) else rate)

    def _fund(self, rules, when):
        rate = self.funding_rate_of(rules.symbol)
        mark = dec(self.price_at(rules.symbol, when))
        for acct in list(self.accounts.values()):
            pos = acct.positions.get(rules.symbol)
            if not pos or not pos.size:
                continue
            value = self.notional(rules, abs(pos.size), mark)
            amount = (-value * rate * (1 if pos.size > 0 else -1)).quantize(EIGHT)
            acct.wallet[rules.settle] = acct.wallet.get(rules.settle, ZERO) + amount
            acct.update_time[rules.settle] = self.now()
            event = FundingEvent(self._next_funding_id, acct.key, rules.symbol, rules.settle,
                                 amount, rate, mark, pos.size, when)
            self._next_funding_id += 1
            self.funding.append(event)
            for listener in self.listeners:
                listener('funding', event.copy())
            self._emit_account(acct.key, 'FUNDING_FEE', [rules.settle], [rules.symbol],
                               amount)

    # -- snapshots ----------------------------------------------------------------------
    def positions_of(self, key):
        acct = self.accounts[key]
        return [p.copy() for p in acct.positions.values() if p.size]

    def cancel_all(self, key, symbol):
        return [self.cancel(key, symbol, o.id) for o in self.open_orders(key, symbol)]


__all__ = ['DerivEngine', 'DerivAccount', 'Position', 'FundingEvent', 'CROSS', 'ISOLATED',
           'CANCELED']
