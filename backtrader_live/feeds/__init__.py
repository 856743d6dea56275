"""backtrader's feeds plus the live exchange feeds."""
import backtrader.feeds as _upstream

from .._namespace import merge_into
from ..exchanges import namespace_getattr
from .binance import BinanceData
from .bybit import BybitData

merge_into(globals(), _upstream)

__getattr__ = namespace_getattr(__name__, 'Data')   # any registered exchange
