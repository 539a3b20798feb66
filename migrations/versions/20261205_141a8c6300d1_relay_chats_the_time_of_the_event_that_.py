"""relay chats: the time of the event that last decided reachability

LINE's webhook events are applied in LINE's time order (issue 21): an unfollow or leave timed
before the follow, join or message that last decided a chat's reachability changes nothing.
Existing chats start with none, so their next event decides as before.

Revision ID: 141a8c6300d1
Revises: e30c5446a765
Create Date: 2026-12-05 04:01:21.046778
"""

import sqlalchemy as sa
from alembic import op

import notify_site.db_types


revision = '141a8c6300d1'
down_revision = 'e30c5446a765'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('relay_chats', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'reachability_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade():
    with op.batch_alter_table('relay_chats', schema=None) as batch_op:
        batch_op.drop_column('reachability_at')
