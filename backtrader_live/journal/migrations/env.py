"""alembic environment: run on the connection the journal hands over
(``config.attributes['connection']``), never on a URL of its own."""
from alembic import context

from backtrader_live.journal.tables import metadata

connection = context.config.attributes['connection']
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == 'sqlite')
with context.begin_transaction():
    context.run_migrations()
