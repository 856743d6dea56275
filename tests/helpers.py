"""Test helpers: constants, and waiting on a condition (never on the clock alone)."""
import os
import time

from backtrader_live.sim import DEFAULT_API_KEY, DEFAULT_API_SECRET

KEY, SECRET = DEFAULT_API_KEY, DEFAULT_API_SECRET
BTC_1H = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..',
                                       'shared', 'data', 'binance_BTCUSDT_1h.json'))


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
