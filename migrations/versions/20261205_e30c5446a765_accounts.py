"""accounts: session epochs, disabled accounts, the account audit, API keys shown once

- users.session_epoch: part of every session's user id, so that a new value ends the sessions
  signed in before it (issue 12, item 3). Existing accounts each get a random value; their
  sessions, whose id was the bare row id, end once with this upgrade.
- users.disabled_at: when an admin disabled the account (None: enabled).
- account_events: the admins' audit of changes to accounts; no foreign key, so the events of
  a deleted account stay.
- api_key_reveals: a new API key waiting, encrypted, for the one page that shows it.

Revision ID: e30c5446a765
Revises: c4e1f0a9b7d3
Create Date: 2026-12-05 03:44:04.470174
"""

import secrets

import sqlalchemy as sa
from alembic import op

import notify_site.db_types


revision = 'e30c5446a765'
down_revision = 'c4e1f0a9b7d3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('account_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_username', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.String(length=300), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_events'))
    )
    op.create_index(op.f('ix_account_events_created_at'), 'account_events', ['created_at'], unique=False)

    op.create_table('api_key_reveals',
    sa.Column('slot_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('key_ciphertext', sa.Text(), nullable=False),
    sa.Column('created_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_key_reveals_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('slot_hash', name=op.f('pk_api_key_reveals'))
    )
    op.create_index(op.f('ix_api_key_reveals_expires_at'), 'api_key_reveals', ['expires_at'], unique=False)
    op.create_index(op.f('ix_api_key_reveals_user_id'), 'api_key_reveals', ['user_id'], unique=False)

    # The epoch is added empty, given a random value per account, then made NOT NULL.
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disabled_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('session_epoch', sa.String(length=32), nullable=True))
    users = sa.table('users', sa.column('id', sa.Integer), sa.column('session_epoch', sa.String))
    connection = op.get_bind()
    for (user_id,) in connection.execute(sa.select(users.c.id)).all():
        connection.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(session_epoch=secrets.token_urlsafe(16))
        )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('session_epoch', existing_type=sa.String(length=32), nullable=False)


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_epoch')
        batch_op.drop_column('disabled_at')

    op.drop_index(op.f('ix_api_key_reveals_user_id'), table_name='api_key_reveals')
    op.drop_index(op.f('ix_api_key_reveals_expires_at'), table_name='api_key_reveals')
    op.drop_table('api_key_reveals')
    op.drop_index(op.f('ix_account_events_created_at'), table_name='account_events')
    op.drop_table('account_events')
