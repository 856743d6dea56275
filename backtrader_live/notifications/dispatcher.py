"""Delivery that never blocks trading.

``Notifier.notify()`` runs in the caller's thread (Cerebro's, usually) and
only does cheap things: build the notification, drop it if the same one was
sent less than ``dedupe_interval`` seconds ago, and append it to the bounded
queue of each channel that wants it. Each channel has its own worker thread
(``bt-live-notify-<channel>``), started on its first notification, so a
channel that hangs or fails delays nobody but itself. Workers retry what is
retryable with the shared backoff, log what fails (redacted) and go on.

``stop(timeout)`` drains the queues within a bounded time, then gives up on
what is left and says so; ``Cerebro.run`` calls it when the run ends.
"""
import atexit
import collections
import logging
import threading
import time

from ..errors import classify
from .channels import CallbackChannel, Channel
from .core import Notification, parse_level

log = logging.getLogger(__name__)


class Deduper:
    """Admits a key at most once per ``interval`` seconds; counts the rest.

    Keys are kept in the order they were last admitted and capped at
    ``max_keys`` (oldest forgotten first) so a long run cannot grow it.
    """

    def __init__(self, interval=60.0, clock=time.monotonic, max_keys=4096):
        if interval < 0:
            raise ValueError('dedupe interval must be >= 0')
        self.interval = float(interval)
        self.max_keys = max_keys
        self._clock = clock
        self._seen = collections.OrderedDict()     # key -> [admitted at, suppressed]
        self._lock = threading.Lock()

    def admit(self, key):
        """(True, suppressed since the last admission) or (False, 0)."""
        if not self.interval:
            return True, 0
        now = self._clock()
        with self._lock:
            entry = self._seen.get(key)
            if entry is not None and now - entry[0] < self.interval:
                entry[1] += 1
                return False, 0
            suppressed = entry[1] if entry is not None else 0
            self._seen[key] = [now, 0]
            self._seen.move_to_end(key)
            while len(self._seen) > self.max_keys:
                self._seen.popitem(last=False)
            return True, suppressed


class _Worker:
    """One channel's bounded queue and the thread that empties it."""

    def __init__(self, channel, stats):
        self.channel = channel
        self.stats = stats                   # the Notifier's counters for this channel
        self._items = collections.deque()
        self._cond = threading.Condition()
        self._busy = False
        self._closing = False
        self._deadline = None
        self._wakeup = threading.Event()     # cuts a retry wait short at close()
        self._dropping = False               # a drop warning was logged
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='bt-live-notify-%s' % channel.name)
        self._thread.start()

    # -- producer side (any thread; must stay cheap) --------------------------
    def offer(self, notification):
        with self._cond:
            if self._closing:
                return False
            if len(self._items) >= self.channel.queue_size:
                self.stats['dropped'] += 1
                first = not self._dropping
                self._dropping = True
            else:
                self._items.append(notification)
                self._cond.notify()
                return True
        if first:
            log.warning('notification channel %s is not keeping up (%d queued); dropping new '
                        'notifications until it recovers', self.channel.name,
                        self.channel.queue_size)
        return False

    def pending(self):
        with self._cond:
            return len(self._items) + (1 if self._busy else 0)

    def wait_idle(self, timeout):
        with self._cond:
            return self._cond.wait_for(lambda: not self._items and not self._busy, timeout)

    def close(self, deadline):
        """Stop taking notifications; deliver the queued ones until ``deadline``."""
        with self._cond:
            self._closing = True
            self._deadline = deadline
            self._cond.notify_all()
        self._wakeup.set()

    def join(self, timeout):
        self._thread.join(max(0.0, timeout))
        return not self._thread.is_alive()

    # -- the thread ---------------------------------------------------------------
    def _take(self):
        with self._cond:
            self._busy = False
            self._cond.notify_all()
            while not self._items and not self._closing:
                self._cond.wait()
            if not self._items:
                return None
            self._busy = True
            return self._items.popleft()

    def _run(self):
        while True:
            notification = self._take()
            if notification is None:
                return
            if self._deadline is not None and time.monotonic() >= self._deadline:
                self._give_up(notification)
                continue
            try:
                self._deliver(notification)
            except Exception:   # a worker must never die: log and keep going
                log.exception('notification channel %s: unexpected error', self.channel.name)

    def _give_up(self, notification):
        with self._cond:
            lost = 1 + len(self._items)
            self._items.clear()
        self.stats['dropped'] += lost
        log.error('notification channel %s: %d notification(s) not delivered before the '
                  'shutdown deadline, first: %s', self.channel.name, lost,
                  notification.title(''))

    def _deliver(self, notification):
        channel = self.channel
        attempt = 0
        while True:
            try:
                channel.send(notification)
            except Exception as exc:
                err = classify(exc, channel.secrets())
                if not err.retryable or attempt >= channel.retries:
                    return self._failed(notification, err, attempt, exc)
                log.info('notification channel %s: %s; retrying', channel.name, err)
                if not self._wait_retry(attempt, getattr(err, 'retry_after', None)):
                    return self._failed(notification, err, attempt, exc, shutdown=True)
                attempt += 1
                continue
            self.stats['sent'] += 1
            if self._dropping:
                self._dropping = False
                log.warning('notification channel %s recovered (%d dropped so far)',
                            channel.name, self.stats['dropped'])
            return

    def _failed(self, notification, err, attempt, exc, shutdown=False):
        self.stats['failed'] += 1
        why = ('no time left before shutdown' if shutdown else
               'not retryable' if not err.retryable else '%d attempt(s)' % (attempt + 1))
        log.error('notification channel %s failed (%s): %s; dropped: %s', self.channel.name,
                  why, err, notification.title(''),
                  exc_info=exc if self.channel.log_traceback else None)

    def _wait_retry(self, attempt, retry_after):
        """Sleep the backoff delay; False if the shutdown deadline forbids it."""
        end = time.monotonic() + self.channel.backoff.delay(attempt, retry_after)
        while True:
            deadline = self._deadline
            if deadline is not None:
                if end > deadline:
                    return False
                time.sleep(max(0.0, end - time.monotonic()))
                return True
            remaining = end - time.monotonic()
            if remaining <= 0:
                return True
            self._wakeup.wait(remaining)


