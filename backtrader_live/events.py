"""Exchange-neutral events passed from store threads to the broker and feeds.

Exchange modules parse their own payloads into these; generic code never
looks at an exchange's raw JSON.
"""
import logging
from dataclasses import dataclass, field
from typing import Optional

log = logging.getLogger(__name__)

# Order statuses, the same words ccxt uses for unified orders.
OPEN, CLOSED, CANCELED, REJECTED, EXPIRED = ('open', 'closed', 'canceled',
                                             'rejected', 'expired')
TERMINAL = frozenset((CLOSED, CANCELED, REJECTED, EXPIRED))

#: A store's parse of the user stream returns this for the exchange's answer
#: confirming the account subscription (Binance's WS-API user data, Bybit's
#: private topics): account events flow to us from that answer on, not from
#: the connect (stream_hub.py).
SUBSCRIBED = 'user stream subscribed'


@dataclass(frozen=True)
class Bar:
    """One candle; ``open_time`` in ms since the epoch (UTC)."""
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    closed: bool = True


@dataclass(frozen=True)
class Fill:
    """One trade of one order; ``trade_id`` is unique per symbol."""
    trade_id: str
    price: float
    amount: float
    fee: float = 0.0
    fee_asset: Optional[str] = None
    timestamp: Optional[int] = None
    maker: Optional[bool] = None


@dataclass
class OrderUpdate:
    """The exchange's view of one order at one moment."""
    client_id: Optional[str]
    exchange_id: Optional[str]
    symbol: Optional[str]
    status: str
    filled: float = 0.0
    remaining: Optional[float] = None
    average: Optional[float] = None
    reason: Optional[str] = None
    timestamp: Optional[int] = None
    fills: list = field(default_factory=list)
    source: str = 'rest'
    aliases: tuple = ()     # other exchange ids of this order (a triggered stop's)


@dataclass
class BalanceUpdate:
    """Balances per asset as ``{asset: (free, used)}``; a partial update."""
    balances: dict
    timestamp: Optional[int] = None
    source: str = 'stream'


def order_from_ccxt(o, source='rest', expired_when=None):
    """An OrderUpdate from a ccxt unified order dict (fills included).

    ``expired_when``: ``{raw field: words}`` (the store's ``EXPIRED_WHEN``)
    by which an exchange without an "expired" status (Bybit) says that an
    order ccxt calls canceled was ended by its time in force.
    """
    fills = [fill_from_ccxt(t) for t in (o.get('trades') or []) if t.get('id')]
    status = _ccxt_status(o)
    if status == CANCELED and expired(o.get('info') or {}, expired_when):
        status = EXPIRED
    return OrderUpdate(
        client_id=o.get('clientOrderId'), exchange_id=_str(o.get('id')),
        symbol=o.get('symbol'), status=status,
        filled=float(o.get('filled') or 0.0),
        remaining=_float(o.get('remaining')), average=_float(o.get('average')),
        timestamp=o.get('lastTradeTimestamp') or o.get('timestamp'),
        fills=fills, source=source)


def expired(raw, expired_when):
    """True if the exchange's raw order says its time in force ended it."""
    return any(raw.get(field) in words for field, words in (expired_when or {}).items())


def _ccxt_status(o):
    """ccxt calls an order that ended partly filled (Bybit's
    PartiallyFilledCanceled) 'closed', like a filled one; for us it was
    cancelled with what it had filled, not completed."""
    # ccxt passes statuses it has no word for through as sent ('Expired')
    status = (o.get('status') or OPEN).lower()
    amount, filled = _float(o.get('amount')), float(o.get('filled') or 0.0)
    if status == CLOSED and amount and filled < amount * (1 - 1e-9):
        return CANCELED
    return status


def fill_from_ccxt(t):
    """A Fill from a ccxt unified trade dict."""
    fee = t.get('fee') or {}
    return Fill(trade_id=str(t['id']), price=float(t['price']),
                amount=float(t['amount']), fee=float(fee.get('cost') or 0.0),
                fee_asset=fee.get('currency'), timestamp=t.get('timestamp'),
                maker=(t.get('takerOrMaker') == 'maker')
                if t.get('takerOrMaker') else None)


def _float(v):
    return None if v is None else float(v)


def _str(v):
    return None if v is None else str(v)


@dataclass
class PositionUpdate:
    """The exchange's one-way position in a symbol; ``size`` is signed."""
    symbol: str
    size: float
    entry_price: float = 0.0
    unrealized_pnl: Optional[float] = None
    mark_price: Optional[float] = None
    liquidation_price: Optional[float] = None
    leverage: Optional[float] = None
    margin_mode: Optional[str] = None
    timestamp: Optional[int] = None
    source: str = 'stream'


@dataclass
class LeverageUpdate:
    """The leverage of ``symbol`` changed (on the website, another program),
    position or not: margin and cash follow it."""
    symbol: str
    leverage: float
    timestamp: Optional[int] = None


@dataclass
class FundingPayment:
    """A funding fee paid (negative) or received (positive) in ``asset``."""
    asset: str
    amount: float
    symbol: Optional[str] = None
    timestamp: Optional[int] = None


def position_from_ccxt(p):
    """A PositionUpdate from a ccxt unified position dict."""
    contracts = float(p.get('contracts') or 0.0)
    size = -contracts if p.get('side') == 'short' else contracts
    return PositionUpdate(
        symbol=p['symbol'], size=size, entry_price=float(p.get('entryPrice') or 0.0),
        unrealized_pnl=_float(p.get('unrealizedPnl')), mark_price=_float(p.get('markPrice')),
        liquidation_price=_float(p.get('liquidationPrice')), leverage=_float(p.get('leverage')),
        margin_mode=p.get('marginMode'), timestamp=p.get('timestamp'), source='rest')


class EventQueue:
    """Events from the stream threads to Cerebro's thread: bounded, never lossy.

    A queue that only grows would hide a strategy thread that cannot keep up
    (and eat memory); dropping would lose fills. So ``put`` blocks the stream
    thread while the queue is full: it first wakes Cerebro's loop (which
    drains the queue in ``broker.next()``), logs once per episode, and waits
    in short slices. The socket is simply read later. Only when the run is
    stopping (``stopping()`` true, nothing will drain any more) is an event
    given up, with an error log; the final reconcile asks the exchange.
    """

    SLICE = 0.25    # seconds between checks of stopping() while full

    def __init__(self, maxsize, wake=None, stopping=None):
        import queue
        self._queue = queue.Queue(maxsize=maxsize)
        self._full = queue.Full
        self.empty_error = queue.Empty
        self._wake = wake or (lambda: None)
        self._stopping = stopping or (lambda: False)
        self.maxsize = maxsize
        self.waits = 0          # times a stream thread had to wait (tests, metrics)

    def _put_now(self, event):
        try:
            self._queue.put_nowait(event)
            return True
        except self._full:
            return False

    def put(self, event):
        if self._put_now(event):
            return
        self.waits += 1
        log.warning('broker event queue full (%d events): the stream waits until the '
                    'strategy thread catches up', self.maxsize)
        while True:
            self._wake()
            try:
                self._queue.put(event, timeout=self.SLICE)
                return
            except self._full:
                if self._stopping():
                    log.error('run stopping with the event queue full: %r not applied (the '
                              'final reconcile asks the exchange)', event)
                    return

    def get_nowait(self):
        return self._queue.get_nowait()

    def get(self, timeout):
        """The next event, waiting at most ``timeout`` seconds (else
        ``empty_error``): a closed bar waiting for its fills (barfills.py)."""
        return self._queue.get(timeout=timeout)

    def qsize(self):
        return self._queue.qsize()
