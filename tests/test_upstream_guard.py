"""The backtrader internals the store leans on (backtrader_live/_upstream.py).

If backtrader changes them, these fail first, with the internal named,
instead of a live run misbehaving (a testnet store handed to a mainnet
caller, a lost store notification).
"""
import backtrader
import pytest
from backtrader.metabase import MetaParams
from backtrader.store import MetaSingleton, Store as BtStore

from backtrader_live import _upstream
from backtrader_live.store import MetaLiveStore
from backtrader_live.stores import BinanceStore


def test_the_installed_backtrader_is_the_tested_one():
    assert backtrader.__version__ in _upstream.TESTED_VERSIONS
    assert _upstream.check_upstream() is True


def test_another_version_is_warned_about():
    with pytest.warns(RuntimeWarning, match='tested with backtrader 1.9.78.123, not 1.9.99'):
        _upstream.check_upstream('1.9.99')


def test_a_missing_internal_fails_the_import_naming_it(monkeypatch):
    monkeypatch.delattr(MetaSingleton, '__call__')
    with pytest.raises(ImportError, match=r'lacks what backtrader_live builds on: '
                                          r'MetaSingleton.__call__'):
        _upstream.check_upstream()


def test_upstream_singleton_is_still_one_per_class_and_ours_is_not():
    """Why MetaLiveStore skips MetaSingleton.__call__: upstream would hand the
    first store to every later caller, whatever its arguments."""
    class Upstream(BtStore):
        params = (('testnet', True),)
    assert Upstream(testnet=True) is Upstream(testnet=False)     # upstream's behaviour
    assert MetaLiveStore.__mro__[1] is MetaSingleton and MetaSingleton.__mro__[1] is MetaParams
    testnet = BinanceStore(market_type='spot', testnet=True)
    mainnet = BinanceStore(market_type='spot', testnet=False)
    assert testnet is not mainnet and mainnet.p.testnet is False


def test_store_notifications_use_upstream_start():
    store = BinanceStore(market_type='spot', testnet=True)
    store.start()                                   # upstream's start creates notifs
    store.put_notification('hello', 1, key='v')
    assert store.get_notifications() == [('hello', (1,), {'key': 'v'})]
    store.stop()
