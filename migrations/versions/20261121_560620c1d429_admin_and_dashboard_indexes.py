"""admin and dashboard indexes

- connections (rate_remaining, id): the admin list, lowest remaining first, unknown last;
- connections (status, rate_remaining, id): the same order within one status, and its counts;
- notifications (status, finished_at): the admin's recent failures and its hourly chart;
- notifications (owner_id, created_at) gains status, so a user's hourly counts on the
  dashboard are read from the index alone (same name, one more column).

Index changes only: no table is rebuilt (batch mode runs CREATE/DROP INDEX directly). On a
large PostgreSQL table CREATE INDEX blocks writes to it while it builds (about a second per
million rows).

Revision ID: 560620c1d429
Revises: a01db453574a
Create Date: 2026-11-21 23:32:43.047819
"""

from alembic import op

revision = '560620c1d429'
down_revision = 'a01db453574a'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.create_index('ix_connections_rate_remaining', ['rate_remaining', 'id'], unique=False)
        batch_op.create_index('ix_connections_status_remaining', ['status', 'rate_remaining', 'id'], unique=False)

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_owner_created')
        batch_op.create_index('ix_notifications_owner_created', ['owner_id', 'created_at', 'status'], unique=False)
        batch_op.create_index('ix_notifications_status_finished', ['status', 'finished_at'], unique=False)


def downgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_status_finished')
        batch_op.drop_index('ix_notifications_owner_created')
        batch_op.create_index('ix_notifications_owner_created', ['owner_id', 'created_at'], unique=False)

    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.drop_index('ix_connections_status_remaining')
        batch_op.drop_index('ix_connections_rate_remaining')
