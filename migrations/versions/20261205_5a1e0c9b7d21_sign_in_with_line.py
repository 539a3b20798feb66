"""sign in with LINE

LINE Login (issue 19): an account may be linked to one LINE user id (unique), remembers
whether that person was a friend of the bot, and may have no password (made by signing in
with LINE). Pending sign-in flows are kept server-side, keyed by the hash of their state.

Revision ID: 5a1e0c9b7d21
Revises: 8e702dbadf90
Create Date: 2026-12-05 21:40:00
"""

import sqlalchemy as sa
from alembic import op

import notify_site.db_types


revision = '5a1e0c9b7d21'
down_revision = '8e702dbadf90'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('line_login_states',
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('secrets_ciphertext', sa.Text(), nullable=False),
    sa.Column('redirect_uri', sa.String(length=500), nullable=False),
    sa.Column('created_at', notify_site.db_types.UTCDateTime(), nullable=False),
    sa.Column('expires_at', notify_site.db_types.UTCDateTime(), nullable=False),
    sa.Column('used_at', notify_site.db_types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_line_login_states_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('state_hash', name=op.f('pk_line_login_states'))
    )
    with op.batch_alter_table('line_login_states', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_line_login_states_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_line_login_states_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('line_user_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('line_friend', sa.Boolean(), nullable=True))
        batch_op.alter_column('password_hash', existing_type=sa.String(length=256), nullable=True)
        batch_op.create_unique_constraint(batch_op.f('uq_users_line_user_id'), ['line_user_id'])

    with op.batch_alter_table('relay_chat_members', schema=None) as batch_op:
        batch_op.create_index('ix_relay_chat_members_line_user_id', ['line_user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('relay_chat_members', schema=None) as batch_op:
        batch_op.drop_index('ix_relay_chat_members_line_user_id')

    # An account without a password cannot survive the downgrade's NOT NULL: it gets a
    # password no one knows (an admin can set one with `flask set-password`).
    op.execute("UPDATE users SET password_hash = '!' WHERE password_hash IS NULL")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_line_user_id'), type_='unique')
        batch_op.alter_column('password_hash', existing_type=sa.String(length=256), nullable=False)
        batch_op.drop_column('line_friend')
        batch_op.drop_column('line_user_id')

    with op.batch_alter_table('line_login_states', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_line_login_states_user_id'))
        batch_op.drop_index(batch_op.f('ix_line_login_states_expires_at'))

    op.drop_table('line_login_states')
