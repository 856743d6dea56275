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
import queue
import threading
import time

from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError

from . import tables as t

log = logging.getLogger(__name__)

#: per table: the columns whose conflict means "already recorded" (seen twice)
IGNORE_DUPLICATES = {'fills': ('exchange', 'symbol', 'trade_id')}
#: per table: conflict columns and the columns a later sighting updates
UPSERT = {'orders': (('run_id', 'session', 'ref'), ('exchange_id', 'client_id'))}
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

    def __init__(self, engine, queue_size=10000, put_timeout=5.0, name='bt-live-journal'):
        self.engine = engine
        self.put_timeout = put_timeout
        self._queue = queue.Queue(maxsize=queue_size)
        self._overflow = collections.deque()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0                 # records put and not yet committed
        self._stop = threading.Event()
        self.written = 0
        self.failures = 0                 # failed write attempts (retried)
        self.last_error = None
        self._warned_full = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- callers ---------------------------------------------------------------------
    def put(self, table, row):
        with self._lock:
            self._pending += 1
        try:
            self._queue.put((table, row), timeout=self.put_timeout)
        except queue.Full:
            with self._lock:
                self._overflow.append((table, row))
                warn, self._warned_full = not self._warned_full, True
            if warn:
                log.warning('journal: queue full for %.1fs (database slow or away?); '
                            'records are kept in memory until written', self.put_timeout)

    def flush(self, timeout=10.0):
        """Wait until every record put so far is committed; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._idle.wait(min(left, 0.5))
        return True

    @property
    def pending(self):
        return self._pending

    def stop(self, timeout=10.0):
        """Write what is queued (at most ``timeout`` s), stop and join the thread."""
        self.flush(timeout)
        self._stop.set()
        self._thread.join(timeout)
        if self._pending:
            log.error('journal: %d records could not be written before stopping (%s)',
                      self._pending, self.last_error)

    # -- the thread ------------------------------------------------------------------
    def _take(self):
        batch = []
        with self._lock:
            while self._overflow and len(batch) < BATCH:
                batch.append(self._overflow.popleft())
        try:
            if not batch:
                batch.append(self._queue.get(timeout=0.1))
            while len(batch) < BATCH:
                batch.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        return batch

    def _run(self):
        pause = 0.5
        batch = []
        while True:
            if not batch:
                if self._stop.is_set() and self._queue.empty() and not self._overflow:
                    return
                batch = self._take()
                if not batch:
                    continue
            try:
                self._write(batch)
            except DBAPIError as exc:
                self._failed(exc, len(batch), pause)
                if self._stop.wait(pause):
                    return
                pause = min(pause * 2, RETRY_MAX)
                continue
            if self.failures and pause > 0.5:
                log.warning('journal: database reachable again; writing resumed')
            pause = 0.5
            with self._idle:
                self._pending -= len(batch)
                self.written += len(batch)
                self._idle.notify_all()
            batch = []

    def _failed(self, exc, count, pause):
        self.failures += 1
        self.last_error = '%s: %s' % (type(exc).__name__, exc.orig if exc.orig else exc)
        log.warning('journal: writing %d records failed (%s); trading goes on, %d records '
                    'wait in memory, retrying in %.1fs', count, self.last_error,
                    self._pending, pause)

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
