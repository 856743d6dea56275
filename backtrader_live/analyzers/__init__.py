"""backtrader's analyzers plus ours."""
import backtrader.analyzers as _upstream

from .._namespace import merge_into
from .market_state import MarketStateAnalyzer
from .risk_analyzer import RiskAnalyzer

merge_into(globals(), _upstream)
