"""backtrader's brokers plus the live exchange brokers."""
import backtrader.brokers as _upstream

from .._namespace import merge_into
from ..live import LiveBroker
from ..paper import PaperBroker
from .binance import BinanceBroker
from .bybit import BybitBroker

merge_into(globals(), _upstream)


def __getattr__(name):
    """``<Name>Broker`` of any registered exchange (backtrader_live.exchanges:
    entry points or register()), so a new exchange needs no edit here."""
    from ..exchanges import class_for
    found = class_for('Broker', name) if not name.startswith('_') else None
    if found is None:
        raise AttributeError('module %r has no attribute %r' % (__name__, name))
    return found
