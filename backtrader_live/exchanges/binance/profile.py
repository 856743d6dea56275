"""Binance as data: products, codes, URLs, streams (facts from Binance's API docs).

Spot, USDⓈ-M futures (linear perpetuals: ``'futures'``) and COIN-M futures
(inverse: ``'delivery'``). Spot user data comes over the WS-API
(``userDataStream.subscribe.signature``); futures user data over a listenKey.
"""
from ...errors import (AuthenticationFailed, ClockSkewError, OrderRejected,
                       RateLimitedError, RetryableError, UnknownOutcome)
from ...markets import INVERSE, LINEAR, SPOT
from ..profile import ExchangeProfile, Product

_COMMON_OPTIONS = {
    # Skip the hidden sapi calls load_markets makes with keys set: they cost
    # rate-limit weight and do not exist on the testnet.
    'fetchCurrencies': False, 'fetchMargins': False,
    # get_open_orders() without a symbol is a deliberate, rare reconcile call.
    'fetchOpenOrders': {'warnWithoutSymbol': False},
    # Private futures calls on the testnet are fine for us (ccxt warns).
    'disableFuturesSandboxWarning': True,
}


def _options(default_type, sub_type, market_types):
    opts = dict(_COMMON_OPTIONS, defaultType=default_type,
                fetchMarkets={'types': market_types})
    if sub_type:
        opts['defaultSubType'] = sub_type
    return opts


# Stream hosts are (mainnet, testnet). With an ``endpoint`` (the simulator)
# the origin is the endpoint's plus the kind's prefix: one local server
# serves every kind, COIN-M's streams under /dapi. USDⓈ-M streams are split
# into /market (klines) and /private (user data).
SPOT_PRODUCT = Product(
    SPOT, _options('spot', None, ['spot']),
    rest={'mainnet': 'https://api.binance.com/api/v3',
          'testnet': 'https://testnet.binance.vision/api/v3'},
    ws={'hosts': ('wss://stream.binance.com:9443', 'wss://stream.testnet.binance.vision'),
        'api_hosts': ('wss://ws-api.binance.com:443', 'wss://ws-api.testnet.binance.vision'),
        'market': '/stream', 'user': '/ws-api/v3', 'prefix': ''},
    user_login='ws-api', conditional_lookup={},
    # No amend in place: POST /api/v3/order/cancelReplace is a cancel and a new
    # order (new ids); the broker replaces by its own cancel, then create.
    amend=())
LINEAR_PRODUCT = Product(
    LINEAR, _options('swap', 'linear', ['linear']),
    rest={'mainnet': 'https://fapi.binance.com/fapi/v1',
          'testnet': 'https://testnet.binancefuture.com/fapi/v1'},
    ws={'hosts': ('wss://fstream.binance.com', 'wss://fstream.binancefuture.com'),
        'market': '/market/stream', 'user': '/private/ws?listenKey={key}', 'prefix': ''},
    # -4164: "notional must be no smaller than ... unless you choose reduce only"
    reduce_only_skips_min_notional=True,
    user_login='listenKey',
    # ccxt implicit methods for the listenKey: (create, keep alive).
    listen_key=('fapiPrivatePostListenKey', 'fapiPrivatePutListenKey'),
    # Where a symbol's leverage is read with or without a position: ccxt's
    # fetch_positions drops flat entries, positionRisk v2 lists every symbol
    # (v3 only those with a position or open orders). (method, param, field)
    leverage_source=('fapiPrivateV2GetPositionRisk', 'symbol', 'symbol'),
    # Stop/take-profit orders live in the algo service (clientAlgoId), listed apart.
    conditional_lookup={'trigger': True},
    # PUT /fapi/v1/order: a new quantity and price for a LIMIT order only (the
    # stop orders in the algo service have no modify).
    amend=('limit',))
INVERSE_PRODUCT = Product(
    INVERSE, _options('swap', 'inverse', ['inverse']),
    rest={'mainnet': 'https://dapi.binance.com/dapi/v1',
          'testnet': 'https://testnet.binancefuture.com/dapi/v1'},
    ws={'hosts': ('wss://dstream.binance.com', 'wss://dstream.binancefuture.com'),
        'market': '/stream', 'user': '/ws/{key}', 'prefix': '/dapi'},
    reduce_only_skips_min_notional=True,
    user_login='listenKey',
    listen_key=('dapiPrivatePostListenKey', 'dapiPrivatePutListenKey'),
    leverage_source=('dapiPrivateGetPositionRisk', 'pair', 'pair'),     # COIN-M: by pair
    conditional_lookup={'trigger': True},
    amend=('limit',))       # PUT /dapi/v1/order: LIMIT orders only


PROFILE = ExchangeProfile(
    'binance', 'binance', (SPOT_PRODUCT, LINEAR_PRODUCT, INVERSE_PRODUCT),
    env_prefix='BINANCE',
    timeframes=('1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h',
                '12h', '1d', '3d', '1w', '1M'),
    ohlcv_page_limit=1000,              # GET /api/v3/klines limit: max 1000
    credentials=('apikey', 'secret'),
    # Codes whose meaning ccxt's class gets wrong on a non-Binance host (only its
    # generic table applies) or after a first success (-2015 -> DDoSProtection).
    error_codes={
        '-1001': RetryableError,        # internal error: try again
        '-1003': RateLimitedError,      # too many requests
        '-1006': UnknownOutcome,        # unexpected response: execution status unknown
        '-1007': UnknownOutcome,        # backend timeout: execution status unknown
        '-1008': RetryableError,        # server overloaded
        '-1021': ClockSkewError,        # timestamp outside recvWindow
        '-1022': AuthenticationFailed,  # bad signature
        '-2014': AuthenticationFailed,  # API-key format invalid
        '-2015': AuthenticationFailed,  # invalid key, IP, or permissions for action
        '-2019': OrderRejected,         # margin is insufficient
        '-2021': OrderRejected,         # order would immediately trigger
        '-2022': OrderRejected,         # reduce-only order rejected
        '-4164': OrderRejected,         # notional below the minimum
    },
    error_code_fields=('code',),        # {"code":-2019,"msg":"..."}
    unchanged_codes=('-4046', '-4059'),     # margin type / position side already so
    login_clock_errors=('-1021',),          # WS-API subscription outside recvWindow
    testnet=True,
    # 'futures': USDⓈ-M perpetuals; 'delivery': COIN-M (markets.ALIASES).
    market_aliases={'futures': LINEAR, 'delivery': INVERSE},
    # The server pings every few minutes; websocket-client answers with a pong.
    # A kline event carries one candle and says in "x" whether it closed
    # (compact JSON): the forming ones are counted, not decoded.
    stream={'ping': None, 'forming': '"x":false'},
    client_id_param='clientOrderId',    # ccxt sends newClientOrderId / origClientOrderId
    docs='https://developers.binance.com/docs/')

# A listenKey lives 60 minutes after each keep-alive PUT: refresh every 30.
LISTEN_KEY_REFRESH = 30 * 60.0
