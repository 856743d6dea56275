"""The journal's tables (SQLAlchemy Core). Schema changes go through an
alembic revision in migrations/versions; tests/test_journal.py checks that
the migrated database matches these definitions."""
from sqlalchemy import (JSON, Boolean, Column, DateTime, Float, ForeignKey, Integer,
                        MetaData, String, Table, Text, UniqueConstraint)

metadata = MetaData()


def _run_id():
    return Column('run_id', Integer, ForeignKey('runs.id'), nullable=False, index=True)


def _session():
    """Which process of the run (1, then 2 after a crash and restart...)."""
    return Column('session', Integer, nullable=False, server_default='1')


runs = Table(
    'runs', metadata,
    Column('id', Integer, primary_key=True),
    Column('name', String(200)),
    Column('started_at', DateTime, nullable=False),
    Column('ended_at', DateTime),
    Column('status', String(20), nullable=False),      # running, stopped, failed
    Column('exchange', String(50)),
    Column('symbols', String(500)),
    Column('timeframe', String(20)),
    Column('paper', Boolean),
    Column('config', JSON),
    Column('host', String(200)),
    Column('pid', Integer),
    Column('sessions', Integer, nullable=False, server_default='1'),   # processes so far
)

orders = Table(
    'orders', metadata,
    Column('id', Integer, primary_key=True),
    _run_id(),
    Column('ref', Integer, nullable=False),             # backtrader's order.ref
    Column('client_id', String(100), index=True),
    Column('exchange_id', String(100)),
    Column('symbol', String(50)),
    Column('side', String(4)),
    Column('type', String(20)),
    Column('size', Float),
    Column('price', Float),
    Column('created_at', DateTime),
    _session(),
    UniqueConstraint('run_id', 'session', 'ref', name='uq_orders_run_session_ref'),
)

order_events = Table(          # each status change of an order, in order
    'order_events', metadata,
    Column('id', Integer, primary_key=True),
    _run_id(),
    Column('order_ref', Integer, nullable=False),
    Column('client_id', String(100)),
    Column('status', String(20), nullable=False),
    Column('executed_size', Float),
    Column('executed_price', Float),
    Column('comm', Float),
    Column('reason', Text),
    Column('at', DateTime, nullable=False),
    _session(),
)

fills = Table(
    'fills', metadata,
    Column('id', Integer, primary_key=True),
    _run_id(),
    Column('exchange', String(50), nullable=False),
    Column('symbol', String(50), nullable=False),
    Column('trade_id', String(100), nullable=False),
    Column('order_ref', Integer),
    Column('client_id', String(100)),
    Column('exchange_order_id', String(100)),
    Column('side', String(4)),
    Column('size', Float, nullable=False),              # signed: sells < 0
    Column('price', Float, nullable=False),
    Column('comm', Float),
    Column('pnl', Float),
    Column('at', DateTime),
    _session(),
    UniqueConstraint('exchange', 'symbol', 'trade_id', name='uq_fills_trade'),
)

trades = Table(                # backtrader's closed trades
    'trades', metadata,
    Column('id', Integer, primary_key=True),
    _run_id(),
    Column('symbol', String(50)),
    Column('ref', Integer),
    Column('pnl', Float),
    Column('pnlcomm', Float),
    Column('commission', Float),
    Column('barlen', Integer),
    Column('opened_at', DateTime),
    Column('closed_at', DateTime),
    _session(),
)

snapshots = Table(             # positions and balances
    'snapshots', metadata,
    Column('id', Integer, primary_key=True),
    _run_id(),
    Column('kind', String(10), nullable=False),         # position, balance
    Column('name', String(50), nullable=False),         # symbol or asset
    Column('size', Float),
    Column('price', Float),
    Column('at', DateTime, nullable=False),
)

equity = Table(
    'equity', metadata,
    Column('id', Integer, primary_key=True),
    _run_id(),
    Column('at', DateTime, nullable=False),             # bar time
    Column('value', Float, nullable=False),
    Column('cash', Float),
)

risk_events = Table(
    'risk_events', metadata,
    Column('id', Integer, primary_key=True),
    _run_id(),
    Column('kind', String(20), nullable=False),         # alert, kill_switch
    Column('type', String(50)),
    Column('value', Float),
    Column('limit', Float),
    Column('active', JSON),
    Column('message', Text),
    Column('at', DateTime, nullable=False),
)

stream_events = Table(
    'stream_events', metadata,
    Column('id', Integer, primary_key=True),
    _run_id(),
    Column('source', String(10), nullable=False),       # data, store, error
    Column('name', String(100)),
    Column('status', String(50)),
    Column('message', Text),
    Column('at', DateTime, nullable=False),
)

emulated_orders = Table(       # orders the broker emulates or links (rearm.py), as they are now
    'emulated_orders', metadata,
    Column('id', Integer, primary_key=True),
    _run_id(),
    Column('ref', Integer, nullable=False),             # backtrader's order.ref
    Column('symbol', String(50), nullable=False),
    Column('side', String(4), nullable=False),
    Column('exectype', String(20), nullable=False),     # Stop, StopTrail, Close, Limit...
    Column('role', String(10), nullable=False),         # local, held, exchange, firing
    Column('status', String(20), nullable=False),       # backtrader's status name
    Column('size', Float),                              # abs, as created (or as re-sized)
    Column('filled', Float),                            # abs, executed so far
    Column('price', Float),                             # the stop or limit price now
    Column('pricelimit', Float),
    Column('trailamount', Float),
    Column('trailpercent', Float),
    Column('created_dt', Float),                        # backtrader date numbers
    Column('seen_dt', Float),                           # the last bar checked with price
    Column('valid', Float),
    Column('dteos', Float),
    Column('client_id', String(100)),                   # once on the exchange
    Column('parent_ref', Integer),                      # a bracket child's parent
    Column('oco_ref', Integer),                         # the first order of its OCO group
    Column('protective', Boolean),                      # the OCO pair of a bracket's children
    Column('options', JSON),                            # reduceOnly, timeInForce...
    Column('rearmed_from', String(30)),                 # 'session:ref' it continues
    Column('reason', Text),                             # why it ended, or was not re-armed
    Column('updated_at', DateTime, nullable=False),
    _session(),
    UniqueConstraint('run_id', 'session', 'ref', name='uq_emulated_run_session_ref'),
)
