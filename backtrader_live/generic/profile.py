"""What the generic tier knows about an exchange: read from ccxt, as data.

Everything here comes from ccxt's own description of an exchange (``has``,
``timeframes``, ``requiredCredentials``, its ``create_order`` code) plus a
few small tables for what ccxt does not say (OHLCV page sizes, options that
spare hidden calls). No ``if exchange == ...`` anywhere: a new exchange is a
new row, or nothing at all.
"""
import functools
import inspect

import ccxt

from ..markets import INVERSE, LINEAR, SPOT
from ..timeframes import TIMEFRAME_SPECS

# ccxt capability -> (what it is for, what we do instead when it is missing).
# "instead" may use {interval}: the REST polling interval in seconds.
STREAMS = (
    ('watchOHLCV', 'bars', 'closed bars are polled over REST (fetch_ohlcv) every '
                           '{interval}s: a bar arrives up to that much later'),
    ('watchOrders', 'orders', 'order updates are polled over REST (the broker\'s '
                              'rest_poll_interval)'),
    ('watchMyTrades', 'fills', 'fills are fetched over REST when an order reports them '
                               '(fetch_order_trades / fetch_my_trades)'),
    ('watchBalance', 'balance', 'balances are read over REST after each reconcile'),
    ('watchPositions', 'positions', 'positions are read over REST after each reconcile'),
)

# Most candles one fetch_ohlcv returns (the feed pages by it and takes a short
# page for the end). ccxt does not publish it; the exchanges' docs do. Unknown
# exchanges get a small page: more calls, never a silently short history.
OHLCV_PAGE_LIMITS = {'binance': 1000, 'bybit': 1000, 'okx': 100, 'kucoin': 1500,
                     'coinbase': 300, 'kraken': 720, 'bitget': 200, 'gate': 1000}
DEFAULT_PAGE_LIMIT = 100

# ccxt options per exchange that spare calls ccxt would make on its own (hidden
# private probes in load_markets). Data, like the native stores' option tables.
EXTRA_OPTIONS = {
    'binance': {'fetchCurrencies': False, 'fetchMargins': False,
                'fetchOpenOrders': {'warnWithoutSymbol': False},
                'disableFuturesSandboxWarning': True},
    # ccxt.pro's position snapshot asks /v5/position/list for inverse without a
    # symbol or settleCoin, which Bybit's docs require: it fails and the watch
    # waits forever. The broker reads positions over REST at start anyway.
    'bybit': {'enableUnifiedMargin': False, 'enableUnifiedAccount': True,
              'unifiedMarginStatus': 6, 'watchPositions': {'fetchPositionsSnapshot': False}},
}
# ccxt.has entries to switch off (same purpose as EXTRA_OPTIONS).
HAS_OFF = {'bybit': ('fetchCurrencies',)}

# Exchanges whose ccxt balance ``total`` on derivatives is the margin balance
# (wallet + unrealised PnL: Binance's marginBalance), not the wallet the broker
# counts PnL on. Elsewhere ccxt's total is taken as the wallet.
TOTAL_INCLUDES_UPNL = frozenset(('binance',))

# Exchanges whose position list needs a settle coin when no symbol is given
# (Bybit v5 /v5/position/list: "symbol or settleCoin is required"): the
# parameter's name. The store then asks once per settle coin of the market kind.
POSITIONS_PER_SETTLE = {'bybit': 'settleCoin'}

# Per market kind: ccxt's default market type options, and which fetch_markets
# types to load (only where the exchange understands the option).
KIND_OPTIONS = {SPOT: {'defaultType': 'spot'},
                LINEAR: {'defaultType': 'swap', 'defaultSubType': 'linear'},
                INVERSE: {'defaultType': 'swap', 'defaultSubType': 'inverse'}}
FETCH_TYPES = {'binance': {SPOT: ['spot'], LINEAR: ['linear'], INVERSE: ['inverse']},
               'bybit': {SPOT: ['spot'], LINEAR: ['linear'], INVERSE: ['inverse']}}

# How an exchange id may be asked for: 'okx', or 'ccxt:binance' to force the
# generic tier where a native one exists.
PREFIX = 'ccxt:'


def exchange_id(name):
    """'ccxt:Binance' -> 'binance'; a ConfigError-free plain lookup."""
    name = name.strip().lower()
    return name[len(PREFIX):] if name.startswith(PREFIX) else name


def is_ccxt_exchange(name):
    return exchange_id(name) in ccxt.exchanges


