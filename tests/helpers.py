"""Test helpers: waiting on a condition, never on the clock alone."""
import time


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
