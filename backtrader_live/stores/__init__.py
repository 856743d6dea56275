"""backtrader's stores plus the live exchange stores.

``Cerebro.run_live`` finds an exchange's store as
``backtrader_live.stores.<exchange>.<Exchange>Store`` with importlib.
"""
import backtrader.stores as _upstream

from .._namespace import merge_into
from .binance import BinanceStore
from .bybit import BybitStore

merge_into(globals(), _upstream)
