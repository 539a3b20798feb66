"""relay channel mode: a per-channel lease so one process at a time issues a v2.1 token

Revision ID: c4e1f0a9b7d3
Revises: 72308378998d
Create Date: 2026-11-22 03:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import notify_site.db_types


revision = 'c4e1f0a9b7d3'
down_revision = '72308378998d'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('relay_line_channels',
    sa.Column('channel_id', sa.String(length=32), nullable=False),
    sa.Column('issuing_until', notify_site.db_types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('issuing_by', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('channel_id', name=op.f('pk_relay_line_channels'))
    )


def downgrade():
    op.drop_table('relay_line_channels')
