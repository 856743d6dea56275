"""The journal on a real SQLite file and a real PostgreSQL server: schema by
alembic, records written off the caller's thread and never lost, fills
recorded once, readable while written, bad databases refused untouched."""
import sqlite3
import threading

import pytest
from sqlalchemy import select, text

from backtrader_live.journal import Journal, JournalError, head_revision, open_engine, tables
from backtrader_live.journal import database, writer as writer_mod
from helpers import eventually
from journalkit import db_url  # noqa: F401  (fixture)


def rows(engine, table):
    with engine.connect() as conn:
        return [r._asdict() for r in conn.execute(select(tables.metadata.tables[table]))]


def test_schema_is_migrated_on_open_and_matches_the_tables(db_url):  # noqa: F811
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    journal = Journal.open(db_url)
    try:
        with journal.engine.connect() as conn:
            assert database.current_revision(conn) == head_revision() == '0003'
            diff = compare_metadata(MigrationContext.configure(conn), tables.metadata)
        assert diff == [], 'tables.py and the alembic revisions disagree: %s' % diff
    finally:
        journal.close()
    Journal.open(db_url).close()        # a second open: already at head, no change


def test_fills_are_recorded_once_and_orders_updated(db_url):  # noqa: F811
    journal = Journal.open(db_url)
    try:
        run = journal.start_run('binance', ['BTC/USDT'], '1h', True, {'k': 1}, name='t')
        for _ in range(3):     # the same trade from REST and the stream, twice
            journal.record('fills', exchange='binance', symbol='BTC/USDT', trade_id='42',
                           size=0.5, price=100.0, comm=0.01)
        journal.record('fills', exchange='binance', symbol='ETH/USDT', trade_id='42',
                       size=1.0, price=10.0)
        journal.record('orders', ref=1, client_id='cid-1', side='buy', size=0.5)
        journal.record('orders', ref=1, exchange_id='777')
        assert journal.flush(10)
        fills = rows(journal.engine, 'fills')
        assert sorted(f['symbol'] for f in fills) == ['BTC/USDT', 'ETH/USDT']
        (order,) = rows(journal.engine, 'orders')
        assert (order['client_id'], order['exchange_id'], order['run_id']) == \
            ('cid-1', '777', run)
    finally:
        journal.close()
    (run_row,) = rows(open_engine(db_url, readonly=True), 'runs')
    assert run_row['status'] == 'stopped' and run_row['config'] == {'k': 1}


class GatedWriter(writer_mod.Writer):
    """The real writer, held at its database write until the test opens the gate."""

    def __init__(self, *args, **kwargs):
        self.gate = threading.Event()
        super().__init__(*args, **kwargs)

    def _write(self, batch):
        self.gate.wait(10)
        super()._write(batch)


def test_a_full_queue_loses_nothing(db_url, caplog):  # noqa: F811
    journal = Journal.open(db_url)
    journal.writer.stop()
    journal.writer = GatedWriter(journal.engine, queue_size=2, put_timeout=0.01)
    try:
        journal.start_run('binance')
        for i in range(50):
            journal.record('equity', at=__import__('datetime').datetime(2024, 1, 1), value=i)
        assert 'queue full' in caplog.text
        assert journal.writer.pending == 50
        journal.writer.gate.set()
        assert journal.flush(20)
        assert sorted(r['value'] for r in rows(journal.engine, 'equity')) == list(range(50))
    finally:
        journal.writer.gate.set()
        journal.close()


def test_readable_read_only_while_the_bot_writes(db_url):  # noqa: F811
    import datetime
    journal = Journal.open(db_url)
    reader = open_engine(db_url, readonly=True)
    seen = []
    try:
        journal.start_run('binance')
        for batch in range(5):
            for i in range(100):
                journal.record('equity', at=datetime.datetime(2024, 1, 1), value=float(i))
            with reader.connect() as conn:       # a second connection, during writes
                seen.append(conn.execute(text('SELECT count(*) FROM equity')).scalar())
            journal.flush(10)
        with reader.connect() as conn:
            assert conn.execute(text('SELECT count(*) FROM equity')).scalar() == 500
            with pytest.raises(Exception, match='(?i)read.only|readonly'):
                conn.execute(text("DELETE FROM equity"))
        assert seen == sorted(seen) and seen[-1] >= 400
    finally:
        journal.close()
        reader.dispose()


