"""Exchange-agnostic records of the simulator: market rules, accounts, orders, trades.

Amounts are :class:`~decimal.Decimal` so filter checks (tick/step multiples)
and balances are exact; a protocol module formats them as strings.
"""
from dataclasses import dataclass, field, replace
from decimal import Decimal, ROUND_DOWN, ROUND_UP

D = Decimal
ZERO = D(0)
EIGHT = D('1e-8')  # balance and commission precision

# Order statuses. The names are Binance's because they are the most widely
# known; another protocol module maps them to its own words.
NEW, PARTIALLY_FILLED, FILLED = 'NEW', 'PARTIALLY_FILLED', 'FILLED'
CANCELED, EXPIRED, REJECTED = 'CANCELED', 'EXPIRED', 'REJECTED'
OPEN_STATUSES = (NEW, PARTIALLY_FILLED)


def dec(value):
    """A Decimal from a str/float/int/Decimal without binary float noise."""
    if isinstance(value, Decimal):
        return value
    return D(str(value))


def fmt(value, places=8):
    """Binance-style fixed decimal string (``'0.00100000'``)."""
    return '{:.{}f}'.format(dec(value), places)


def to_step(value, step, rounding=ROUND_DOWN):
    """``value`` rounded to a multiple of ``step``."""
    return (dec(value) / step).to_integral_value(rounding) * step


class EngineError(Exception):
    """An order request the exchange refuses; ``reason`` is protocol-neutral.

    Reasons: insufficient_balance, would_trigger, would_take, filter_price,
    filter_lot, filter_notional, duplicate, unknown_order, unknown_symbol,
    bad_param (``detail`` names the parameter), bad_order_type.
    """

    def __init__(self, reason, detail=''):
        super().__init__('%s %s' % (reason, detail))
        self.reason = reason
        self.detail = detail


@dataclass
class MarketRules:
    """Trading rules of one symbol (Binance's exchangeInfo filters, in short)."""
    symbol: str          # exchange id, e.g. BTCUSDT
    base: str
    quote: str
    tick: Decimal = D('0.01')
    step: Decimal = D('0.00001')
    min_qty: Decimal = D('0.00001')
    max_qty: Decimal = D('9000')
    min_price: Decimal = D('0.01')
    max_price: Decimal = D('1000000')
    min_notional: Decimal = D('5')
    base_precision: int = 8
    quote_precision: int = 8
    # derivatives (None/defaults for spot): 'linear' contracts are worth one base
    # unit and settle in the quote; 'inverse' ones are worth ``contract_size``
    # quote units and settle in the base coin
    kind: str = 'spot'
    contract_size: Decimal = D(1)
    settle: str = ''
    mmr: Decimal = D('0.004')     # maintenance margin rate (flat, one bracket)
    max_leverage: int = 125
    feed: str = ''                # the candle feed (symbol id) that prices it

    @property
    def inverse(self):
        return self.kind == 'inverse'

    def price(self, value, rounding=ROUND_UP):
        """A float market price as a Decimal on the tick grid."""
        return max(to_step(value, self.tick, rounding), self.tick)


@dataclass
class Account:
    key: str
    secret: str
    balances: dict = field(default_factory=dict)  # asset -> [free, locked]

    def bal(self, asset):
        return self.balances.setdefault(asset, [ZERO, ZERO])

    def free(self, asset):
        return self.bal(asset)[0]

    def lock(self, asset, amount):
        b = self.bal(asset)
        b[0] -= amount
        b[1] += amount

    def snapshot(self):
        return {a: {'free': f, 'locked': l} for a, (f, l) in self.balances.items()}


@dataclass
class Order:
    id: int
    client_id: str
    account: str
    symbol: str
    side: str                 # BUY / SELL
    type: str                 # the protocol's order type name, kept for replies
    qty: Decimal
    price: Decimal = ZERO     # limit price; 0 for market orders
    stop_price: Decimal = ZERO
    trigger_above: bool = False  # a stop triggers when price >= stop (else <=)
    is_limit: bool = False    # rests on the book (after its trigger, if any)
    post_only: bool = False
    quote_qty: Decimal = ZERO  # market buy/sell by quote amount
    tif: str = 'GTC'
    status: str = NEW
    executed: Decimal = ZERO
    cum_quote: Decimal = ZERO
    time: int = 0
    update_time: int = 0
    working_time: int = -1
    triggered: bool = True    # False while a stop waits for its price
    lock_asset: str = ''
    locked: Decimal = ZERO    # still locked for the unfilled part
    cancel_tag: str = ''      # the protocol's id of the request that canceled it
    reduce_only: bool = False  # derivatives: may only shrink the position
    close_position: bool = False  # derivatives: a stop that closes the whole position
    extra: dict = field(default_factory=dict)  # protocol bookkeeping (algo ids, ...)

    @property
    def remaining(self):
        return self.qty - self.executed

    @property
    def is_open(self):
        return self.status in OPEN_STATUSES

    def copy(self):
        return replace(self)


@dataclass
class Trade:
    id: int
    order_id: int
    account: str
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_maker: bool
    realized_pnl: Decimal = ZERO  # derivatives: profit realised by this fill
    kind: str = 'Trade'        # Trade, or Liquidation for a forced close

    def copy(self):
        return replace(self)
