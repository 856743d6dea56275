"""The first journal schema: runs, orders and their status changes, fills,
trades, snapshots, equity, risk events, stream events.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def _run_id():
    return sa.Column('run_id', sa.Integer, sa.ForeignKey('runs.id'), nullable=False,
                     index=True)


def upgrade():
    op.create_table(
        'runs', sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('name', sa.String(200)),
        sa.Column('started_at', sa.DateTime, nullable=False),
        sa.Column('ended_at', sa.DateTime),
        sa.Column('status', sa.String(20), nullable=False),
        sa.Column('exchange', sa.String(50)), sa.Column('symbols', sa.String(500)),
        sa.Column('timeframe', sa.String(20)), sa.Column('paper', sa.Boolean),
        sa.Column('config', sa.JSON), sa.Column('host', sa.String(200)),
        sa.Column('pid', sa.Integer))
    op.create_table(
        'orders', sa.Column('id', sa.Integer, primary_key=True), _run_id(),
        sa.Column('ref', sa.Integer, nullable=False),
        sa.Column('client_id', sa.String(100), index=True),
        sa.Column('exchange_id', sa.String(100)), sa.Column('symbol', sa.String(50)),
        sa.Column('side', sa.String(4)), sa.Column('type', sa.String(20)),
        sa.Column('size', sa.Float), sa.Column('price', sa.Float),
        sa.Column('created_at', sa.DateTime),
        sa.UniqueConstraint('run_id', 'ref', name='uq_orders_run_ref'))
    op.create_table(
        'order_events', sa.Column('id', sa.Integer, primary_key=True), _run_id(),
        sa.Column('order_ref', sa.Integer, nullable=False),
        sa.Column('client_id', sa.String(100)),
        sa.Column('status', sa.String(20), nullable=False),
        sa.Column('executed_size', sa.Float), sa.Column('executed_price', sa.Float),
        sa.Column('comm', sa.Float), sa.Column('reason', sa.Text),
        sa.Column('at', sa.DateTime, nullable=False))
    op.create_table(
        'fills', sa.Column('id', sa.Integer, primary_key=True), _run_id(),
        sa.Column('exchange', sa.String(50), nullable=False),
        sa.Column('symbol', sa.String(50), nullable=False),
        sa.Column('trade_id', sa.String(100), nullable=False),
        sa.Column('order_ref', sa.Integer), sa.Column('client_id', sa.String(100)),
        sa.Column('exchange_order_id', sa.String(100)), sa.Column('side', sa.String(4)),
        sa.Column('size', sa.Float, nullable=False),
        sa.Column('price', sa.Float, nullable=False),
        sa.Column('comm', sa.Float), sa.Column('pnl', sa.Float),
        sa.Column('at', sa.DateTime),
        sa.UniqueConstraint('exchange', 'symbol', 'trade_id', name='uq_fills_trade'))
    op.create_table(
        'trades', sa.Column('id', sa.Integer, primary_key=True), _run_id(),
        sa.Column('symbol', sa.String(50)), sa.Column('ref', sa.Integer),
        sa.Column('pnl', sa.Float), sa.Column('pnlcomm', sa.Float),
        sa.Column('commission', sa.Float), sa.Column('barlen', sa.Integer),
        sa.Column('opened_at', sa.DateTime), sa.Column('closed_at', sa.DateTime))
    op.create_table(
        'snapshots', sa.Column('id', sa.Integer, primary_key=True), _run_id(),
        sa.Column('kind', sa.String(10), nullable=False),
        sa.Column('name', sa.String(50), nullable=False),
        sa.Column('size', sa.Float), sa.Column('price', sa.Float),
        sa.Column('at', sa.DateTime, nullable=False))
    op.create_table(
        'equity', sa.Column('id', sa.Integer, primary_key=True), _run_id(),
        sa.Column('at', sa.DateTime, nullable=False),
        sa.Column('value', sa.Float, nullable=False), sa.Column('cash', sa.Float))
    op.create_table(
        'risk_events', sa.Column('id', sa.Integer, primary_key=True), _run_id(),
        sa.Column('kind', sa.String(20), nullable=False), sa.Column('type', sa.String(50)),
        sa.Column('value', sa.Float), sa.Column('limit', sa.Float),
        sa.Column('active', sa.JSON), sa.Column('message', sa.Text),
        sa.Column('at', sa.DateTime, nullable=False))
    op.create_table(
        'stream_events', sa.Column('id', sa.Integer, primary_key=True), _run_id(),
        sa.Column('source', sa.String(10), nullable=False),
        sa.Column('name', sa.String(100)), sa.Column('status', sa.String(50)),
        sa.Column('message', sa.Text), sa.Column('at', sa.DateTime, nullable=False))


def downgrade():
    for name in ('stream_events', 'risk_events', 'equity', 'snapshots', 'trades', 'fills',
                 'order_events', 'orders', 'runs'):
        op.drop_table(name)
