"""backtrader's feeds plus the live exchange feeds."""
import backtrader.feeds as _upstream

from .._namespace import merge_into
from .binance import BinanceData
from .bybit import BybitData

merge_into(globals(), _upstream)


def __getattr__(name):
    """``<Name>Data`` of any registered exchange (backtrader_live.exchanges:
    entry points or register()), so a new exchange needs no edit here."""
    from ..exchanges import class_for
    found = class_for('Data', name) if not name.startswith('_') else None
    if found is None:
        raise AttributeError('module %r has no attribute %r' % (__name__, name))
    return found
