"""How cash, value, fees and start positions work for each kind of market.

Spot: the account is coin balances; a buy's fee taken in the coin bought
makes the position smaller than the amount filled. Derivatives: the account
is a wallet in the settle asset (USDT, or BTC for inverse contracts) plus
positions; value is wallet + unrealised PnL. Both are fed by the user-data
stream (no REST call per ``getcash()``) and loaded once over REST at start.
"""
import logging
from decimal import ROUND_DOWN

from backtrader.comminfo import CommInfoBase

from .events import BalanceUpdate, LeverageUpdate, PositionUpdate
from .orders import dec, exact_sum

log = logging.getLogger(__name__)


class SpotAccount:
    def __init__(self):
        self.balances = {}          # asset -> [free, used]

    def load(self, store):
        self.balances = {a: [b['free'], b['used']] for a, b in store.get_balance().items()}

    def on_event(self, event):
        if isinstance(event, BalanceUpdate):
            for asset, (free, used) in event.balances.items():
                self.balances[asset] = [free, used]
            return True
        return False

    def cash(self, currency):
        return self.balances.get(currency, (0.0, 0.0))[0]

    def value(self, currency, priced):
        """``priced``: [(rules, position, price)] of the broker's datas."""
        free, used = self.balances.get(currency, (0.0, 0.0))
        value = free + used
        counted = {currency}    # a coin once, however many feeds price it
        for rules, _, price in priced:
            if rules.base not in counted:
                counted.add(rules.base)
                value += sum(self.balances.get(rules.base, (0.0, 0.0))) * price
        return value

    @staticmethod
    def entry_price(rules, old_size, old_price, position):
        return position.price

    def fill_terms(self, fill, rules):
        """(position size change magnitude, commission in cash units)."""
        if fill.fee_asset == rules.base:
            # Fee taken from the coin received: the position is what we hold.
            return exact_sum(fill.amount, -fill.fee), fill.fee * fill.price
        if fill.fee_asset not in (None, rules.quote):
            log.info('fee of %s %s is not in %s; not counted as commission',
                     fill.fee, fill.fee_asset, rules.quote)
            return fill.amount, 0.0
        return fill.amount, fill.fee

    @staticmethod
    def settle_dust(rules, position_size, signed):
        """A fill's signed size, taking along dust it would leave behind.

        Fees taken in the coin bought leave a position that is no multiple of
        the amount step, so a full close (rounded down) leaves a crumb the
        exchange will never let us sell. A position below one step cannot be
        traded: the reducing fill closes it (the coin stays in the balance,
        which the account value counts), and backtrader's trade closes.
        """
        rest = exact_sum(position_size, signed)
        step = rules.amount_step or 0.0
        if (position_size and rest and abs(rest) < step and abs(rest) < abs(position_size)
                and (rest > 0) == (position_size > 0)):
            return -position_size
        return signed

    def start_position(self, store, rules, price):
        """(size, price) of holdings to adopt, or None (nothing, or dust)."""
        size = sum(self.balances.get(rules.base, (0.0, 0.0)))
        if not size:
            return None
        if rules.min_notional and size * price < rules.min_notional:
            log.info('ignoring %s dust of %s (below the min notional)', rules.base, size)
            return None
        return size, price


class DerivativesAccount:
    def __init__(self):
        self.wallet = {}            # settle asset -> wallet balance
        self.positions = {}         # symbol -> PositionUpdate (the exchange's view)
        self.leverage = {}          # symbol -> leverage in force

    def load(self, store):
        self.wallet = {a: b['wallet'] for a, b in store.get_balance().items()}
        for p in store.position_updates():
            self.positions[p.symbol] = p

    def on_event(self, event):
        if isinstance(event, BalanceUpdate):
            for asset, (free, used) in event.balances.items():
                self.wallet[asset] = free + used
            return True
        if isinstance(event, PositionUpdate):
            self.positions[event.symbol] = event
            if event.leverage:       # Bybit's position topic names it
                self.leverage[event.symbol] = event.leverage
            return True
        if isinstance(event, LeverageUpdate):
            self.leverage[event.symbol] = event.leverage
            return True
        return False

    def _margin_and_upnl(self, currency, priced):
        margin = upnl = 0.0
        for rules, position, price in priced:
            if rules.settle != currency or not position.size:
                continue
            lev = self.leverage.get(rules.symbol) or 1.0
            upnl += contract_pnl(rules, position.size, position.price, price)
            margin += contract_value(rules, abs(position.size), price) / lev
        return margin, upnl

    def cash(self, currency, priced=()):
        margin, upnl = self._margin_and_upnl(currency, priced)
        return self.wallet.get(currency, 0.0) + upnl - margin

    def value(self, currency, priced):
        _, upnl = self._margin_and_upnl(currency, priced)
        return self.wallet.get(currency, 0.0) + upnl

    def fill_terms(self, fill, rules):
        if fill.fee_asset not in (None, rules.settle, rules.quote):
            log.info('fee of %s %s is not in %s; not counted as commission',
                     fill.fee, fill.fee_asset, rules.settle)
            return fill.amount, 0.0
        return fill.amount, fill.fee

    @staticmethod
    def settle_dust(rules, position_size, signed):
        return signed       # contracts are whole steps: no fee-in-coin dust

    @staticmethod
    def entry_price(rules, old_size, old_price, position):
        """The exchange's entry price after a fill that added to a position.

        backtrader averages prices arithmetically; for inverse contracts the
        exchange averages in coin terms (a harmonic mean), and PnL follows it.
        """
        size, price = position.size, position.price
        grew = old_size and abs(size) > abs(old_size) and (size > 0) == (old_size > 0)
        if not (rules.inverse and grew and old_price and price):
            return price
        added = abs(size) - abs(old_size)
        fill_price = (price * abs(size) - old_price * abs(old_size)) / added
        return abs(size) / (abs(old_size) / old_price + added / fill_price)

    def start_position(self, store, rules, price):
        p = self.positions.get(rules.symbol)
        if p is None or not p.size:
            return None
        return p.size, p.entry_price or price


