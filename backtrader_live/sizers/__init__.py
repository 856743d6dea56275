"""backtrader's sizers plus ours."""
import backtrader.sizers as _upstream

from .._namespace import merge_into

merge_into(globals(), _upstream)