@functools.lru_cache(maxsize=None)
def describe(ccxt_id):
    """ccxt's static description of an exchange (one throwaway instance)."""
    ex = getattr(ccxt, ccxt_id)()
    has = dict(ex.has)
    pro = _pro_class(ccxt_id)
    if pro is not None:
        has.update(pro().has)       # the watch* entries live on ccxt.pro's class
    return {'has': has, 'timeframes': dict(ex.timeframes or {}),
            'credentials': {k for k, v in ex.requiredCredentials.items() if v},
            'sandbox': bool(ex.urls.get('test')), 'pro': pro is not None}


def _pro_class(ccxt_id):
    import ccxt.pro
    return getattr(ccxt.pro, ccxt_id) if ccxt_id in ccxt.pro.exchanges else None


def market_types(ccxt_id):
    """``Store.MARKET_TYPES`` for an exchange: the kinds it can serve."""
    has = describe(ccxt_id)['has']
    kinds = [SPOT] if has.get('spot') else []
    if has.get('swap'):
        kinds += [LINEAR, INVERSE]
    table = {}
    for kind in kinds:
        opts = dict(EXTRA_OPTIONS.get(ccxt_id, {}), **KIND_OPTIONS[kind])
        types = FETCH_TYPES.get(ccxt_id, {}).get(kind)
        if types:
            opts['fetchMarkets'] = {'types': types}
        table[kind] = opts
    return table


# Order types -> the ccxt capabilities that offer it: offered when one of them
# is True, or when ccxt says nothing of any (None: the exchange's answer
# decides); refused when ccxt says False and nothing offers it.
ORDER_TYPE_CAPS = (('market', ('createMarketOrder',)),
                   ('limit', ('createLimitOrder',)),
                   ('stop', ('createStopMarketOrder', 'createTriggerOrder')),
                   ('stop_limit', ('createStopLimitOrder', 'createTriggerOrder')))


def order_types(ccxt_id):
    """The order types ccxt says the exchange takes (Gemini: no market
    orders; Bitstamp: no stops)."""
    has = describe(ccxt_id)['has']
    return tuple(kind for kind, caps in ORDER_TYPE_CAPS
                 if any(has.get(c) is True for c in caps)
                 or all(has.get(c) is None for c in caps))


# Where a market kind's createOrder features sit in ccxt's ``features``.
FEATURE_PATHS = {SPOT: ('spot',), LINEAR: ('swap', 'linear'), INVERSE: ('swap', 'inverse')}


@functools.lru_cache(maxsize=None)
def needs_trigger_direction(ccxt_id, kind):
    """True if ccxt's createOrder for this market kind takes a trigger
    direction (its ``features``: Bybit and KuCoin contracts require one,
    'ascending' or 'descending'; a spot market there refuses it)."""
    node = getattr(ccxt, ccxt_id)().features or {}
    for key in FEATURE_PATHS[kind]:
        node = node.get(key) or {}
    return (node.get('createOrder') or {}).get('triggerDirection') is True


def timeframes(ccxt_id):
    """Our timeframe names the exchange serves (None: ccxt does not say)."""
    served = describe(ccxt_id)['timeframes']
    return tuple(tf for tf in TIMEFRAME_SPECS if tf in served) if served else None


def needs_password(ccxt_id):
    """OKX, KuCoin... sign with a passphrase (ccxt calls it ``password``)."""
    return 'password' in describe(ccxt_id)['credentials']


@functools.lru_cache(maxsize=None)
def supports_client_ids(ccxt_id):
    """True if ccxt's create_order code takes the unified ``clientOrderId``.

    ccxt has no ``has`` flag for it; its order-creating methods read the
    parameter by name where the exchange supports one, so we look there.
    """
    cls = getattr(ccxt, ccxt_id)
    source = ''
    for name in dir(cls):
        if name.startswith('create') and 'order' in name.lower():
            try:
                source += inspect.getsource(getattr(cls, name))
            except (OSError, TypeError):
                continue
    return "'clientOrderId'" in source


def missing_streams(ccxt_id, kind, interval):
    """[(capability, purpose, consequence)] of the streams ccxt.pro lacks."""
    info = describe(ccxt_id)
    out = []
    for cap, purpose, instead in STREAMS:
        if cap == 'watchPositions' and kind == SPOT:
            continue
        if not (info['pro'] and info['has'].get(cap)):
            out.append((cap, purpose, instead.format(interval=interval)))
    return out


def has_stream(ccxt_id, capability):
    info = describe(ccxt_id)
    return bool(info['pro'] and info['has'].get(capability))
