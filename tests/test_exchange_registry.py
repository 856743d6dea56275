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


# -- order types from the profile: demoex takes market and limit orders only ------------------
def _demoex_run(sim, script, steps, paper=False):
    run = LiveRun(sim, exchange='demoex', script=script, max_bars=steps,
                  paper_trading=paper).start()
    run.step(steps)
    run.join()
    run.rec.strategy.broker.store.stop()
    return run


@pytest.mark.parametrize('paper', [False, True], ids=['live', 'paper'])
def test_an_order_type_the_profile_lacks_is_refused_before_sending(demoex_installed, sim, paper):
    placed = {}

    def place(s):
        placed['stop'] = s.sell(size=0.05, price=3000.0, exectype=btl.Order.Stop)
        placed['stoplimit'] = s.sell(size=0.05, price=3000.0, plimit=2990.0,
                                     exectype=btl.Order.StopLimit)
        placed['limit'] = s.buy(size=0.05, price=3000.0, exectype=btl.Order.Limit)
    _demoex_run(sim, {6: place}, 1, paper=paper)
    stop, stoplimit, limit = placed['stop'], placed['stoplimit'], placed['limit']
    assert stop.status == stoplimit.status == btl.Order.Rejected
    assert stop.info['reject_reason'] == (
        'Stop orders cannot be placed on demoex spot: it takes market, limit orders only; the '
        'exchange has no conditional orders: watch the price in next() and send a Market order '
        'when it is reached')
    assert 'StopLimit orders cannot be placed on demoex spot' in stoplimit.info['reject_reason']
    assert limit.status == btl.Order.Accepted       # what it takes goes through
    if not paper:
        assert [o.type for o in sim.orders()] == ['LIMIT']     # nothing else was sent


def test_a_bracket_stop_is_triggered_locally_where_the_exchange_has_none(demoex_installed, sim):
    """A bracket on demoex still protects the position: its stop child is
    watched locally and sent at market when a closed bar reaches it (the
    parent fills as bar 6 closes at 4191.53; bar 7 is the parent's bar, as
    upstream activates children on the bar after; bar 8's low is 4188.81)."""
    placed = {}

    def place(s):
        placed['orders'] = s.buy_bracket(size=0.05, exectype=btl.Order.Market,
                                         stopprice=4190.0, limitprice=5000.0)
    _demoex_run(sim, {6: place}, 4)
    parent, stop, target = placed['orders']
    assert [o.status for o in (parent, stop, target)] == [
        btl.Order.Completed, btl.Order.Completed, btl.Order.Canceled]
    sent = sim.orders()
    # the parent, the resting target (cancelled), the stop sent at market: never a stop order
    assert [(o.side, o.type) for o in sent] == [('BUY', 'MARKET'), ('SELL', 'LIMIT'),
                                                ('SELL', 'MARKET')]


def test_the_generic_tier_reads_order_types_from_ccxt():
    from backtrader_live.generic import profile
    assert profile.order_types('binance') == ('market', 'limit', 'stop', 'stop_limit')
    assert profile.order_types('bitstamp') == ('market', 'limit')        # no stops at all
    assert profile.order_types('coinbase') == ('market', 'limit', 'stop_limit')
    assert 'market' not in profile.order_types('gemini')                 # limit orders only
    # contracts that need a trigger direction say so in ccxt's features
    assert profile.needs_trigger_direction('bybit', 'linear') is True
    assert profile.needs_trigger_direction('bybit', 'spot') is False
    assert profile.needs_trigger_direction('binance', 'linear') is False


@pytest.mark.parametrize('paper', [False, True], ids=['live', 'paper'])
def test_a_bracket_whose_stop_cannot_be_sent_is_refused_whole(demoex_installed, sim, paper):
    """An exchange that takes limit orders only (no market order to send a
    locally triggered stop as): the bracket's stop child is refused before
    anything is sent, and its parent and sibling with it, never a parent
    without its stop."""
    import copy
    from demoex.store import DemoexStore
    profile = copy.copy(DemoexStore.profile)
    product = copy.copy(profile.products['spot'])
    product.order_types = ('limit',)
    profile.products = {'spot': product}
    store_cls = type('LimitexStore', (DemoexStore,), {'profile': profile})
    exchanges.register('limitex', store_cls)
    placed = {}

    def place(s):
        placed['orders'] = s.buy_bracket(size=0.05, price=4000.0, stopprice=3900.0,
                                         limitprice=4400.0)
    try:
        run = LiveRun(sim, exchange='limitex', script={6: place}, max_bars=1,
                      paper_trading=paper).start()
        run.step(1)
        run.join()
        run.rec.strategy.broker.store.stop()
    finally:
        exchanges.unregister('limitex')
    parent, stop, target = placed['orders']
    assert stop.status == btl.Order.Rejected
    assert stop.info['reject_reason'] == (
        "Stop (a bracket's stop, triggered locally and sent as a market order where the "
        'exchange has no stop order) orders cannot be placed on demoex spot: it takes limit '
        "orders only; give the bracket a StopLimit stop (stopexec=Order.StopLimit, "
        "stopargs={'plimit': ...}): sent as a limit order when it triggers")
    assert not parent.alive() and not target.alive()
    assert sim.orders() == []       # nothing reached the exchange
