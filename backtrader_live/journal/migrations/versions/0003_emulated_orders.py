"""Emulated orders and order links: what the broker holds or watches itself
(bracket children waiting for their parent, local trailing stops, Close
orders, OCO links), one row per order kept up to date, so a restarted
process re-arms them (backtrader_live/rearm.py).

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'emulated_orders', sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('run_id', sa.Integer, sa.ForeignKey('runs.id'), nullable=False,
                  index=True),
        sa.Column('ref', sa.Integer, nullable=False),
        sa.Column('symbol', sa.String(50), nullable=False),
        sa.Column('side', sa.String(4), nullable=False),
        sa.Column('exectype', sa.String(20), nullable=False),
        sa.Column('role', sa.String(10), nullable=False),
        sa.Column('status', sa.String(20), nullable=False),
        sa.Column('size', sa.Float), sa.Column('filled', sa.Float),
        sa.Column('price', sa.Float), sa.Column('pricelimit', sa.Float),
        sa.Column('trailamount', sa.Float), sa.Column('trailpercent', sa.Float),
        sa.Column('created_dt', sa.Float), sa.Column('seen_dt', sa.Float),
        sa.Column('valid', sa.Float), sa.Column('dteos', sa.Float),
        sa.Column('client_id', sa.String(100)), sa.Column('parent_ref', sa.Integer),
        sa.Column('oco_ref', sa.Integer), sa.Column('protective', sa.Boolean),
        sa.Column('options', sa.JSON), sa.Column('rearmed_from', sa.String(30)),
        sa.Column('reason', sa.Text),
        sa.Column('updated_at', sa.DateTime, nullable=False),
        sa.Column('session', sa.Integer, nullable=False, server_default='1'),
        sa.UniqueConstraint('run_id', 'session', 'ref', name='uq_emulated_run_session_ref'))


def downgrade():
    op.drop_table('emulated_orders')
