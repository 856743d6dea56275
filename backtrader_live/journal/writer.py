"""The journal's writer: a bounded queue and one named thread.

Callers (Cerebro's thread: notify_order, next) only build a small dict and
put it in the queue; the thread writes batches in one transaction each. A
full queue makes the caller wait at most ``put_timeout`` seconds, then the
record goes to an overflow list the thread drains first: a record is never
dropped. A database that goes away (a PostgreSQL restart, a lock) keeps the
batch and is retried with growing pauses while trading goes on; a warning
says how many records wait.
"""
import collections
import logging
import threading
import time

from backtrader import num2date
from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError

from . import tables as t

log = logging.getLogger(__name__)

#: per table: the columns whose conflict means "already recorded" (seen twice)
IGNORE_DUPLICATES = {'fills': ('exchange', 'symbol', 'trade_id')}
#: per table: conflict columns and the columns a later sighting updates
UPSERT = {'orders': (('run_id', 'session', 'ref'), ('exchange_id', 'client_id')),
          # an emulated order's row is its state now (backtrader_live/rearm.py)
          'emulated_orders': (('run_id', 'session', 'ref'), (
              'symbol', 'side', 'exectype', 'role', 'status', 'size', 'filled', 'price',
              'pricelimit', 'trailamount', 'trailpercent', 'created_dt', 'seen_dt', 'valid',
              'dteos', 'client_id', 'parent_ref', 'oco_ref', 'protective', 'options',
              'rearmed_from', 'reason', 'updated_at'))}
#: columns that may be given as backtrader date numbers (floats): converted
#: here, in the writer thread, not on Cerebro's
DATE_NUMBERS = {'equity': ('at',), 'snapshots': ('at',), 'risk_events': ('at',)}
BATCH = 500
RETRY_MAX = 30.0


def _insert(dialect, table):
    if dialect == 'sqlite':
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    elif dialect == 'postgresql':
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:       # other databases: plain inserts (duplicates then raise)
        return insert(table)
    return dialect_insert(table)


def statement(dialect, name):
    table = t.metadata.tables[name]
    stmt = _insert(dialect, table)
    if not hasattr(stmt, 'on_conflict_do_nothing'):
        return stmt
    if name in IGNORE_DUPLICATES:
        return stmt.on_conflict_do_nothing(index_elements=list(IGNORE_DUPLICATES[name]))
    if name in UPSERT:
        keys, updated = UPSERT[name]
        return stmt.on_conflict_do_update(index_elements=list(keys), set_={
            c: _coalesce(stmt, table, c) for c in updated})
    return stmt


def _coalesce(stmt, table, column):
    from sqlalchemy import func
    return func.coalesce(stmt.excluded[column], table.c[column])


