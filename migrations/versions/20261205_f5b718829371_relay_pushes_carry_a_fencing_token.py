"""relay pushes carry a fencing token

The relay's push outbox now uses the outbox machinery the site's delivery uses
(notify_site/outbox.py): a push is claimed under a fresh token with its lease, and its outcome
is written only while it still carries that token. A push leased before this revision has no
token; once its lease runs out it is claimed again, with one.

Revision ID: f5b718829371
Revises: 1b68cdc1e014
Create Date: 2026-12-05 05:52:47.122566
"""

import sqlalchemy as sa
from alembic import op


revision = 'f5b718829371'
down_revision = '1b68cdc1e014'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('relay_pushes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_token', sa.String(length=36), nullable=True))


def downgrade():
    with op.batch_alter_table('relay_pushes', schema=None) as batch_op:
        batch_op.drop_column('lease_token')