def test_writes_wait_while_the_database_is_away_then_resume(tmp_path, monkeypatch, caplog):
    """Another process holds the SQLite file's write lock: writes fail, are
    kept and retried (warned); none is lost once the lock goes."""
    import datetime
    monkeypatch.setattr(database, 'SQLITE_BUSY_TIMEOUT', 0.05)
    path = tmp_path / 'journal.db'
    journal = Journal.open('sqlite:///%s' % path)
    blocker = sqlite3.connect(str(path), isolation_level=None)
    try:
        journal.start_run('binance')
        blocker.execute('BEGIN EXCLUSIVE')
        for i in range(10):
            journal.record('equity', at=datetime.datetime(2024, 1, 1), value=float(i))
        eventually(lambda: journal.writer.failures >= 1, 10)
        assert 'trading goes on' in caplog.text and 'locked' in journal.writer.last_error
        assert journal.writer.pending == 10
        blocker.execute('COMMIT')
        assert journal.flush(20)
        assert len(rows(journal.engine, 'equity')) == 10
    finally:
        blocker.close()
        journal.close()


def test_newer_schema_refused_untouched(db_url):  # noqa: F811
    Journal.open(db_url).close()
    engine = open_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    for readonly in (False, True):
        with pytest.raises(JournalError, match='revision 9999, newer than this'):
            open_engine(db_url, readonly=readonly)
    engine = database.make_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text('SELECT version_num FROM alembic_version')).scalar() == '9999'
    engine.dispose()


def test_not_a_journal_refused(db_url):  # noqa: F811
    engine = database.make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text('CREATE TABLE runs (x integer)'))
    engine.dispose()
    with pytest.raises(JournalError, match='not a backtrader_live journal'):
        Journal.open(db_url)


def test_corrupt_sqlite_refused_and_never_overwritten(tmp_path):
    path = tmp_path / 'journal.db'
    garbage = b'this is not a database' * 100
    path.write_bytes(garbage)
    with pytest.raises(JournalError, match='not a usable database'):
        Journal.open('sqlite:///%s' % path)
    with pytest.raises(JournalError, match='not a usable database'):
        open_engine('sqlite:///%s' % path, readonly=True)
    assert path.read_bytes() == garbage


def test_locked_sqlite_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(database, 'SQLITE_BUSY_TIMEOUT', 0.05)
    path = tmp_path / 'journal.db'
    blocker = sqlite3.connect(str(path), isolation_level=None)
    blocker.execute('CREATE TABLE t (x integer)')
    blocker.execute('BEGIN EXCLUSIVE')
    try:
        with pytest.raises(JournalError, match='locked'):
            Journal.open('sqlite:///%s' % path)
    finally:
        blocker.close()


def test_bad_urls(tmp_path):
    with pytest.raises(JournalError, match='not a database URL'):
        Journal.open('::nonsense://')
    with pytest.raises(JournalError, match='is not supported'):
        Journal.open('mysql://u@localhost/db')
    with pytest.raises(JournalError, match='does not exist'):
        open_engine(str(tmp_path / 'none.db'), readonly=True)
    assert database.resolve_url('j.db', '/base').database == '/base/j.db'


def test_risk_alerts_and_kill_switch_changes_are_journaled(db_url):  # noqa: F811
    """A backtest (the same analyzer runs there) breaching the drawdown limit:
    the alert and the kill switch tripping are recorded once each."""
    import datetime
    from backtrader_live.analyzers import RiskAnalyzer
    from backtrader_live.journal import attach
    from test_risk_kit import Script, buy, cerebro, synthetic_rows
    dip = synthetic_rows([100.0] * 5 + [110.0] * 5 + [105.0, 100.0, 95.0, 90.0] + [90.0] * 10)
    journal = Journal.open(db_url)
    try:
        journal.start_run('backtest')
        c = cerebro(dip, commission=0.0)
        c.addstrategy(Script, script={2: buy(90)})
        c.addanalyzer(RiskAnalyzer, _name='risk', max_position_risk=None,
                      daily_loss_limit=None)
        attach(c, journal, exchange='backtest')
        c.run()
        assert journal.flush(10)
        events = rows(journal.engine, 'risk_events')
        assert [(e['kind'], e['type'], e['active']) for e in events] == [
            ('alert', 'drawdown', None), ('kill_switch', None, ['drawdown'])]
        alert = events[0]
        assert alert['limit'] == 0.15 and alert['at'] == datetime.datetime(2021, 1, 1, 13)
        assert 'drawdown 16.51%' in alert['message']
        (fill,) = rows(journal.engine, 'fills')
        assert (fill['size'], fill['trade_id'], fill['symbol']) == (90.0, 'ref%d#1' % (
            fill['order_ref']), fill['symbol'])
        assert len(rows(journal.engine, 'equity')) == len(dip)
    finally:
        journal.close()


