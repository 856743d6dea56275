"""One backoff helper for REST retries and stream reconnects alike."""
import random
import threading


class Backoff:
    """Exponential backoff with full jitter, a cap, and a cancellable wait.

    ``delay(attempt)`` is ``uniform(base/2, min(cap, base * factor**attempt))``
    so that many clients reconnecting at once spread out, yet the first retry
    is quick. ``wait(attempt, stop_event)`` sleeps that long unless the event
    is set, and says whether it was (so threads stop promptly).
    """

    def __init__(self, base=0.5, factor=2.0, cap=30.0, max_attempts=None,
                 rng=None):
        if base <= 0 or factor < 1 or cap < base:
            raise ValueError('backoff needs base > 0, factor >= 1 and cap >= base '
                             '(got base=%r, factor=%r, cap=%r)' % (base, factor, cap))
        self.base = base
        self.factor = factor
        self.cap = cap
        self.max_attempts = max_attempts
        self._rng = rng or random.Random()

    def delay(self, attempt, retry_after=None):
        """Seconds to wait before try number ``attempt`` (0-based)."""
        upper = min(self.cap, self.base * self.factor ** max(0, attempt))
        delay = self._rng.uniform(min(self.base / 2.0, upper), upper)
        if retry_after is not None:
            # The server told us how long; never come back earlier.
            delay = max(delay, float(retry_after))
        return delay

    def exhausted(self, attempt):
        return self.max_attempts is not None and attempt >= self.max_attempts

    def wait(self, attempt, stop_event=None, retry_after=None):
        """Sleep before ``attempt``; return True if stopped meanwhile."""
        delay = self.delay(attempt, retry_after)
        if stop_event is None:
            stop_event = threading.Event()
        return stop_event.wait(delay)
