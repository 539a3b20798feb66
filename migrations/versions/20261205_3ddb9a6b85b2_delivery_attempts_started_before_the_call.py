"""delivery attempts recorded as started before the call, finished after it

An attempt row is now written before the Notify call (outcome and finished_at NULL while the
call is in flight) and carries the fencing token of the claim that made it, so an attempt a
crash interrupted stays in the history (notify_site/services/attempts.py).

Revision ID: 3ddb9a6b85b2
Revises: 141a8c6300d1
Create Date: 2026-12-05 03:43:48.890449
"""

import sqlalchemy as sa
from alembic import op

import notify_site.db_types


revision = '3ddb9a6b85b2'
down_revision = '141a8c6300d1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_token', sa.String(length=36), nullable=True))
        batch_op.alter_column('outcome',
               existing_type=sa.String(length=16),
               nullable=True)
        batch_op.alter_column('finished_at',
               existing_type=notify_site.db_types.UTCDateTime(timezone=True),
               nullable=True)


def downgrade():
    # The old schema has no unfinished attempt: record them as what they were.
    attempts = sa.table(
        'delivery_attempts',
        sa.column('outcome', sa.String),
        sa.column('started_at', notify_site.db_types.UTCDateTime(timezone=True)),
        sa.column('finished_at', notify_site.db_types.UTCDateTime(timezone=True)),
    )
    op.execute(
        attempts.update().where(attempts.c.outcome.is_(None)).values(outcome='interrupted')
    )
    op.execute(
        attempts.update()
        .where(attempts.c.finished_at.is_(None))
        .values(finished_at=attempts.c.started_at)
    )
    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.alter_column('finished_at',
               existing_type=notify_site.db_types.UTCDateTime(timezone=True),
               nullable=False)
        batch_op.alter_column('outcome',
               existing_type=sa.String(length=16),
               nullable=False)
        batch_op.drop_column('lease_token')
