"""backtrader's brokers plus the live exchange brokers."""
import backtrader.brokers as _upstream

from .._namespace import merge_into
from ..exchanges import namespace_getattr
from ..live import LiveBroker
from ..paper import PaperBroker
from .binance import BinanceBroker
from .bybit import BybitBroker

merge_into(globals(), _upstream)

__getattr__ = namespace_getattr(__name__, 'Broker')   # any registered exchange
