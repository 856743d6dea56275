"""Sessions: a run continued after a crash (kill -9, a reboot) is one run
with several sessions; order refs restart at 1 in each process, so orders
are unique by (run, session, ref).

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_WITH_SESSION = ('order_events', 'fills', 'trades')


def upgrade():
    with op.batch_alter_table('runs') as batch:
        batch.add_column(sa.Column('sessions', sa.Integer, nullable=False,
                                   server_default='1'))
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('session', sa.Integer, nullable=False,
                                   server_default='1'))
        batch.drop_constraint('uq_orders_run_ref', type_='unique')
        batch.create_unique_constraint('uq_orders_run_session_ref',
                                       ['run_id', 'session', 'ref'])
    for name in _WITH_SESSION:
        with op.batch_alter_table(name) as batch:
            batch.add_column(sa.Column('session', sa.Integer, nullable=False,
                                       server_default='1'))


def downgrade():
    for name in _WITH_SESSION:
        with op.batch_alter_table(name) as batch:
            batch.drop_column('session')
    with op.batch_alter_table('orders') as batch:
        batch.drop_constraint('uq_orders_run_session_ref', type_='unique')
        batch.create_unique_constraint('uq_orders_run_ref', ['run_id', 'ref'])
        batch.drop_column('session')
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('sessions')
