"""Open a journal database: SQLite (one file, WAL) or PostgreSQL by URL,
its schema brought to the newest alembic revision on open.

A journal that is locked, corrupt, or from a newer backtrader_live is a
:class:`JournalError` that says so; nothing is ever overwritten or dropped.
"""
import logging
import os

from sqlalchemy import create_engine, event, inspect as sa_inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError

from ..errors import ConfigError

log = logging.getLogger(__name__)

MIGRATIONS = os.path.join(os.path.dirname(__file__), 'migrations')
#: seconds a SQLite writer waits for another writer's lock
SQLITE_BUSY_TIMEOUT = 5.0


class JournalError(ConfigError):
    """The journal database cannot be used (locked, corrupt, newer schema...)."""


def resolve_url(url, base_dir=None):
    """``sqlite:///relative.db`` made absolute against ``base_dir``; a bare
    file path is a SQLite file."""
    if '://' not in url:
        url = 'sqlite:///' + url
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise JournalError('journal URL %r is not a database URL (sqlite:///file.db or '
                           'postgresql+psycopg://user@host/db): %s' % (url, exc)) from None
    if parsed.get_backend_name() == 'sqlite' and parsed.database and \
            parsed.database != ':memory:' and not os.path.isabs(parsed.database):
        parsed = parsed.set(database=os.path.join(base_dir or os.getcwd(), parsed.database))
    return parsed


def _sqlite_pragmas(readonly):
    def on_connect(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        cur.execute('PRAGMA busy_timeout=%d' % int(SQLITE_BUSY_TIMEOUT * 1000))
        if not readonly:
            # WAL: readers (a report while the bot runs) never block the writer
            cur.execute('PRAGMA journal_mode=WAL')
            cur.execute('PRAGMA synchronous=NORMAL')
            cur.execute('PRAGMA foreign_keys=ON')
        cur.close()
    return on_connect


def make_engine(url, base_dir=None, readonly=False):
    parsed = resolve_url(str(url), base_dir)
    backend = parsed.get_backend_name()
    if backend == 'sqlite':
        if readonly:
            path = parsed.database
            if not os.path.exists(path):
                raise JournalError('journal %s does not exist' % path)
            engine = create_engine('sqlite:///file:%s?mode=ro&uri=true' % path)
        else:
            engine = create_engine(parsed)
        event.listen(engine, 'connect', _sqlite_pragmas(readonly))
        return engine
    if backend == 'postgresql':
        args = {'options': '-c default_transaction_read_only=on'} if readonly else {}
        return create_engine(parsed, pool_pre_ping=True, connect_args=args)
    raise JournalError('journal database %r is not supported: use sqlite:///file.db or '
                       'postgresql+psycopg://...' % backend)


def _alembic_config(connection):
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option('script_location', MIGRATIONS)
    cfg.attributes['connection'] = connection
    return cfg


def head_revision():
    from alembic.script import ScriptDirectory
    cfg = _alembic_config(None)
    return ScriptDirectory.from_config(cfg).get_current_head()


def current_revision(connection):
    from alembic.runtime.migration import MigrationContext
    return MigrationContext.configure(connection).get_current_revision()


def _check_revision(connection, where):
    from alembic.script import ScriptDirectory
    rev = current_revision(connection)
    known = {s.revision for s in ScriptDirectory.from_config(
        _alembic_config(None)).walk_revisions()}
    if rev is not None and rev not in known:
        raise JournalError('journal %s has schema revision %s, newer than this '
                           'backtrader_live knows (newest: %s): upgrade backtrader_live; '
                           'the journal is left untouched' % (where, rev, head_revision()))
    if rev is None and sa_inspect(connection).get_table_names():
        tables = set(sa_inspect(connection).get_table_names())
        if 'runs' in tables or 'alembic_version' not in tables:
            raise JournalError('%s holds tables but no journal schema revision: not a '
                               'backtrader_live journal (left untouched)' % where)
    return rev


def upgrade(engine):
    """Bring the schema to the newest revision (a no-op when current)."""
    from alembic import command
    where = engine.url.render_as_string(hide_password=True)
    try:
        with engine.begin() as conn:
            rev = _check_revision(conn, where)
            if rev != head_revision():
                log.info('journal %s: upgrading schema %s -> %s', where, rev,
                         head_revision())
                command.upgrade(_alembic_config(conn), 'head')
    except JournalError:
        raise
    except OperationalError as exc:
        raise JournalError('journal %s cannot be opened: %s (locked by another process, '
                           'or the server is unreachable)' % (where, exc.orig)) from None
    except DatabaseError as exc:
        raise JournalError('journal %s is not a usable database (corrupt?): %s; it is left '
                           'untouched' % (where, exc.orig)) from None


def open_engine(url, base_dir=None, readonly=False):
    """An engine on an up-to-date journal (read-only: checked, never changed)."""
    engine = make_engine(url, base_dir, readonly)
    if readonly:
        where = engine.url.render_as_string(hide_password=True)
        try:
            with engine.connect() as conn:
                rev = _check_revision(conn, where)
        except OperationalError as exc:
            raise JournalError('journal %s cannot be read: %s' % (where, exc.orig)) from None
        except DatabaseError as exc:
            raise JournalError('journal %s is not a usable database (corrupt?): %s'
                               % (where, exc.orig)) from None
        if rev is None:
            raise JournalError('journal %s is empty: no run was recorded' % where)
        return engine
    upgrade(engine)
    return engine
