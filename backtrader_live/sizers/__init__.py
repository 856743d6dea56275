"""backtrader's sizers plus ours."""
import backtrader.sizers as _upstream

from .._namespace import merge_into
from .risk_sizer import RiskBasedSizer

merge_into(globals(), _upstream)
