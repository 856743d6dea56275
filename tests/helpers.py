"""Test helpers: constants, and waiting on a condition (never on the clock alone)."""
import os
import time

from backtrader_live.sim import DEFAULT_API_KEY, DEFAULT_API_SECRET
from backtrader_live.sim.candles import DEFAULT_DATA, load_candles

KEY, SECRET = DEFAULT_API_KEY, DEFAULT_API_SECRET
# The real Binance candles (shared/data) as packaged with the simulator, so a
# fresh clone has them too.
BTC_1H = DEFAULT_DATA['BTC/USDT']


def load_rows(path=BTC_1H):
    """[[open_ms, o, h, l, c, v], ...] from a .json or .json.gz candle file."""
    return [list(r) for r in load_candles(path)]


def eventually(condition, timeout=5.0, interval=0.005, message=None):
    """Poll ``condition`` until truthy or ``timeout`` seconds pass.

    Returns the truthy value; fails the test with ``message`` otherwise.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(message or 'condition not met within %.1fs' % timeout)
        time.sleep(interval)