def test_a_missing_postgres_skips_for_developers_but_fails_under_ci(monkeypatch):
    from journalkit import PG_ENV, postgres_server_url
    monkeypatch.delenv(PG_ENV, raising=False)
    monkeypatch.delenv('CI', raising=False)
    with pytest.raises(pytest.skip.Exception, match='start_test_postgres'):
        postgres_server_url()
    monkeypatch.setenv('CI', 'true')
    with pytest.raises(pytest.fail.Exception, match='under CI the PostgreSQL journal tests '
                       'must run'):
        postgres_server_url()
    monkeypatch.setenv(PG_ENV, 'postgresql+psycopg://u@127.0.0.1:1/db')
    assert postgres_server_url().endswith(':1/db')


def test_a_journal_of_the_first_schema_is_upgraded_on_open_keeping_its_rows(db_url):  # noqa: F811,E501
    """alembic on a real older database: revision 0001 with a run and an
    order, opened by this version: upgraded to the head, rows kept, session 1."""
    from alembic import command
    engine = database.make_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(database._alembic_config(conn), '0001')
        conn.execute(text("INSERT INTO runs (id, started_at, status) "
                          "VALUES (1, '2024-01-01 00:00:00', 'stopped')"))
        conn.execute(text("INSERT INTO orders (run_id, ref, client_id) VALUES (1, 1, 'c1')"))
    engine.dispose()
    journal = Journal.open(db_url)
    try:
        with journal.engine.connect() as conn:
            assert database.current_revision(conn) == '0003'
        (order,) = rows(journal.engine, 'orders')
        assert (order['client_id'], order['session']) == ('c1', 1)
        assert rows(journal.engine, 'runs')[0]['sessions'] == 1
        assert journal.start_run(resume=1) == 1 and journal.session == 2
        journal.record('orders', ref=1, client_id='c2')      # ref 1 again: a new process
        assert journal.flush(10)
        assert [(o['session'], o['client_id']) for o in rows(journal.engine, 'orders')] == \
            [(1, 'c1'), (2, 'c2')]
        with pytest.raises(JournalError, match='run 7 is not in this journal'):
            journal.start_run(resume=7)
    finally:
        journal.close()


def test_a_run_still_recorded_by_a_live_process_is_not_continued(tmp_path):
    import socket
    import subprocess
    import sys
    from sqlalchemy import update
    from backtrader_live.journal.recovery import pid_alive, unfinished_run
    gone = subprocess.Popen([sys.executable, '-c', 'pass'])     # a pid that is gone
    gone.wait()
    journal = Journal.open('sqlite:///%s' % (tmp_path / 'j.db'))
    try:
        assert unfinished_run(journal.engine, 'bot.toml') is None
        run = journal.start_run('binance', name='bot.toml')
        for pid, host, expected in ((gone.pid, socket.gethostname(), run),
                                    (None, None, run)):
            with journal.engine.begin() as conn:
                conn.execute(update(tables.runs).values(pid=pid, host=host))
            assert unfinished_run(journal.engine, 'bot.toml') == expected
        for pid, host in ((1, socket.gethostname()), (gone.pid, 'another-host')):
            with journal.engine.begin() as conn:
                conn.execute(update(tables.runs).values(pid=pid, host=host))
            assert pid_alive(host, pid)
            with pytest.raises(JournalError, match='is being recorded by process'):
                unfinished_run(journal.engine, 'bot.toml')
    finally:
        journal.close()
    assert unfinished_run(open_engine('sqlite:///%s' % (tmp_path / 'j.db')), 'bot.toml') is None


def test_report_statistics_come_from_empyrical(monkeypatch):
    import sys
    from backtrader_live.journal.report import statistics
    stats = statistics([100.0, 110.0, 99.0, 120.0], '1h')
    assert stats['max_drawdown'] == pytest.approx(0.1)          # 110 -> 99
    assert stats['sharpe'] > 0 and stats['annual_volatility'] > 0
    assert statistics([100.0, 101.0], '1h') == {}
    monkeypatch.setitem(sys.modules, 'empyrical', None)
    assert 'backtrader-live[report]' in statistics([1.0, 2.0, 3.0], '1h')['note']
