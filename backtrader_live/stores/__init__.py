"""backtrader's stores plus the live exchange stores.

``Cerebro.run_live`` finds an exchange's store by name in the registry
(backtrader_live.exchanges); ``<Name>Store`` of any registered exchange is
reachable here too (``__getattr__`` below).
"""
import backtrader.stores as _upstream

from .._namespace import merge_into
from .binance import BinanceStore
from .bybit import BybitStore

merge_into(globals(), _upstream)


def __getattr__(name):
    """``<Name>Store`` of any registered exchange (backtrader_live.exchanges:
    entry points or register()), so a new exchange needs no edit here."""
    from ..exchanges import class_for
    found = class_for('Store', name) if not name.startswith('_') else None
    if found is None:
        raise AttributeError('module %r has no attribute %r' % (__name__, name))
    return found
