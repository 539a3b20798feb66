"""a revoked connection can be removed from the lists

``connections.removed_at``: set when its owner removes a revoked connection from the
Connections page and the dashboard (issue 20). The row stays, so its notifications stay in the
history. Every existing row is shown, as before (NULL).

Revision ID: 3c1f0a9d7e21
Revises: 5a1e0c9b7d21
Create Date: 2026-12-05 21:58:00.000000
"""

import sqlalchemy as sa
from alembic import op

import notify_site.db_types


revision = '3c1f0a9d7e21'
down_revision = '5a1e0c9b7d21'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('removed_at', notify_site.db_types.UTCDateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.drop_column('removed_at')
