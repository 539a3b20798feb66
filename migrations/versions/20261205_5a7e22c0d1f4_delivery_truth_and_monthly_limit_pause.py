"""delivery truth in channel mode, and the monthly-limit pause

The relay's LINE channel row records a monthly-limit pause (since when, the next quota
re-check, what the pause has cost); a push gets the public id its Notify answer names it by,
the start of its give-up clock after a pause, and LINE's reason when it refused the push's
image (the text then goes without it); a stored message event keeps LINE's message id, so
that an ``unsend`` can find and blank it. On the site, a notification the Notify server
answered *pending* keeps the server's message id (status ``at_server``) to follow it.

Revision ID: 5a7e22c0d1f4
Revises: 3c1f0a9d7e21
Create Date: 2026-12-05 21:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

from notify_site.db_types import UTCDateTime


revision = '5a7e22c0d1f4'
down_revision = '3c1f0a9d7e21'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('relay_line_channels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('monthly_limit_at', UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('monthly_limit_recheck_at', UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column('monthly_limit_checks', sa.Integer(), server_default=sa.text('0'), nullable=False)
        )
        batch_op.add_column(
            sa.Column('monthly_limit_refusals', sa.Integer(), server_default=sa.text('0'), nullable=False)
        )
    with op.batch_alter_table('relay_pushes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('retry_since', UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('image_error', sa.String(length=500), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_relay_pushes_public_id'), ['public_id'])
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('remote_message_id', sa.String(length=64), nullable=True))
    with op.batch_alter_table('relay_line_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('line_message_id', sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f('ix_relay_line_events_line_message_id'), ['line_message_id'], unique=False
        )


def downgrade():
    with op.batch_alter_table('relay_line_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_relay_line_events_line_message_id'))
        batch_op.drop_column('line_message_id')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_column('remote_message_id')
    with op.batch_alter_table('relay_pushes', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_relay_pushes_public_id'), type_='unique')
        batch_op.drop_column('image_error')
        batch_op.drop_column('retry_since')
        batch_op.drop_column('public_id')
    with op.batch_alter_table('relay_line_channels', schema=None) as batch_op:
        batch_op.drop_column('monthly_limit_refusals')
        batch_op.drop_column('monthly_limit_checks')
        batch_op.drop_column('monthly_limit_recheck_at')
        batch_op.drop_column('monthly_limit_at')