class Writer:
    """``put(table, row)`` from any thread; ``stop()`` writes what is left."""

    def __init__(self, engine, queue_size=10000, put_timeout=5.0, name='bt-live-journal',
                 interval=0.05):
        self.engine = engine
        self.interval = interval          # seconds between looks at an empty queue
        self.put_timeout = put_timeout
        self.queue_size = queue_size
        # A deque and a plain lock, not queue.Queue: a put is an append under
        # an uncontended lock (queue.Queue's Python-level Conditions cost
        # Cerebro's thread several times more per record).
        self._records = collections.deque()
        self._lock = threading.Lock()
        self._idle = threading.Condition(threading.Lock())    # flush waits here
        self._room = threading.Condition(threading.Lock())    # a full queue waits here
        self._put = 0                     # records put; pending = put - written
        self.written = 0
        self._stop = threading.Event()
        self._wake = threading.Event()    # flush/stop: write now, do not wait interval
        self.failures = 0                 # failed write attempts (retried)
        self.last_error = None
        self._warned_full = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- callers ---------------------------------------------------------------------
    def put(self, table, row):
        """Queue a row. Above ``queue_size`` waiting rows the caller waits for
        room (at most ``put_timeout`` s, warned once); the row is kept either
        way: nothing put is ever dropped."""
        with self._lock:
            self._put += 1
            self._records.append((table, row))
            full = len(self._records) > self.queue_size
        if full:
            self._wait_for_room()

    def _wait_for_room(self):
        self._wake.set()
        deadline = time.monotonic() + self.put_timeout
        with self._room:
            while len(self._records) > self.queue_size:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._room.wait(left)
        if len(self._records) > self.queue_size and not self._warned_full:
            self._warned_full = True
            log.warning('journal: queue full for %.1fs (database slow or away?); '
                        'records are kept in memory until written', self.put_timeout)

    def flush(self, timeout=10.0):
        """Wait until every record put so far is committed; False on timeout."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._idle:
            while self.pending:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._idle.wait(min(left, 0.5))
        return True

    @property
    def pending(self):
        """Records put and not yet committed."""
        return self._put - self.written

    def stop(self, timeout=10.0):
        """Write what is queued (at most ``timeout`` s), stop and join the thread."""
        self.flush(timeout)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        if self.pending:
            log.error('journal: %d records could not be written before stopping (%s)',
                      self.pending, self.last_error)

    # -- the thread ------------------------------------------------------------------
    def _take(self):
        """Up to BATCH records; when there are none, sleep ``interval`` (a put
        wakes nobody: it costs Cerebro's thread an append, not a thread
        switch; flush, stop and a full queue wake the writer)."""
        records = self._records
        batch = []
        # only this thread takes from the deque, so a non-empty one stays so
        while records and len(batch) < BATCH:
            batch.append(records.popleft())
        if batch:
            with self._room:
                self._room.notify_all()
        else:
            self._wake.wait(self.interval)
            self._wake.clear()
        return batch

    def _run(self):
        pause = 0.5
        batch = []
        while True:
            if not batch:
                if self._stop.is_set() and not self._records:
                    return
                batch = self._take()
                if not batch:
                    continue
            try:
                self._write(batch)
            except DBAPIError as exc:
                self._failed(exc, len(batch), pause)
                if self._stop.wait(pause):
                    return      # stop() during an outage: what is left is logged there
                pause = min(pause * 2, RETRY_MAX)
                continue
            if self.failures and pause > 0.5:
                log.warning('journal: database reachable again; writing resumed')
            pause = 0.5
            with self._idle:
                self.written += len(batch)
                self._idle.notify_all()
            batch = []

    def _failed(self, exc, count, pause):
        self.last_error = '%s: %s' % (type(exc).__name__, exc.orig if exc.orig else exc)
        log.warning('journal: writing %d records failed (%s); trading goes on, %d records '
                    'wait in memory, retrying in %.1fs', count, self.last_error,
                    self.pending, pause)
        # counted last: a reader that sees the count sees the error and the warning
        self.failures += 1

    def _write(self, batch):
        by_table = collections.defaultdict(list)
        for name, row in batch:
            by_table[name].append(row)
        dialect = self.engine.dialect.name
        with self.engine.begin() as conn:
            for name in (tb.name for tb in t.metadata.sorted_tables):   # parents first
                rows = by_table.get(name)
                if rows:
                    self._write_rows(conn, dialect, name, rows)

    @staticmethod
    def _write_rows(conn, dialect, name, rows):
        for column in DATE_NUMBERS.get(name, ()):
            for row in rows:
                value = row.get(column)
                if isinstance(value, float):
                    row[column] = num2date(value)
        stmt = statement(dialect, name)
        if name in UPSERT:       # one row at a time: a batch may hold the same key twice
            for row in rows:
                conn.execute(stmt, row)
            return
        # executemany needs the same keys in every row
        groups = collections.defaultdict(list)
        for row in rows:
            groups[tuple(sorted(row))].append(row)
        for group in groups.values():
            conn.execute(stmt, group)
