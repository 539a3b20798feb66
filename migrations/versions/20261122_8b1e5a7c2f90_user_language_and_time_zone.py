"""user language and time zone

users.locale and users.timezone, both nullable: None means "from the browser" and "the
language's usual zone" (notify_site/i18n.py). Adding nullable columns rewrites nothing on
PostgreSQL; SQLite's batch mode copies the (small) users table.

Revision ID: 8b1e5a7c2f90
Revises: 560620c1d429
Create Date: 2026-11-22 02:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = '8b1e5a7c2f90'
down_revision = '560620c1d429'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('timezone', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('timezone')
        batch_op.drop_column('locale')
