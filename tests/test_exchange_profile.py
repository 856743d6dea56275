"""Exchange profiles (exchanges/profile.py): the data the generic store reads.

A text-ping exchange streams; a passphrase is a credential masked like the
secret; the error code is found where the profile says; 'futures' means what
the profile says; a mistaken profile fails when defined, naming the mistake.
"""
import json
import logging
import pickle

import pytest

import backtrader_live as btl
from backtrader_live.errors import ConfigError, RetryableError, classify, exchange_code
from backtrader_live.exchanges.binance.profile import PROFILE as BINANCE
from backtrader_live.exchanges.bybit.profile import PROFILE as BYBIT
from backtrader_live.exchanges.profile import ExchangeProfile, Product
from backtrader_live.markets import INVERSE, LINEAR, SPOT
from backtrader_live.store import Store
from backtrader_live.stores import BinanceStore, BybitStore
from helpers import KEY, SECRET, eventually
from test_stream import TinyServer, _stream

PASS = 'my-passphrase-1234'


def _profile(**kwargs):
    products = kwargs.pop('products', (Product(SPOT, {'defaultType': 'spot'}),
                                       Product(INVERSE, {'defaultType': 'swap'})))
    kwargs.setdefault('timeframes', ('1m', '1h'))
    return ExchangeProfile('textping', 'okx', products, **kwargs)


def _store_class(profile):
    return type('TextPingStore', (Store,), {'profile': profile, '__module__': __name__})


def test_the_builtin_profiles_are_what_the_stores_use():
    for store_cls, profile in ((BinanceStore, BINANCE), (BybitStore, BYBIT)):
        assert store_cls.profile is profile
        assert store_cls.exchange_name == profile.name
        assert store_cls.OHLCV_PAGE_LIMIT == profile.ohlcv_page_limit == 1000
        assert set(store_cls.MARKET_TYPES) == {SPOT, LINEAR, INVERSE}
        assert store_cls.ERROR_CODES is profile.error_codes
        assert profile.futures == LINEAR              # 'futures': linear perpetuals here
        assert profile.order_types(SPOT) == ('market', 'limit', 'stop', 'stop_limit')
        assert set(profile.product(LINEAR).rest) == {'mainnet', 'testnet'}
    assert BinanceStore.REDUCE_ONLY_SKIPS_MIN_NOTIONAL == (LINEAR, INVERSE)
    assert BybitStore.HAS_OFF == ('fetchCurrencies',)
    assert BybitStore.TIMEFRAMES is not None and '8h' not in BybitStore.TIMEFRAMES


def test_a_text_ping_exchange_streams():
    """Before: every ping was JSON-encoded ('"ping"') and a 'pong' reply was
    logged as a non-JSON message. Now the profile says how the stream pings."""
    profile = _profile(stream={'ping': 'ping', 'ping_interval': 0.05, 'texts': ('pong',)})
    store = _store_class(profile)(market_type='spot', testnet=False)
    interval, payload = store.ws_app_ping()
    assert (interval, payload()) == (0.05, 'ping') and store.STREAM_TEXTS == ('pong',)
    with TinyServer() as server:
        stream, got, _ = _stream(server, on_open=None, ping=store.ws_app_ping(),
                                 texts=store.STREAM_TEXTS)
        stream.start()
        assert server.received.get(timeout=5) == 'ping'       # as text, not '"ping"'
        eventually(lambda: stream.is_live)
        server.send('pong')
        server.send('{"after": "pong"}')
        eventually(lambda: got)
        assert got == [{'after': 'pong'}]                     # the pong is chatter only
        stream.stop()


def test_a_json_ping_is_stamped_with_a_request_id():
    store = BybitStore(market_type='spot', testnet=False)
    interval, payload = store.ws_app_ping()
    first, second = payload(), payload()
    assert interval == 20.0 and first['op'] == 'ping' and first['req_id'] != second['req_id']
    assert BinanceStore(market_type='spot', testnet=False).ws_app_ping() is None


