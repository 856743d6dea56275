"""Bybit v5 as data: products, codes, URLs, streams (facts from Bybit's v5 docs).

Spot, linear (USDT perpetuals: ``'futures'``) and inverse (coin-margined)
on a unified account. Bybit wants an application ping (``{"op":"ping"}``)
every 20 s on its streams.
"""
from ...errors import RetryableError, UnknownOutcome
from ...markets import INVERSE, LINEAR, SPOT
from ...ratelimit import EPOCH_MS, SECONDS
from ..profile import ExchangeProfile, Product

# Bybit's own interval codes; it has no 8h, 3d (or 1s) candles.
INTERVALS = {'1m': '1', '3m': '3', '5m': '5', '15m': '15', '30m': '30', '1h': '60',
             '2h': '120', '4h': '240', '6h': '360', '12h': '720', '1d': 'D', '1w': 'W',
             '1M': 'M'}

# Pre-seeding the account type skips ccxt's unified-account probes
# (user/query-api, account/info) on the first private call.
_UNIFIED = {'enableUnifiedMargin': False, 'enableUnifiedAccount': True,
            'unifiedMarginStatus': 6}

_REST = {'mainnet': 'https://api.bybit.com', 'testnet': 'https://api-testnet.bybit.com'}
_WS = {'mainnet': 'wss://stream.bybit.com', 'testnet': 'wss://stream-testnet.bybit.com'}


def _options(default_type, sub_type, category):
    opts = dict(_UNIFIED, defaultType=default_type, fetchMarkets={'types': [category]})
    if sub_type:
        opts['defaultSubType'] = sub_type
    return opts


# How each category takes a conditional order (/v5/order/create): derivatives
# need triggerDirection (1 rises to, 2 falls to the triggerPrice); spot takes
# none (ccxt refuses it) but orderFilter=StopOrder, which ccxt sends for a
# spot order with a triggerPrice. Cancelling or looking up a spot conditional
# order needs the same filter (ccxt: trigger=True).
# kline_volume: the kline field that is a bar's volume in the base coin, as
# ccxt's fetch_ohlcv gives it (history and gap fills): 'volume' is coins on
# spot and linear but USD contracts on inverse, where 'turnover' is the coin.
# Orders /v5/order/amend changes in place (same ids): a new qty for an open or
# partly filled limit, or an untriggered conditional order. Spot's stops are
# not sent to it by the broker (a spot bracket's stop is local).
AMEND = ('limit', 'stop')
AMEND_SPOT = ('limit',)
PRODUCTS = (
    Product(SPOT, _options('spot', None, 'spot'), rest=_REST, ws=_WS, category='spot',
            trigger_direction=False, conditional_lookup={'trigger': True},
            kline_volume='volume', amend=AMEND_SPOT),
    Product(LINEAR, _options('swap', 'linear', 'linear'), rest=_REST, ws=_WS,
            category='linear', trigger_direction=True, conditional_lookup={},
            kline_volume='volume', amend=AMEND),
    Product(INVERSE, _options('swap', 'inverse', 'inverse'), rest=_REST, ws=_WS,
            category='inverse', trigger_direction=True, conditional_lookup={},
            kline_volume='turnover', amend=AMEND),
)

PROFILE = ExchangeProfile(
    'bybit', 'bybit', PRODUCTS,
    env_prefix='BYBIT',
    timeframes=tuple(INTERVALS),
    ohlcv_page_limit=1000,              # GET /v5/market/kline limit: max 1000
    credentials=('apikey', 'secret'),
    # ccxt reads these as plain ExchangeError; for us they say "try again".
    error_codes={'10016': RetryableError,     # system error, try again later
                 '10000': UnknownOutcome},    # server timeout: outcome unknown
    error_code_fields=('retCode', 'ret_code'),  # {"retCode":10016,"retMsg":"..."}
    # leverage / margin mode already as asked: not an error for us
    unchanged_codes=('110043', '110026', '110025'),
    login_clock_errors=('expired',),          # auth 'expires' behind the server
    # Bybit says when the rate-limit window resets (epoch ms), not how long.
    retry_after_headers={'Retry-After': SECONDS, 'X-Bapi-Limit-Reset-Timestamp': EPOCH_MS},
    testnet=True,
    market_aliases={'futures': LINEAR, 'delivery': INVERSE},
    stream={'ping': {'op': 'ping'}, 'ping_interval': 20.0, 'ping_id': 'req_id'},
    # Skip the private coin-info call load_markets makes when keys are set.
    has_off=('fetchCurrencies',),
    client_id_param='clientOrderId',    # ccxt sends it as orderLinkId
    docs='https://bybit-exchange.github.io/docs/v5/intro')
