"""My page: private sandbox chats, personal access tokens, unguessable image ids

SPEC 6 (issue 14). Each person gets their own sandbox chats (``relay_chats.owner_id``, the
accounts port's person id, unique with kind and name); LINE chats are paired to people
(``relay_chat_people``); tokens, and the codes they come from, belong to a person
(``person_id``); a token may be personal (no client, a ``name``) and record when they were last used; an uploaded image is served under a random
``public_id``; a pairing remembers who started it and may have no client (My page).

Data: the sandbox chats everyone shared until now, and every existing token, go to the first
admin (the lowest id among the enabled admins, else among all admins), as do the LINE chats
that have tokens, so nothing delivered is lost and the admin can disconnect what they find.
A site without an admin leaves them without an owner: only admins will see them. Each
existing image gets a random public id.

Downgrade: sandbox chats of the same kind and name are merged into the oldest (their
messages, tokens and codes move to it); personal tokens and My page's pairings, which the old
schema cannot hold, are deleted.

Revision ID: 90498c7aeadb
Revises: f5b718829371
Create Date: 2026-12-05 05:56:16.439785
"""

import secrets

import sqlalchemy as sa
from alembic import op

import notify_site.db_types


revision = '90498c7aeadb'
down_revision = 'f5b718829371'
branch_labels = None
depends_on = None

SANDBOX = sa.text('line_id IS NULL')


def _first_admin(connection):
    """The site's first admin, read from the site's table (a migration is not relay code)."""
    return connection.execute(
        sa.text(
            'SELECT id FROM users WHERE is_admin = :yes'
            ' ORDER BY CASE WHEN disabled_at IS NULL THEN 0 ELSE 1 END, id LIMIT 1'
        ),
        {'yes': True},
    ).scalar()


def upgrade():
    op.create_table('relay_chat_people',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('chat_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('paired_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['chat_id'], ['relay_chats.id'], name=op.f('fk_relay_chat_people_chat_id_relay_chats'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_relay_chat_people')),
    sa.UniqueConstraint('chat_id', 'person_id', name=op.f('uq_relay_chat_people_chat_id'))
    )
    with op.batch_alter_table('relay_chat_people', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_relay_chat_people_person_id'), ['person_id'], unique=False)

    with op.batch_alter_table('relay_authorization_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('person_id', sa.Integer(), nullable=True))

    with op.batch_alter_table('relay_access_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('person_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('last_used_at', notify_site.db_types.UTCDateTime(timezone=True), nullable=True))
        batch_op.alter_column('client_pk',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.create_index(batch_op.f('ix_relay_access_tokens_person_id'), ['person_id'], unique=False)

    with op.batch_alter_table('relay_chats', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_id', sa.Integer(), nullable=True))
        batch_op.drop_index('uq_relay_chats_sandbox_kind_name', sqlite_where=SANDBOX, postgresql_where=SANDBOX)
        batch_op.create_index('uq_relay_chats_sandbox_owner_kind_name', ['owner_id', 'kind', 'name'], unique=True, sqlite_where=SANDBOX, postgresql_where=SANDBOX)

    with op.batch_alter_table('relay_images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public_id', sa.String(length=32), nullable=True))

    with op.batch_alter_table('relay_pairings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('person_id', sa.Integer(), nullable=True))
        batch_op.alter_column('client_pk',
               existing_type=sa.INTEGER(),
               nullable=True)

    connection = op.get_bind()
    admin = _first_admin(connection)
    if admin is not None:
        connection.execute(
            sa.text('UPDATE relay_chats SET owner_id = :admin WHERE line_id IS NULL'),
            {'admin': admin},
        )
        connection.execute(
            sa.text('UPDATE relay_access_tokens SET person_id = :admin'), {'admin': admin}
        )
        connection.execute(
            sa.text(
                'INSERT INTO relay_chat_people (chat_id, person_id, paired_at)'
                ' SELECT c.id, :admin, :now FROM relay_chats c WHERE c.line_id IS NOT NULL'
                ' AND EXISTS (SELECT 1 FROM relay_access_tokens t WHERE t.chat_id = c.id)'
            ).bindparams(
                sa.bindparam('now', type_=notify_site.db_types.UTCDateTime(timezone=True))
            ),
            {'admin': admin, 'now': notify_site.db_types.utcnow()},
        )
    for (image_id,) in connection.execute(sa.text('SELECT id FROM relay_images')).all():
        connection.execute(
            sa.text('UPDATE relay_images SET public_id = :public WHERE id = :id'),
            {'public': secrets.token_urlsafe(16), 'id': image_id},
        )

    with op.batch_alter_table('relay_images', schema=None) as batch_op:
        batch_op.alter_column('public_id', existing_type=sa.String(length=32), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_relay_images_public_id'), ['public_id'])


# Tables whose rows point at a chat, moved to the surviving chat when sandbox chats merge.
_CHAT_REFERENCES = (
    'relay_authorization_codes',
    'relay_access_tokens',
    'relay_messages',
    'relay_pairings',
    'relay_pushes',
)


def downgrade():
    connection = op.get_bind()
    oldest = (
        'SELECT MIN(k.id) FROM relay_chats k JOIN relay_chats c'
        ' ON k.kind = c.kind AND k.name = c.name AND k.line_id IS NULL'
        ' WHERE c.id = {table}.chat_id'
    )
    for table in _CHAT_REFERENCES:
        connection.execute(
            sa.text(
                f'UPDATE {table} SET chat_id = ({oldest.format(table=table)})'
                ' WHERE chat_id IN (SELECT id FROM relay_chats WHERE line_id IS NULL)'
            )
        )
    connection.execute(
        sa.text(
            'DELETE FROM relay_chats WHERE line_id IS NULL AND id NOT IN'
            ' (SELECT MIN(id) FROM relay_chats WHERE line_id IS NULL GROUP BY kind, name)'
        )
    )
    connection.execute(sa.text('DELETE FROM relay_access_tokens WHERE client_pk IS NULL'))
    connection.execute(sa.text('DELETE FROM relay_pairings WHERE client_pk IS NULL'))

    with op.batch_alter_table('relay_pairings', schema=None) as batch_op:
        batch_op.alter_column('client_pk',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.drop_column('person_id')

    with op.batch_alter_table('relay_images', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_relay_images_public_id'), type_='unique')
        batch_op.drop_column('public_id')

    with op.batch_alter_table('relay_chats', schema=None) as batch_op:
        batch_op.drop_index('uq_relay_chats_sandbox_owner_kind_name', sqlite_where=SANDBOX, postgresql_where=SANDBOX)
        batch_op.create_index('uq_relay_chats_sandbox_kind_name', ['kind', 'name'], unique=True, sqlite_where=SANDBOX, postgresql_where=SANDBOX)
        batch_op.drop_column('owner_id')

    with op.batch_alter_table('relay_access_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_relay_access_tokens_person_id'))
        batch_op.alter_column('client_pk',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.drop_column('last_used_at')
        batch_op.drop_column('person_id')
        batch_op.drop_column('name')

    with op.batch_alter_table('relay_authorization_codes', schema=None) as batch_op:
        batch_op.drop_column('person_id')

    with op.batch_alter_table('relay_chat_people', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_relay_chat_people_person_id'))

    op.drop_table('relay_chat_people')
