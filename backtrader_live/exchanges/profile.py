"""An exchange's profile: what it is and what it promises, as data.

A profile says everything about an exchange that is a fact rather than code:
its names, credential fields, products (market kinds) with their ccxt
options, order types and URLs, timeframes, the OHLCV page size, its error
codes and where they sit in an error body, how its streams ping, and what
"futures" means there. The generic store reads it (:meth:`apply` sets the
store class's attributes); nothing generic asks which exchange it is.

See docs/adding-an-exchange.md for a walk through one.
"""
from ..errors import ConfigError
from ..markets import ALIASES, INVERSE, LINEAR, SPOT
from ..ratelimit import SECONDS
from ..timeframes import TIMEFRAME_SPECS

KINDS = (SPOT, LINEAR, INVERSE)
CREDENTIAL_FIELDS = ('apikey', 'secret', 'password')
# What the live broker can send (broker._rule_supported): the most a product may list.
ORDER_TYPES = ('market', 'limit', 'stop', 'stop_limit')


class Product:
    """One market kind of an exchange (Binance USDⓈ-M, Bybit inverse...).

    - ``ccxt_options``: ccxt's options for it (defaultType, fetchMarkets...);
    - ``order_types``: which of ORDER_TYPES it takes;
    - ``rest``: ``{'mainnet': url, 'testnet': url}`` (documentation; ccxt's
      own table and ``set_sandbox_mode`` are what is called);
    - ``ws``: the stream URL table the exchange's store reads;
    - ``extra``: anything else per product the exchange's store reads
      (Bybit's category, how a conditional order is looked up...).
    """

    def __init__(self, kind, ccxt_options, order_types=ORDER_TYPES, rest=None, ws=None,
                 reduce_only_skips_min_notional=False, **extra):
        if kind not in KINDS:
            raise ConfigError('unknown product kind %r; valid: %s' % (kind, ', '.join(KINDS)))
        bad = [t for t in order_types if t not in ORDER_TYPES]
        if bad:
            raise ConfigError('unknown order types %s for %s; valid: %s'
                              % (bad, kind, ', '.join(ORDER_TYPES)))
        self.kind = kind
        self.ccxt_options = dict(ccxt_options)
        self.order_types = tuple(order_types)
        self.rest = dict(rest or {})
        self.ws = dict(ws or {})
        self.reduce_only_skips_min_notional = reduce_only_skips_min_notional
        self.extra = extra

    def __getitem__(self, key):
        return self.extra[key]

    def __repr__(self):
        return 'Product(%s, order_types=%s)' % (self.kind, self.order_types)


class ExchangeProfile:
    """Everything about one exchange that is data (see the module docstring).

    ``stream``: ``{'ping': None | dict | str, 'ping_interval': s, 'ping_id':
    field to stamp with a counter, 'texts': plain-text frames that are only
    chatter}``. A string ping is sent as text (an exchange that answers a
    text ``ping`` with ``pong``); a dict is sent as JSON. ``'forming'``: a
    text that, found in a market-stream message, means the message is a
    forming candle only (never delivered: feeds take closed bars); such a
    message is counted and not decoded. Only for an exchange whose candle
    message carries one candle (Binance); None decodes every message.
    ``error_code_fields``: the JSON field(s) of the exchange's code in an
    error body (``'code'`` for Binance, ``'retCode'`` for Bybit).
    ``market_aliases``: what the user's market-type names mean here, over
    markets.ALIASES (``'futures'`` is a linear perpetual unless said).
    """

    def __init__(self, name, ccxt_id, products, *, env_prefix=None, timeframes=None,
                 ohlcv_page_limit=100, credentials=('apikey', 'secret'), error_codes=None,
                 error_code_fields=('code',), unchanged_codes=(), login_clock_errors=(),
                 retry_after_headers=None, testnet=True, market_aliases=None,
                 stream=None, has_off=(), client_id_param='clientOrderId', docs=None):
        self.name = name
        self.ccxt_id = ccxt_id
        self.env_prefix = env_prefix or name.upper()
        self.products = {p.kind: p for p in products}
        self.timeframes = tuple(timeframes) if timeframes is not None else None
        self.ohlcv_page_limit = ohlcv_page_limit
        self.credentials = tuple(credentials)
        self.error_codes = dict(error_codes or {})
        self.error_code_fields = tuple(error_code_fields)
        self.unchanged_codes = tuple(unchanged_codes)
        self.login_clock_errors = tuple(login_clock_errors)
        self.retry_after_headers = dict(retry_after_headers or {'Retry-After': SECONDS})
        self.testnet = testnet
        self.market_aliases = dict(ALIASES, **(market_aliases or {}))
        self.stream = dict({'ping': None, 'ping_interval': 20.0, 'ping_id': None,
                            'texts': (), 'forming': None}, **(stream or {}))
        self.has_off = tuple(has_off)
        self.client_id_param = client_id_param
        self.docs = docs
        self._check()

    def _check(self):
        """A profile with a mistake fails when it is defined, naming it."""
        def bad(what, values, valid):
            wrong = [v for v in values if v not in valid]
            if wrong:
                raise ConfigError('profile %s: unknown %s %s; valid: %s'
                                  % (self.name, what, wrong, ', '.join(valid)))
        if not self.products:
            raise ConfigError('profile %s: no products (spot, linear, inverse)' % self.name)
        bad('credential fields', self.credentials, CREDENTIAL_FIELDS)
        bad('timeframes', self.timeframes or (), tuple(TIMEFRAME_SPECS))
        bad('market kinds in market_aliases', set(self.market_aliases.values()), KINDS)
        if not {'apikey', 'secret'} <= set(self.credentials):
            raise ConfigError('profile %s: credentials need apikey and secret' % self.name)
        if not (isinstance(self.ohlcv_page_limit, int) and self.ohlcv_page_limit > 0):
            raise ConfigError('profile %s: ohlcv_page_limit must be an int > 0, got %r'
                              % (self.name, self.ohlcv_page_limit))

    @property
    def futures(self):
        """The kind ``market_type='futures'`` means on this exchange."""
        return self.market_aliases['futures']

    def product(self, kind):
        return self.products[kind]

    def order_types(self, kind):
        return self.products[kind].order_types

    def apply(self, cls):
        """Set the store class's data attributes from this profile."""
        cls.exchange_name = self.name
        cls.env_prefix = self.env_prefix
        cls.ccxt_id = self.ccxt_id
        cls.MARKET_TYPES = {k: p.ccxt_options for k, p in self.products.items()}
        cls.MARKET_ALIASES = self.market_aliases
        cls.TIMEFRAMES = self.timeframes
        cls.OHLCV_PAGE_LIMIT = self.ohlcv_page_limit
        cls.CLIENT_ID_PARAM = self.client_id_param
        cls.CREDENTIALS = self.credentials
        cls.ERROR_CODES = self.error_codes
        cls.ERROR_CODE_FIELDS = self.error_code_fields
        cls.UNCHANGED_CODES = self.unchanged_codes
        cls.LOGIN_CLOCK_ERRORS = self.login_clock_errors
        cls.RETRY_AFTER_HEADERS = self.retry_after_headers
        cls.REDUCE_ONLY_SKIPS_MIN_NOTIONAL = tuple(
            k for k, p in self.products.items() if p.reduce_only_skips_min_notional)
        cls.HAS_OFF = self.has_off
        cls.STREAM_TEXTS = tuple(self.stream['texts'])
        cls.STREAM_FORMING = self.stream['forming']
        cls.TESTNET = self.testnet

    def __repr__(self):
        return 'ExchangeProfile(%s: %s)' % (self.name, ', '.join(self.products))
