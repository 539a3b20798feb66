"""incoming webhooks (SPEC 8)

- webhooks: a person's webhook (its secret only as a SHA-256), its format, template, language
  and repeat window, paused or not;
- webhook_connections: the chats it sends to;
- webhook_deliveries: its history of posts (what each became, the text, the notifications,
  why it was refused as a stored text: English, code and parameters);
- webhook_dedupe: the last state queued per alert group, which decides repeats.

Revision ID: ee90102d7c2e
Revises: 90498c7aeadb
Create Date: 2026-12-05 06:34:08.603676
"""

import sqlalchemy as sa
from alembic import op

import notify_site.db_types


revision = 'ee90102d7c2e'
down_revision = '90498c7aeadb'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('webhooks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('template', sa.Text(), nullable=True),
    sa.Column('locale', sa.String(length=16), nullable=False),
    sa.Column('dedupe_seconds', sa.Integer(), nullable=False),
    sa.Column('paused_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_received_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_webhooks_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhooks'))
    )
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhooks_owner_id'), ['owner_id'], unique=False)

    op.create_table('webhook_connections',
    sa.Column('webhook_id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_webhook_connections_connection_id_connections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['webhook_id'], ['webhooks.id'], name=op.f('fk_webhook_connections_webhook_id_webhooks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('webhook_id', 'connection_id', name=op.f('pk_webhook_connections'))
    )
    with op.batch_alter_table('webhook_connections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_connections_connection_id'), ['connection_id'], unique=False)

    op.create_table('webhook_dedupe',
    sa.Column('webhook_id', sa.Integer(), nullable=False),
    sa.Column('group_hash', sa.String(length=64), nullable=False),
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=False),
    sa.Column('expires_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['webhook_id'], ['webhooks.id'], name=op.f('fk_webhook_dedupe_webhook_id_webhooks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('webhook_id', 'group_hash', name=op.f('pk_webhook_dedupe'))
    )
    op.create_table('webhook_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('webhook_id', sa.Integer(), nullable=False),
    sa.Column('received_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('detail', sa.String(length=500), nullable=True),
    sa.Column('detail_code', sa.String(length=32), nullable=True),
    sa.Column('detail_params', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('notification_ids', sa.String(length=500), nullable=True),
    sa.Column('duplicate_of', sa.Integer(), nullable=True),
    sa.Column('test', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['webhook_id'], ['webhooks.id'], name=op.f('fk_webhook_deliveries_webhook_id_webhooks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries'))
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_deliveries_webhook_id_id', ['webhook_id', 'id'], unique=False)



def downgrade():
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_webhook_id_id')

    op.drop_table('webhook_deliveries')
    op.drop_table('webhook_dedupe')
    with op.batch_alter_table('webhook_connections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_connections_connection_id'))

    op.drop_table('webhook_connections')
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhooks_owner_id'))

    op.drop_table('webhooks')
