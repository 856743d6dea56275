"""Demoex as data: one product (spot) on Binance's protocol, a text-free stream."""
from backtrader_live.errors import AuthenticationFailed, ClockSkewError, RetryableError
from backtrader_live.exchanges import ExchangeProfile, Product
from backtrader_live.exchanges.binance.profile import SPOT_PRODUCT
from backtrader_live.markets import SPOT

PROFILE = ExchangeProfile(
    'demoex', 'binance',        # ccxt speaks Binance's REST for it
    (Product(SPOT, SPOT_PRODUCT.ccxt_options, order_types=('market', 'limit'),
             rest={'mainnet': 'https://api.demoex.invalid/api/v3'},
             ws={'hosts': ('wss://stream.demoex.invalid', None),
                 'api_hosts': ('wss://ws-api.demoex.invalid', None),
                 'market': '/stream', 'user': '/ws-api/v3', 'prefix': ''},
             **SPOT_PRODUCT.extra),),
    env_prefix='DEMOEX',
    timeframes=('1m', '5m', '15m', '1h', '4h', '1d'),
    ohlcv_page_limit=500,
    error_codes={'-1001': RetryableError, '-1021': ClockSkewError,
                 '-1022': AuthenticationFailed, '-2015': AuthenticationFailed},
    error_code_fields=('code',),
    login_clock_errors=('-1021',),
    testnet=False,              # no testnet: run it against a simulator (endpoint)
    stream={'ping': None})
