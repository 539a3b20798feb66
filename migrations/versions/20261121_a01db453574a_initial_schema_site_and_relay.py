"""initial schema: site and relay

Revision ID: a01db453574a
Revises: 
Create Date: 2026-11-21 22:53:06.904067
"""

import sqlalchemy as sa
from alembic import op

import notify_site.db_types


revision = 'a01db453574a'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('notification_images',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_images'))
    )
    op.create_table('relay_chats',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('line_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_relay_chats')),
    sa.UniqueConstraint('line_id', name=op.f('uq_relay_chats_line_id'))
    )
    with op.batch_alter_table('relay_chats', schema=None) as batch_op:
        batch_op.create_index('uq_relay_chats_sandbox_kind_name', ['kind', 'name'], unique=True, sqlite_where=sa.text('line_id IS NULL'), postgresql_where=sa.text('line_id IS NULL'))

    op.create_table('relay_clients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('redirect_uri', sa.String(length=2000), nullable=False),
    sa.Column('created_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_relay_clients')),
    sa.UniqueConstraint('client_id', name=op.f('uq_relay_clients_client_id'))
    )
    op.create_table('relay_images',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_relay_images'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('is_admin', sa.Boolean(), nullable=False),
    sa.Column('created_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_api_keys_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash'))
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_keys_owner_id'), ['owner_id'], unique=False)

    op.create_table('connections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=64), nullable=False),
    sa.Column('token_ciphertext', sa.Text(), nullable=False),
    sa.Column('target_name', sa.String(length=200), nullable=True),
    sa.Column('target_type', sa.String(length=16), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_detail', sa.String(length=300), nullable=True),
    sa.Column('rate_limit', sa.Integer(), nullable=True),
    sa.Column('rate_remaining', sa.Integer(), nullable=True),
    sa.Column('rate_image_limit', sa.Integer(), nullable=True),
    sa.Column('rate_image_remaining', sa.Integer(), nullable=True),
    sa.Column('rate_reset_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rate_checked_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rate_checked_by', sa.String(length=16), nullable=True),
    sa.Column('created_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('delivery_lease_token', sa.String(length=36), nullable=True),
    sa.Column('delivery_lease_expires_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_connections_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_connections'))
    )
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_connections_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index('ix_connections_owner_label', ['owner_id', 'label'], unique=False)

    op.create_table('oauth_states',
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=64), nullable=False),
    sa.Column('verifier_ciphertext', sa.Text(), nullable=False),
    sa.Column('redirect_uri', sa.String(length=500), nullable=False),
    sa.Column('created_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_oauth_states_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('state_hash', name=op.f('pk_oauth_states'))
    )
    with op.batch_alter_table('oauth_states', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_states_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_oauth_states_user_id'), ['user_id'], unique=False)

    op.create_table('relay_access_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('client_pk', sa.Integer(), nullable=False),
    sa.Column('chat_id', sa.Integer(), nullable=False),
    sa.Column('created_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('window_reset_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('calls_used', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('images_used', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.ForeignKeyConstraint(['chat_id'], ['relay_chats.id'], name=op.f('fk_relay_access_tokens_chat_id_relay_chats'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['client_pk'], ['relay_clients.id'], name=op.f('fk_relay_access_tokens_client_pk_relay_clients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_relay_access_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_relay_access_tokens_token_hash'))
    )
    with op.batch_alter_table('relay_access_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_relay_access_tokens_client_pk'), ['client_pk'], unique=False)

    op.create_table('relay_authorization_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('client_pk', sa.Integer(), nullable=False),
    sa.Column('redirect_uri', sa.String(length=2000), nullable=False),
    sa.Column('chat_id', sa.Integer(), nullable=False),
    sa.Column('code_challenge', sa.String(length=128), nullable=True),
    sa.Column('code_challenge_method', sa.String(length=8), nullable=True),
    sa.Column('expires_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['chat_id'], ['relay_chats.id'], name=op.f('fk_relay_authorization_codes_chat_id_relay_chats'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['client_pk'], ['relay_clients.id'], name=op.f('fk_relay_authorization_codes_client_pk_relay_clients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_relay_authorization_codes')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_relay_authorization_codes_code_hash'))
    )
    with op.batch_alter_table('relay_authorization_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_relay_authorization_codes_client_pk'), ['client_pk'], unique=False)

    op.create_table('relay_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('chat_id', sa.Integer(), nullable=False),
    sa.Column('client_pk', sa.Integer(), nullable=True),
    sa.Column('client_name', sa.String(length=100), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('sticker_package_id', sa.Integer(), nullable=True),
    sa.Column('sticker_id', sa.Integer(), nullable=True),
    sa.Column('image_thumbnail_url', sa.String(length=2000), nullable=True),
    sa.Column('image_fullsize_url', sa.String(length=2000), nullable=True),
    sa.Column('image_id', sa.Integer(), nullable=True),
    sa.Column('notification_disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['chat_id'], ['relay_chats.id'], name=op.f('fk_relay_messages_chat_id_relay_chats'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['client_pk'], ['relay_clients.id'], name=op.f('fk_relay_messages_client_pk_relay_clients'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['image_id'], ['relay_images.id'], name=op.f('fk_relay_messages_image_id_relay_images'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_relay_messages'))
    )
    with op.batch_alter_table('relay_messages', schema=None) as batch_op:
        batch_op.create_index('ix_relay_messages_chat_id_id', ['chat_id', 'id'], unique=False)

    op.create_table('idempotency_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('api_key_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('response_json', sa.Text(), nullable=False),
    sa.Column('created_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_idempotency_records_api_key_id_api_keys'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_records')),
    sa.UniqueConstraint('api_key_id', 'key', name=op.f('uq_idempotency_records_api_key_id'))
    )
    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_records_created_at'), ['created_at'], unique=False)

    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=False),
    sa.Column('api_key_id', sa.Integer(), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('sticker_package_id', sa.Integer(), nullable=True),
    sa.Column('sticker_id', sa.Integer(), nullable=True),
    sa.Column('image_thumbnail_url', sa.String(length=2000), nullable=True),
    sa.Column('image_fullsize_url', sa.String(length=2000), nullable=True),
    sa.Column('image_id', sa.Integer(), nullable=True),
    sa.Column('notification_disabled', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('next_attempt_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lease_token', sa.String(length=36), nullable=True),
    sa.Column('lease_expires_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_notifications_api_key_id_api_keys'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_notifications_connection_id_connections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['image_id'], ['notification_images.id'], name=op.f('fk_notifications_image_id_notification_images'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_notifications_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notifications_api_key_id'), ['api_key_id'], unique=False)
        batch_op.create_index('ix_notifications_connection_status', ['connection_id', 'status'], unique=False)
        batch_op.create_index('ix_notifications_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_image_id'), ['image_id'], unique=False)
        batch_op.create_index('ix_notifications_owner_created', ['owner_id', 'created_at'], unique=False)

    op.create_table('delivery_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('worker', sa.String(length=64), nullable=True),
    sa.Column('started_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], name=op.f('fk_delivery_attempts_notification_id_notifications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_attempts'))
    )
    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_attempts_notification_id'), ['notification_id'], unique=False)



def downgrade():
    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_attempts_notification_id'))

    op.drop_table('delivery_attempts')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_owner_created')
        batch_op.drop_index(batch_op.f('ix_notifications_image_id'))
        batch_op.drop_index('ix_notifications_due')
        batch_op.drop_index('ix_notifications_connection_status')
        batch_op.drop_index(batch_op.f('ix_notifications_api_key_id'))

    op.drop_table('notifications')
    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_records_created_at'))

    op.drop_table('idempotency_records')
    with op.batch_alter_table('relay_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_relay_messages_chat_id_id')

    op.drop_table('relay_messages')
    with op.batch_alter_table('relay_authorization_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_relay_authorization_codes_client_pk'))

    op.drop_table('relay_authorization_codes')
    with op.batch_alter_table('relay_access_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_relay_access_tokens_client_pk'))

    op.drop_table('relay_access_tokens')
    with op.batch_alter_table('oauth_states', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_states_user_id'))
        batch_op.drop_index(batch_op.f('ix_oauth_states_expires_at'))

    op.drop_table('oauth_states')
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.drop_index('ix_connections_owner_label')
        batch_op.drop_index(batch_op.f('ix_connections_owner_id'))

    op.drop_table('connections')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_owner_id'))

    op.drop_table('api_keys')
    op.drop_table('users')
    op.drop_table('relay_images')
    op.drop_table('relay_clients')
    with op.batch_alter_table('relay_chats', schema=None) as batch_op:
        batch_op.drop_index('uq_relay_chats_sandbox_kind_name', sqlite_where=sa.text('line_id IS NULL'), postgresql_where=sa.text('line_id IS NULL'))

    op.drop_table('relay_chats')
    op.drop_table('notification_images')
