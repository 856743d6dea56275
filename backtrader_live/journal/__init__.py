"""A durable trade journal in SQLite (default) or PostgreSQL.

``Journal.open(url)`` (schema upgraded by alembic on open), ``start_run()``,
``attach(cerebro, journal)`` before ``run_live``, ``close()`` after it.
``open_engine(url, readonly=True)`` reads a journal a bot is writing.
"""
from .analyzer import JournalAnalyzer, attach
from .core import Journal
from .database import JournalError, head_revision, open_engine, resolve_url
from . import tables

__all__ = ['Journal', 'JournalAnalyzer', 'JournalError', 'attach', 'head_revision',
           'open_engine', 'resolve_url', 'tables']
