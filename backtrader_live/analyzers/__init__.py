"""backtrader's analyzers plus ours."""
import backtrader.analyzers as _upstream

from .._namespace import merge_into

merge_into(globals(), _upstream)
