"""scheduled sends

Send later, recurring schedules and dated batches (issue 17). A notification can wait as
``scheduled`` until its ``send_at`` (its ``next_attempt_at``), or be ``cancelled`` before a
worker takes it; no existing row changes state. Recurring schedules keep an RRULE in a time
zone, the chats they go to, and every occurrence handled, under a unique (schedule, time) key
that makes each occurrence queue once.

Revision ID: 8e702dbadf90
Revises: ee90102d7c2e
Create Date: 2026-12-05 06:32:29.619985
"""

import sqlalchemy as sa
from alembic import op

import notify_site.db_types


revision = '8e702dbadf90'
down_revision = 'ee90102d7c2e'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('schedules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('rrule', sa.String(length=500), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('starts_local', sa.DateTime(), nullable=False),
    sa.Column('ends_local', sa.DateTime(), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('sticker_package_id', sa.Integer(), nullable=True),
    sa.Column('sticker_id', sa.Integer(), nullable=True),
    sa.Column('image_thumbnail_url', sa.String(length=2000), nullable=True),
    sa.Column('image_fullsize_url', sa.String(length=2000), nullable=True),
    sa.Column('notification_disabled', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('next_run_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lease_token', sa.String(length=36), nullable=True),
    sa.Column('lease_expires_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_schedules_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedules'))
    )
    with op.batch_alter_table('schedules', schema=None) as batch_op:
        batch_op.create_index('ix_schedules_due', ['status', 'next_run_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_schedules_owner_id'), ['owner_id'], unique=False)

    op.create_table('schedule_connections',
    sa.Column('schedule_id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_schedule_connections_connection_id_connections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['schedule_id'], ['schedules.id'], name=op.f('fk_schedule_connections_schedule_id_schedules'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('schedule_id', 'connection_id', name=op.f('pk_schedule_connections'))
    )
    with op.batch_alter_table('schedule_connections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_schedule_connections_connection_id'), ['connection_id'], unique=False)

    op.create_table('schedule_occurrences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('schedule_id', sa.Integer(), nullable=False),
    sa.Column('occurs_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('handled_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['schedule_id'], ['schedules.id'], name=op.f('fk_schedule_occurrences_schedule_id_schedules'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedule_occurrences')),
    sa.UniqueConstraint('schedule_id', 'occurs_at', name=op.f('uq_schedule_occurrences_schedule_id'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('send_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('occurrence_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_notifications_occurrence_id'), ['occurrence_id'], unique=False)
        batch_op.create_index('ix_notifications_owner_status_due', ['owner_id', 'status', 'next_attempt_at'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_notifications_occurrence_id_schedule_occurrences'), 'schedule_occurrences', ['occurrence_id'], ['id'], ondelete='SET NULL')



def downgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_notifications_occurrence_id_schedule_occurrences'), type_='foreignkey')
        batch_op.drop_index('ix_notifications_owner_status_due')
        batch_op.drop_index(batch_op.f('ix_notifications_occurrence_id'))
        batch_op.drop_column('occurrence_id')
        batch_op.drop_column('send_at')

    op.drop_table('schedule_occurrences')
    with op.batch_alter_table('schedule_connections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_schedule_connections_connection_id'))

    op.drop_table('schedule_connections')
    with op.batch_alter_table('schedules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_schedules_owner_id'))
        batch_op.drop_index('ix_schedules_due')

    op.drop_table('schedules')