def contract_value(rules, contracts, price):
    """Notional of ``contracts`` in the settle asset."""
    if rules.inverse:
        return contracts * rules.contract_size / price
    return contracts * rules.contract_size * price


def contract_pnl(rules, size, entry, price):
    """PnL of a signed position from ``entry`` to ``price``, in the settle asset."""
    if not size or not entry or not price:
        return 0.0
    if rules.inverse:
        return size * rules.contract_size * (1.0 / entry - 1.0 / price)
    return size * rules.contract_size * (price - entry)


def account_for(kind):
    from .markets import SPOT
    return SpotAccount() if kind == SPOT else DerivativesAccount()


def in_step(amount, step):
    """``amount`` truncated to a multiple of ``step``, in exact decimals."""
    if amount <= 0:
        return 0.0
    if not step:
        return float(amount)
    step = dec(step)
    return float((dec(amount) / step).to_integral_value(ROUND_DOWN) * step)


class _StepSizing(CommInfoBase):
    """``getsize`` in the market's amount step: upstream's truncates to a
    whole unit (``int(cash // price)``), so ``order_target_value(0.05 BTC
    worth)`` would place nothing.

    On contracts, ``cash`` buys notional, not margin: upstream divides by
    the margin per contract, so at the exchange's 20x an
    ``order_target_percent(0.05)`` became a position worth 100 % of the
    account live, while paper and a backtest (1x) placed 5 %. The account's
    leverage decides the margin the exchange holds, never the size."""
    params = (('step', None),)

    def getsize(self, price, cash):
        if not price or cash <= 0:
            return 0.0
        per_unit = dec(price) if self._stocklike else dec(self.notional(1.0, price))
        return in_step(dec(self.p.leverage) * dec(cash) / per_unit, self.p.step)


class SpotCommInfo(_StepSizing):
    """Spot coins: percentage commission, fractional sizes, no margin."""
    params = (('stocklike', True), ('commtype', CommInfoBase.COMM_PERC), ('percabs', True))


class LinearCommInfo(_StepSizing):
    """USDT-margined contracts: PnL = size x contract size x price move."""
    params = (('stocklike', False), ('commtype', CommInfoBase.COMM_PERC), ('percabs', True))

    def get_margin(self, price):
        # Initial margin of one contract at this leverage (automargin = 1/leverage).
        return price * self.p.mult * self.p.automargin

    def notional(self, size, price):
        """Signed value of ``size`` contracts in the settle asset."""
        return size * self.p.mult * price

    def getvaluesize(self, size, price):
        # The position's notional, signed, as the live broker's
        # getvalue(datas=[d]) gives it: upstream's is the margin, unsigned,
        # so order_target_value read a short as long and depended on leverage.
        return self.notional(size, price)


class InverseCommInfo(LinearCommInfo):
    """Coin-margined contracts, counted in the coin: a contract is worth
    ``mult`` USD, so its value in BTC is mult / price and PnL is
    size x mult x (1/entry - 1/exit)."""

    def get_margin(self, price):
        return self.p.mult / price * self.p.automargin if price else 0.0

    def profitandloss(self, size, price, newprice):
        if not size or not price or not newprice:
            return 0.0
        return size * self.p.mult * (1.0 / price - 1.0 / newprice)

    def notional(self, size, price):
        return size * self.p.mult / price if price else 0.0

    def getoperationcost(self, size, price):
        return abs(size) * self.get_margin(price)

    def _getcommission(self, size, price, pseudoexec):
        return abs(size) * self.p.mult / price * self.p.commission if price else 0.0

    def cashadjust(self, size, price, newprice):
        return 0.0


def comminfo_for(rules, leverage=1.0):
    """The CommissionInfo backtrader needs for one market."""
    if not rules.contract:
        return SpotCommInfo(commission=rules.taker_fee, step=rules.amount_step)
    cls = InverseCommInfo if rules.inverse else LinearCommInfo
    return cls(commission=rules.taker_fee, mult=rules.contract_size,
               automargin=1.0 / (leverage or 1.0), step=rules.amount_step)
