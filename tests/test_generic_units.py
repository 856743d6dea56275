"""The generic tier's parts that need no exchange: the closed-bar rule, the
profile read from ccxt, exchange lookup, passphrases, URLs, the start-up notes."""
import logging

import ccxt
import ccxt.pro
import pytest

import backtrader_live as btl
from backtrader_live.cerebro import find_store
from backtrader_live.errors import ConfigError
from backtrader_live.generic import GenericStore, generic_store, profile
from backtrader_live.generic.bars import ClosedBars
from backtrader_live.stores import BinanceStore

H = 3_600_000
PASS = 'my-passphrase-8472'


def row(t, close, volume=1.0):
    return [t, 100.0, 110.0, 90.0, close, volume]


# -- closed bars ----------------------------------------------------------------------
def test_a_forming_candle_is_never_a_bar():
    bars = ClosedBars(H)
    assert bars.update([row(0, 101)], now_ms=H // 2) == []
    assert bars.update([row(0, 102)], now_ms=H - 1) == []


def test_a_later_candle_closes_the_previous_one_with_its_last_values():
    bars = ClosedBars(H, settle_ms=300)
    bars.update([row(0, 101)], now_ms=10)
    assert bars.update([row(0, 105), row(H, 106)], now_ms=H + 5) == []
    out = bars.update([row(H, 106)], now_ms=H + 305)
    assert [(b.open_time, b.close, b.closed) for b in out] == [(0, 105, True)]
    assert bars.update([row(0, 105), row(H, 107)], now_ms=H + 400) == []   # never twice


def test_the_exchange_clock_closes_a_candle_no_later_one_follows():
    bars = ClosedBars(H, grace_ms=2000)
    assert bars.wait_ms(10) is None                    # nothing held: no hurry
    bars.update([row(0, 101)], now_ms=10)
    assert bars.wait_ms(10) == H + 2000 - 10
    assert bars.due(H + 1999) == []          # its last update may still come
    assert [b.open_time for b in bars.due(H + 2000)] == [0]


def test_a_final_update_arriving_after_the_next_candle_is_still_the_bar():
    """Reordered stream: candle N forming, N+1's first update, THEN N's final
    update. The bar handed out for N must carry N's final close (the defect:
    N went out with the stale forming close as soon as N+1 appeared)."""
    bars = ClosedBars(H)
    out = bars.update([row(0, 101)], now_ms=H - 100)               # N forming
    out += bars.update([row(0, 101), row(H, 201)], now_ms=H + 10)  # N+1 first (cache too)
    out += bars.update([row(0, 105), row(H, 201)], now_ms=H + 20)  # N final, late
    out += bars.due(H + 60_000)                 # any rule has closed N by now
    assert [(b.open_time, b.close) for b in out] == [(0, 105)]


def test_the_next_candle_closes_a_bar_once_seen_for_settle_ms():
    """A later candle closes N once it was first seen ``settle_ms`` ago on the
    exchange's clock (never in the look that first sees it): an update of N
    queued behind it has had its turn by then."""
    bars = ClosedBars(H, grace_ms=10_000, settle_ms=300)
    bars.update([row(0, 101)], now_ms=10)
    assert bars.update([row(0, 105), row(H, 106)], now_ms=H + 5) == []
    assert bars.due(H + 304) == []                     # seen, but not long enough
    assert bars.wait_ms(H + 304) == 1                  # the watch looks again then
    assert [(b.open_time, b.close) for b in bars.due(H + 305)] == [(0, 105)]
    # a stalled loop (the clock far on) still waits from the first sighting
    assert bars.update([row(H, 107), row(2 * H, 1)], now_ms=2 * H + 5000) == []
    assert [(b.open_time, b.close) for b in bars.due(2 * H + 5300)] == [(H, 107)]


def test_polled_snapshots_close_a_bar_as_soon_as_the_next_candle_is_in_one():
    """REST answers are snapshots (no reorder inside one): no settle time,
    which would hold every polled bar one poll longer."""
    from backtrader_live.generic.bars import PolledBars, StreamBars
    store = generic_store('binance').get_instance(testnet=False)
    polled = PolledBars(store, None, None, 'BTC/USDT', '1h', None, None)
    assert polled.bars.settle_ms == 0
    assert StreamBars(store, None, None, 'BTC/USDT', '1h', None, None).bars.settle_ms > 0
    out = polled.bars.update([row(0, 105), row(H, 106)], now_ms=H + 5)
    assert [(b.open_time, b.close) for b in out] == [(0, 105)]


def test_a_late_revision_of_a_delivered_bar_is_warned_and_widens_the_hold(caplog):
    """A reorder longer than the hold cannot be undone (the bar is out), but
    it is never silent: a warning, a count, and a longer hold from then on."""
    bars = ClosedBars(H, settle_ms=300)
    bars.update([row(0, 101), row(H, 201)], now_ms=H + 5)
    assert [b.close for b in bars.due(H + 305)] == [101]
    with caplog.at_level(logging.WARNING):
        assert bars.update([row(0, 104), row(H, 202)], now_ms=H + 900) == []
        bars.update([row(0, 104)], now_ms=H + 950)          # said once per candle
    assert bars.revisions == 1 and bars.settle_ms > 300
    assert len([r for r in caplog.records if 'after it was handed out' in r.getMessage()]) == 1
    bars.update([row(0, 101), row(H, 201)], now_ms=H + 1000)   # the delivered values again
    assert bars.revisions == 1


def test_repeated_and_reordered_candles_give_each_bar_once_in_order():
    bars = ClosedBars(H, settle_ms=300)
    out = bars.update([row(2 * H, 3), row(0, 1), row(H, 2), row(0, 1)], now_ms=2 * H + 1)
    assert [b.open_time for b in out] == [0]           # by the clock; H by 2H, later
    out = bars.update([row(H, 2), row(2 * H, 3)], now_ms=2 * H + 301)
    assert [b.open_time for b in out] == [H]
    assert bars.update([row(3 * H, 4), row(H, 2)], 3 * H) == []
    assert [b.open_time for b in bars.update([row(H, 2)], 3 * H + 300)] == [2 * H]


# -- which tier ------------------------------------------------------------------------
def test_exchanges_without_a_native_store_get_the_generic_tier():
    okx = find_store('okx')
    assert issubclass(okx, GenericStore) and okx.exchange_name == 'okx'
    assert find_store('ccxt:binance') is generic_store('binance')
    assert find_store('binance') is BinanceStore       # the native tier by default
    assert find_store('OKX') is okx


def test_an_unknown_exchange_names_both_tiers():
    with pytest.raises(ConfigError, match="unknown exchange 'nosuch'; native exchanges: "
                                          "binance, bybit; or any ccxt exchange id"):
        find_store('nosuch')


def test_market_types_follow_what_ccxt_says_the_exchange_has():
    spot_only = next(e for e in ccxt.exchanges if profile.describe(e)['has'].get('spot')
                     and not profile.describe(e)['has'].get('swap'))
    assert set(generic_store('okx').MARKET_TYPES) == {'spot', 'linear', 'inverse'}
    assert generic_store('okx').MARKET_TYPES['linear']['defaultType'] == 'swap'
    assert set(generic_store(spot_only).MARKET_TYPES) == {'spot'}
    with pytest.raises(ConfigError, match="unknown market_type 'futures' for %s; valid: "
                                          "spot" % spot_only):
        generic_store(spot_only).get_instance(testnet=False, market_type='futures')


def test_client_ids_where_ccxt_reads_them():
    assert profile.supports_client_ids('binance') and profile.supports_client_ids('okx')
    without = next(e for e in ccxt.exchanges if not profile.supports_client_ids(e))
    notes = generic_store(without).promises_not_kept.__get__(
        _bare(generic_store(without)))()
    assert any('no client order ids' in n for n in notes)


def _bare(cls):
    """An instance for methods that read class data only (no ccxt client)."""
    obj = object.__new__(cls)
    obj.kind = 'spot'
    obj.p = type('P', (), {'poll_interval': 5.0})()
    return obj


# -- passphrases ---------------------------------------------------------------------------
def test_a_passphrase_exchange_without_one_is_a_clear_error(monkeypatch):
    monkeypatch.delenv('OKX_API_PASSPHRASE', raising=False)
    monkeypatch.delenv('OKX_API_PASSWORD', raising=False)
    with pytest.raises(ConfigError, match='okx needs a passphrase.*OKX_API_PASSPHRASE'):
        generic_store('okx').get_instance(apikey='k' * 16, secret='s' * 16, testnet=False)


def test_the_passphrase_is_read_from_the_environment_and_never_shown(monkeypatch, caplog):
    monkeypatch.setenv('OKX_API_PASSPHRASE', PASS)
    store = generic_store('okx').get_instance(apikey='k' * 16, secret='s' * 16,
                                              testnet=False)
    assert store.exchange.password == PASS                 # ccxt signs with it
    assert PASS not in repr(store) and PASS not in str(store.p.password)
    assert PASS not in repr(GenericStore._instances)       # the cache key is a digest
    with caplog.at_level(logging.DEBUG):
        logging.getLogger('ccxt.base.exchange').debug('headers OK-ACCESS-PASSPHRASE: %s', PASS)
    assert PASS not in caplog.text
    err = store.classify(ccxt.AuthenticationError('bad passphrase %s' % PASS))
    assert PASS not in str(err)
    same = generic_store('okx').get_instance(apikey='k' * 16, secret='s' * 16,
                                             testnet=False, password=PASS)
    other = generic_store('okx').get_instance(apikey='k' * 16, secret='s' * 16,
                                              testnet=False, password=PASS + 'x')
    assert same is store and other is not store


def test_an_exchange_without_a_testnet_says_so():
    name = next(e for e in ccxt.exchanges if not profile.describe(e)['sandbox']
                and profile.describe(e)['has'].get('spot'))
    with pytest.raises(ConfigError, match='has no testnet in ccxt: pass testnet=False'):
        generic_store(name).get_instance(testnet=True)


# -- URLs and start-up notes ---------------------------------------------------------------
def _pointed(name, **options):
    store = generic_store(name).get_instance(testnet=False, **options)
    client = getattr(ccxt.pro, name)()
    store._point_urls(client)
    return client.urls['api']


def test_stream_urls_follow_the_endpoint_with_overrides():
    urls = _pointed('binance', endpoint='http://127.0.0.1:9', ws_urls={'spot': '/stream'})
    assert urls['ws']['spot'] == 'ws://127.0.0.1:9/stream'
    assert urls['ws']['linear'] == 'ws://127.0.0.1:9/ws'
    assert urls['ws']['ws-api']['spot'] == 'ws://127.0.0.1:9/ws-api/v3'
    assert urls['public'] == 'http://127.0.0.1:9/api/v3'
    urls = _pointed('bybit', endpoint='http://127.0.0.1:9')
    assert urls['ws']['public']['linear'] == 'ws://127.0.0.1:9/v5/public/linear'
    urls = _pointed('okx', ws_urls={'ws': 'wss://proxy.example/ws/v5'})   # no endpoint
    assert urls['ws'] == 'wss://proxy.example/ws/v5'


@pytest.mark.parametrize('options,match', [
    ({'endpoint': 'http://127.0.0.1:9', 'ws_urls': {'sopt': '/stream'}},
     r'ws_urls: unknown key\(s\) sopt; ccxt.pro binance has: spot, margin, linear'),
    ({'ws_urls': {'spot': '/stream'}}, "the path '/stream' needs an endpoint"),
])
def test_a_ws_url_that_would_not_be_used_is_an_error(options, match):
    with pytest.raises(ConfigError, match=match):
        _pointed('binance', **options)


def test_missing_streams_are_said_once_at_start(caplog):
    name = next(e for e in ccxt.exchanges if not profile.describe(e)['pro']
                and profile.describe(e)['has'].get('spot'))
    store = generic_store(name).get_instance(testnet=False)
    with caplog.at_level(logging.WARNING):
        store.start()
        store.start()
    said = [n[0] for n in store.get_notifications()]
    assert sum('no bars stream' in s for s in said) == 1
    assert sum('over REST' in s for s in said) == 4, said
    assert sum('(generic tier)' in r.getMessage() for r in caplog.records) == len(said)
    store.stop()



def test_the_docs_table_is_what_ccxt_and_the_profile_say():
    import os
    import re
    from backtrader_live.generic.table import markdown
    path = os.path.join(os.path.dirname(__file__), '..', 'docs', 'exchanges.md')
    with open(path) as fh:
        page = fh.read()
    made_with = re.search(r'Generated from ccxt (\S+) ', page).group(1)
    table = page.split('<!-- exchange-table:start -->\n')[1].split('\n<!-- exchange-table:end')[0]
    if made_with != ccxt.__version__:
        pytest.skip('docs/exchanges.md was made with ccxt %s, %s is installed: run python -m '
                    'backtrader_live.generic.table' % (made_with, ccxt.__version__))
    assert table == markdown()


@pytest.mark.parametrize('options,match', [
    ({'poll_interval': 0}, 'poll_interval must be a number of seconds > 0, got 0'),
    ({'poll_interval': True}, 'poll_interval must be a number'),
    ({'ws_urls': ['/stream']}, 'ws_urls must be a dict of ccxt.pro URL keys'),
])
def test_bad_generic_options_are_clear_errors(options, match):
    with pytest.raises(ConfigError, match=match):
        generic_store('okx').get_instance(testnet=False, **options)