def test_a_passphrase_is_required_when_the_profile_says_and_masked_everywhere(caplog):
    cls = _store_class(_profile(credentials=('apikey', 'secret', 'password')))
    with pytest.raises(ConfigError, match='needs a passphrase'):
        cls(apikey=KEY, secret=SECRET, market_type='spot', testnet=False)
    caplog.set_level(logging.DEBUG)
    store = cls.get_instance(KEY, SECRET, testnet=False, market_type='spot', password=PASS)
    assert store.exchange.password == PASS                 # ccxt signs with it
    shown = (repr(store), str(store.p.password), repr(store._creds), str(store.p._getkwargs()))
    assert all(PASS not in text for text in shown)
    other = cls.get_instance(KEY, SECRET, testnet=False, market_type='spot', password=PASS + 'x')
    assert other is not store            # the passphrase is part of the identity...
    assert cls.get_instance(KEY, SECRET, testnet=False, market_type='spot',
                            password=PASS) is store
    assert PASS not in repr(list(Store._instances))       # ...as a digest, never as text
    with pytest.raises(TypeError):
        pickle.dumps(store._creds)
    logging.getLogger('ccxt.base.exchange').debug('signed with %s', PASS)
    assert PASS not in caplog.text                         # redacted in third-party logs
    cls.forget_instances()


def test_the_passphrase_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv('TEXTPING_API_PASSPHRASE', PASS)
    cls = _store_class(_profile(credentials=('apikey', 'secret', 'password')))
    store = cls(apikey=KEY, secret=SECRET, market_type='spot', testnet=False)
    assert store.exchange.password == PASS and PASS not in repr(store)


def test_the_error_code_is_read_where_the_profile_says():
    body = 'binance {"code":-1001,"msg":"x"}'
    assert exchange_code(body, ('code',)) == '-1001'
    assert exchange_code(body, ('retCode',)) is None          # not Bybit's field
    assert exchange_code('bybit {"retCode":10016}', BYBIT.error_code_fields) == '10016'
    assert exchange_code('okx {"sCode":"51008"}', ('sCode',)) == '51008'   # a third format
    err = classify(Exception('okx {"sCode":"50001"}'), codes={'50001': RetryableError},
                   code_fields=('sCode',))
    assert isinstance(err, RetryableError)


def test_futures_means_what_the_profile_says():
    cls = _store_class(_profile(market_aliases={'futures': INVERSE}))
    assert cls(market_type='futures', testnet=False).kind == INVERSE
    assert cls.profile.futures == INVERSE
    with pytest.raises(ConfigError, match="unknown market_type 'linear'.*valid: .*coinm"):
        cls(market_type='linear', testnet=False)       # this exchange has no linear product


def test_an_exchange_without_a_testnet_says_so():
    cls = _store_class(_profile(testnet=False))
    with pytest.raises(ConfigError, match='has no testnet'):
        cls(market_type='spot', testnet=True)
    assert cls(market_type='spot', testnet=True, endpoint='http://127.0.0.1:9').kind == SPOT


@pytest.mark.parametrize('kwargs, message', [
    ({'timeframes': ('1m', '7m')}, "unknown timeframes \\['7m'\\]"),
    ({'credentials': ('apikey', 'secret', 'pin')}, "unknown credential fields \\['pin'\\]"),
    ({'credentials': ('apikey',)}, 'credentials need apikey and secret'),
    ({'ohlcv_page_limit': 0}, 'ohlcv_page_limit must be an int > 0'),
    ({'market_aliases': {'futures': 'perp'}}, 'unknown market kinds'),
    ({'products': ()}, 'no products'),
])
def test_a_mistaken_profile_fails_when_defined(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        _profile(**kwargs)


def test_a_mistaken_product_fails_when_defined():
    with pytest.raises(ConfigError, match="unknown product kind 'options'"):
        Product('options', {})
    with pytest.raises(ConfigError, match="unknown order types \\['iceberg'\\]"):
        Product(SPOT, {}, order_types=('limit', 'iceberg'))


def test_the_profile_is_public_api():
    assert btl.exchanges.ExchangeProfile is ExchangeProfile
    assert json.dumps(sorted(BINANCE.products)) == '["inverse", "linear", "spot"]'
