"""The exchange registry: an exchange defined outside the package (tests/demoex),
installed as a Python entry point, runs with run_live by name, with no
backtrader_live file edited; unknown names still reach the generic tier and
a misspelt one gets the closest name."""
import os

import pytest

import backtrader_live as btl
from backtrader_live import exchanges
from backtrader_live.cerebro import available_exchanges, find_store
from backtrader_live.errors import ConfigError
from backtrader_live.generic import GenericStore
from backtrader_live.stores import BinanceStore
from livekit import LiveRun


@pytest.fixture
def demoex_installed(tmp_path, monkeypatch):
    """Install 'demoex' the way pip would: a dist-info with an entry point."""
    dist = tmp_path / 'demoex-0.1.dist-info'
    dist.mkdir()
    (dist / 'METADATA').write_text('Metadata-Version: 2.1\nName: demoex\nVersion: 0.1\n')
    (dist / 'entry_points.txt').write_text(
        '[%s]\ndemoex = demoex.store:DemoexStore\n' % exchanges.ENTRY_POINT_GROUP)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    # monkeypatch takes the path away again: later tests see the built-ins only


def test_an_installed_exchange_is_found_by_name_everywhere(demoex_installed):
    from demoex.store import DemoexBroker, DemoexData, DemoexStore
    assert 'demoex' in available_exchanges() and 'demoex' in exchanges.names()
    assert find_store('demoex') is DemoexStore and find_store('DemoEx') is DemoexStore
    assert btl.stores.DemoexStore is DemoexStore
    assert btl.brokers.DemoexBroker is DemoexBroker
    assert btl.feeds.DemoexData is DemoexData
    # what the profile declares is what the store is
    assert DemoexStore.exchange_name == 'demoex' and DemoexStore.env_prefix == 'DEMOEX'
    assert DemoexStore.OHLCV_PAGE_LIMIT == 500 and list(DemoexStore.MARKET_TYPES) == ['spot']
    assert BinanceStore.OHLCV_PAGE_LIMIT == 1000 and BinanceStore.exchange_name == 'binance'


def test_an_installed_exchange_runs_live_against_the_simulator(demoex_installed, sim):
    run = LiveRun(sim, exchange='demoex', script={6: lambda s: s.buy(size=0.05)},
                  max_bars=2).start()
    run.step(2)
    run.join()
    assert run.rec.statuses() == ['Submitted', 'Accepted', 'Completed']
    store = run.rec.strategy.broker.store
    assert type(store).__name__ == 'DemoexStore' and store.exchange_name == 'demoex'
    assert type(run.rec.strategy.broker).__name__ == 'DemoexBroker'
    assert type(run.rec.strategy.data).__name__ == 'DemoexData'
    store.stop()


def test_no_package_file_names_the_outside_exchange():
    """The proof that adding demoex edited nothing in backtrader_live."""
    root = os.path.dirname(btl.__file__)
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(('.py', '.toml', '.cfg', '.txt')):
                with open(os.path.join(folder, name), encoding='utf-8') as f:
                    assert 'demoex' not in f.read().lower(), os.path.join(folder, name)


def test_a_misspelt_exchange_gets_the_closest_name(demoex_installed):
    with pytest.raises(ConfigError, match=r"unknown exchange 'binanse' \(did you mean "
                                          r"'binance'\?\); native exchanges: binance, bybit, "
                                          r"demoex; or any ccxt exchange id"):
        find_store('binanse')
    with pytest.raises(ConfigError, match=r"'demoexx' \(did you mean 'demoex'\?\)"):
        btl.Cerebro().run_live('demoexx', 'BTC/USDT', '1h', btl.Strategy)


def test_unknown_names_still_reach_the_generic_tier(demoex_installed):
    assert issubclass(find_store('okx'), GenericStore)
    assert find_store('ccxt:binance') is not BinanceStore      # forced generic
    with pytest.raises(AttributeError):
        btl.stores.OkxStore         # the namespaces list registered exchanges only


def test_runtime_registration_and_its_errors():
    from demoex.store import DemoexStore
    exchanges.register('otherex', DemoexStore)
    try:
        assert find_store('otherex') is DemoexStore
        with pytest.raises(ConfigError, match="exchange 'otherex' is registered already"):
            exchanges.register('OtherEx', 'demoex.store:DemoexStore')
        exchanges.register('otherex', 'demoex.store:DemoexStore', replace=True)
        assert find_store('otherex') is DemoexStore
    finally:
        exchanges.unregister('otherex')
    assert 'otherex' not in available_exchanges()
    exchanges.register('brokenex', 'nosuch_module:Store')
    exchanges.register('notastore', dict)
    try:
        with pytest.raises(ConfigError, match="exchange 'brokenex': cannot load"):
            find_store('brokenex')
        with pytest.raises(ConfigError, match='not a backtrader_live Store subclass'):
            find_store('notastore')
    finally:
        exchanges.unregister('brokenex')
        exchanges.unregister('notastore')
    with pytest.raises(ConfigError, match='non-empty string'):
        exchanges.register('  ', DemoexStore)
