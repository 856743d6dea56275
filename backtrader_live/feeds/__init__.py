"""backtrader's feeds plus the live exchange feeds."""
import backtrader.feeds as _upstream

from .._namespace import merge_into
from .binance import BinanceData
from .bybit import BybitData

merge_into(globals(), _upstream)
