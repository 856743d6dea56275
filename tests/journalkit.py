"""Journal databases for tests: a SQLite file, and a fresh database on the
PostgreSQL server .ci/run starts (BTL_TEST_POSTGRES_URL). Without that URL
the PostgreSQL cases skip, saying why, except under CI (CI=true), where a
missing server is a failure."""
import os
import uuid

import pytest
import sqlalchemy

PG_ENV = 'BTL_TEST_POSTGRES_URL'


def postgres_server_url():
    url = os.environ.get(PG_ENV)
    if url:
        return url
    why = ('%s is not set: no PostgreSQL server for the journal tests (.ci/run starts one; '
           'by hand: . .ci/postgres.sh && start_test_postgres)' % PG_ENV)
    if os.environ.get('CI', '').lower() in ('1', 'true', 'yes'):
        pytest.fail('under CI the PostgreSQL journal tests must run: ' + why)
    pytest.skip(why)


class PostgresDatabase:
    """A database of its own on the test server, dropped afterwards."""

    def __init__(self, server_url):
        self.server = sqlalchemy.create_engine(server_url, isolation_level='AUTOCOMMIT')
        self.name = 'btl_test_' + uuid.uuid4().hex[:12]
        with self.server.connect() as conn:
            conn.execute(sqlalchemy.text('CREATE DATABASE %s' % self.name))
        self.url = sqlalchemy.engine.make_url(server_url).set(database=self.name) \
            .render_as_string(hide_password=False)

    def drop(self):
        with self.server.connect() as conn:
            conn.execute(sqlalchemy.text('DROP DATABASE IF EXISTS %s WITH (FORCE)' % self.name))
        self.server.dispose()


@pytest.fixture(params=['sqlite', 'postgresql'])
def db_url(request, tmp_path):
    """The URL of an empty journal database on each backend."""
    if request.param == 'sqlite':
        yield 'sqlite:///' + str(tmp_path / 'journal.db')
        return
    database = PostgresDatabase(postgres_server_url())
    try:
        yield database.url
    finally:
        database.drop()
