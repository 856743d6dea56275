"""backtrader_live is a drop-in for backtrader: every public name is there."""
import importlib

import backtrader
import pytest

import backtrader_live as bt

SUBSPACES = ['feeds', 'brokers', 'stores', 'sizers', 'analyzers', 'indicators',
             'ind', 'observers', 'obs', 'strategies', 'strats', 'commissions',
             'comms', 'filters', 'signals', 'studies', 'utils', 'errors', 'talib']
OURS = {'Cerebro', 'Store', 'BrokerBase', 'DataBase', 'feeds', 'brokers', 'stores',
        'sizers', 'analyzers', 'errors', 'store', 'broker', 'feed', 'cerebro', 'strategy'}


def _public(module):
    return [n for n in dir(module) if not n.startswith('_')]


def test_every_top_level_name_is_there_and_the_same_object():
    for name in _public(backtrader):
        assert hasattr(bt, name), name
        if name not in OURS:
            assert getattr(bt, name) is getattr(backtrader, name), name


@pytest.mark.parametrize('sub', SUBSPACES)
def test_every_sub_namespace_name_is_there(sub):
    theirs, ours = getattr(backtrader, sub), getattr(bt, sub)
    for name in _public(theirs):
        assert hasattr(ours, name), '%s.%s' % (sub, name)
        if not (sub == 'errors' or name in OURS):
            assert getattr(ours, name) is getattr(theirs, name), '%s.%s' % (sub, name)


def test_our_classes_subclass_theirs():
    assert issubclass(bt.Cerebro, backtrader.Cerebro)
    assert issubclass(bt.Store, backtrader.Store)
    assert issubclass(bt.BrokerBase, backtrader.BrokerBase)
    assert issubclass(bt.DataBase, backtrader.feed.DataBase)


def test_merged_sub_namespaces_add_ours():
    assert bt.feeds.BinanceData and bt.feeds.GenericCSVData is backtrader.feeds.GenericCSVData
    assert bt.stores.BinanceStore and bt.stores.VChartFile is backtrader.stores.VChartFile
    assert bt.brokers.BinanceBroker and bt.brokers.BackBroker is backtrader.brokers.BackBroker
    assert bt.errors.StrategySkipError is backtrader.errors.StrategySkipError


@pytest.mark.parametrize('module', ['store', 'broker', 'feed', 'cerebro', 'strategy'])
def test_shadowed_modules_keep_upstream_names(module):
    theirs = importlib.import_module('backtrader.' + module)
    ours = importlib.import_module('backtrader_live.' + module)
    for name in _public(theirs):
        assert hasattr(ours, name), '%s.%s' % (module, name)


def test_a_name_upstream_gains_later_is_reached_too():
    import backtrader.plot  # noqa: F401  (a submodule imported after backtrader_live)
    assert bt.plot is backtrader.plot
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        bt.no_such_name  # noqa: B018