class Notifier:
    """Channels, de-duplication and the workers that deliver.

    - ``dedupe_interval``: the same notification (same kind, level and text,
      or the same ``dedupe_key``) at most once per this many seconds; 0 = off
    - ``drain_timeout``: default bound of ``stop()``
    """

    def __init__(self, channels=(), dedupe_interval=60.0, drain_timeout=5.0,
                 clock=time.monotonic):
        self._dedupe = Deduper(dedupe_interval, clock)
        self.drain_timeout = float(drain_timeout)
        self._channels = []
        self._workers = {}
        self._stats = {}          # channel -> counters, kept across restarts
        self._lock = threading.Lock()
        self._atexit = False
        self.suppressed = 0
        for channel in channels:
            self.add_channel(channel)

    @property
    def dedupe_interval(self):
        return self._dedupe.interval

    @property
    def channels(self):
        return list(self._channels)

    def add_channel(self, channel):
        """Add a Channel (or a plain callable, as a CallbackChannel); returns it."""
        if not isinstance(channel, Channel):
            channel = CallbackChannel(channel)
        with self._lock:
            names = {c.name for c in self._channels}
            base, n = channel.name, 2
            while channel.name in names:
                channel.name, n = '%s#%d' % (base, n), n + 1
            self._channels.append(channel)
            self._stats[channel] = {'sent': 0, 'failed': 0, 'dropped': 0}
        return channel

    def remove_channel(self, channel):
        """Remove a channel after delivering what it has queued (bounded)."""
        with self._lock:
            self._channels.remove(channel)
            self._stats.pop(channel, None)
            worker = self._workers.pop(channel, None)
        if worker is not None:
            worker.close(time.monotonic() + self.drain_timeout)
            worker.join(self.drain_timeout + 0.5)

    def notify(self, message, level='INFO', kind=None, data=None, dedupe_key=None):
        """Queue ``message`` for every channel that wants it; never blocks or raises.

        Returns how many channels it was queued for (0 if de-duplicated).
        """
        try:
            level = self._level(level)
            key = dedupe_key if dedupe_key is not None else (kind, level, str(message))
            admitted, suppressed = self._dedupe.admit(key)
            if not admitted:
                self.suppressed += 1
                return 0
            notification = Notification(message, level, kind, data, suppressed=suppressed,
                                        interval=self._dedupe.interval)
            return sum(self._worker(c).offer(notification)
                       for c in self.channels if c.accepts(notification))
        except Exception:   # the strategy must never see a notification problem
            log.exception('a notification could not be queued: %.200s', message)
            return 0

    @staticmethod
    def _level(level):
        try:
            return parse_level(level)
        except ValueError:
            log.error('unknown notification level %r; sending it as WARNING', level)
            return logging.WARNING

    def _worker(self, channel):
        with self._lock:
            worker = self._workers.get(channel)
            if worker is None:
                worker = self._workers[channel] = _Worker(channel, self._stats[channel])
                if not self._atexit:
                    # A notification sent outside a run still gets out at exit.
                    atexit.register(self.stop)
                    self._atexit = True
            return worker

    def flush(self, timeout=5.0):
        """Wait until every queued notification was handled; True if all were."""
        deadline = time.monotonic() + timeout
        with self._lock:
            workers = list(self._workers.values())
        return all(w.wait_idle(max(0.0, deadline - time.monotonic())) for w in workers)

    def stop(self, timeout=None):
        """Deliver what is queued within ``timeout`` seconds and end the threads.

        Returns True if everything was delivered (or given up) and every thread
        ended. A later ``notify()`` starts fresh threads.
        """
        timeout = self.drain_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
            if self._atexit:
                atexit.unregister(self.stop)
                self._atexit = False
        for worker in workers:
            worker.close(deadline)
        # A little past the deadline: a worker notices it between two sends.
        ended = [w.join(deadline - time.monotonic() + 0.5) for w in workers]
        for worker, done in zip(workers, ended):
            if not done:
                log.error('notification channel %s is stuck in a send; %d notification(s) '
                          'left undelivered', worker.channel.name, worker.pending())
        return all(ended)

    def stats(self):
        """``{channel name: {'sent', 'failed', 'dropped', 'queued'}}`` since creation."""
        with self._lock:
            items = [(c, dict(s), self._workers.get(c)) for c, s in self._stats.items()]
        result = {}
        for channel, counts, worker in items:
            counts['queued'] = worker.pending() if worker is not None else 0
            result[channel.name] = counts
        return result

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def __getstate__(self):
        raise TypeError('a Notifier holds threads and cannot be pickled')

    def __repr__(self):
        return 'Notifier(channels=%r, dedupe_interval=%g)' % (self._channels,
                                                                self.dedupe_interval)
