"""backtrader_live: all of backtrader, plus live crypto trading.

``import backtrader_live as bt`` gives every public name of ``backtrader``
(the same objects), except where we subclass upstream's class of the same
name (Cerebro, Store, BrokerBase, DataBase) to add the live layer; the
sub-namespaces (feeds, brokers, stores, sizers, analyzers, ...) are merged.
Existing strategies run unchanged with only the import changed.
"""
import backtrader as _bt

from ._namespace import merge_into
from .errors import (AuthenticationFailed, ConfigError, FatalError, LiveError,
                     OrderRejected, RetryableError)
from .store import Store, MarketRules
from .broker import BrokerBase
from .feed import DataBase
from .cerebro import Cerebro
from .strategy import LiveStrategy, LiveStrategyMixin
from .notifications import setup_external_notifications
from . import feeds, brokers, stores, sizers, analyzers, notifications, exchanges


__version__ = '0.1.0'
__btversion__ = _bt.__version__

merge_into(globals(), _bt)


def __getattr__(name):
    """Names upstream gains after we were imported (``backtrader.plot`` appears
    once something imports it): still the same object, reached through ours."""
    if not name.startswith('_') and hasattr(_bt, name):
        return getattr(_bt, name)
    raise AttributeError('module %r has no attribute %r' % (__name__, name))
