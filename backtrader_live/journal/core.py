"""``Journal``: one database, one run being recorded, one writer thread."""
import datetime
import logging
import os
import socket

from sqlalchemy import func, select, update

from . import tables as t
from .database import open_engine
from .writer import Writer

log = logging.getLogger(__name__)


#: tables whose rows say which session (process) of the run wrote them
SESSION_TABLES = frozenset({'orders', 'order_events', 'fills', 'trades', 'emulated_orders'})


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class Journal:
    """Records a run. ``Journal.open(url)`` upgrades the schema; ``start_run``
    writes the run's row at once (not on the hot path: before trading);
    ``record(table, **row)`` queues a row; ``close()`` ends the run, writes
    what is queued and joins the writer thread."""

    def __init__(self, engine, queue_size=10000, put_timeout=5.0):
        self.engine = engine
        self.run_id = None
        self.session = 1
        self.writer = Writer(engine, queue_size, put_timeout)

    @classmethod
    def open(cls, url, base_dir=None, queue_size=10000, put_timeout=5.0):
        return cls(open_engine(url, base_dir), queue_size, put_timeout)

    def start_run(self, exchange=None, symbols=(), timeframe=None, paper=None, config=None,
                  name=None, resume=None):
        """A new run's id (or ``resume``: continue that run's history)."""
        with self.engine.begin() as conn:
            if resume is not None:
                found = conn.execute(select(t.runs.c.sessions).where(
                    t.runs.c.id == resume)).first()
                if found is None:
                    from .database import JournalError
                    raise JournalError('run %s is not in this journal' % resume)
                self.session = found[0] + 1
                conn.execute(update(t.runs).where(t.runs.c.id == resume).values(
                    status='running', ended_at=None, pid=os.getpid(),
                    host=socket.gethostname(), sessions=self.session))
                self.run_id = resume
            else:
                self.run_id = conn.execute(t.runs.insert().values(
                    name=name, started_at=utcnow(), status='running', exchange=exchange,
                    symbols=','.join(symbols), timeframe=timeframe, paper=paper,
                    config=config, host=socket.gethostname(),
                    pid=os.getpid())).inserted_primary_key[0]
        log.info('journal: recording run %s (session %d) in %s', self.run_id, self.session,
                 self.engine.url.render_as_string(hide_password=True))
        return self.run_id

    def record(self, table, **row):
        row['run_id'] = self.run_id
        if table in SESSION_TABLES:
            row['session'] = self.session
        self.writer.put(table, row)

    def flush(self, timeout=10.0):
        return self.writer.flush(timeout)

    def close(self, status='stopped', timeout=10.0):
        self.writer.stop(timeout)
        if self.run_id is not None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(update(t.runs).where(t.runs.c.id == self.run_id).values(
                        status=status, ended_at=utcnow()))
            except Exception as exc:    # the records matter more: logged
                log.error('journal: could not mark run %s %s: %s', self.run_id, status, exc)
        self.engine.dispose()

    def count(self, table):
        with self.engine.connect() as conn:
            tab = t.metadata.tables[table]
            return conn.execute(select(func.count()).select_from(tab)).scalar()
