"""backtrader's stores plus the live exchange stores.

``Cerebro.run_live`` finds an exchange's store by name in the registry
(backtrader_live.exchanges); ``<Name>Store`` of any registered exchange is
reachable here too (``__getattr__`` below).
"""
import backtrader.stores as _upstream

from .._namespace import merge_into
from ..exchanges import namespace_getattr
from .binance import BinanceStore
from .bybit import BybitStore

merge_into(globals(), _upstream)

__getattr__ = namespace_getattr(__name__, 'Store')   # any registered exchange
