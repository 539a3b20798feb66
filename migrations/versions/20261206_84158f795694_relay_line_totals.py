"""LINE quota: the ledger's running totals by month

Issue 18: relay_line_totals keeps, per billing month, the units that count for the channel,
each person and each token, and the channel's units still reserved, so that a Notify call
reads its budgets with one lookup instead of summing the month's ledger under the write lock.
Filled here from the ledger as it stands; from then on ledger.py keeps it in step.

Revision ID: 84158f795694
Revises: 5a7c0e9d2b14
Create Date: 2026-12-06 08:30:00
"""

import sqlalchemy as sa
from alembic import op


revision = '84158f795694'
down_revision = '5a7c0e9d2b14'
branch_labels = None
depends_on = None

# The same subjects as notify_site/relay/ledger.py (subjects_of), written out here so that
# this migration keeps meaning what it meant when the code changes.
_FILL = """
INSERT INTO relay_line_totals (month, subject, units)
SELECT month, 'channel', SUM(units) FROM relay_line_usage
 WHERE state IN ('reserved', 'spent') GROUP BY month
UNION ALL
SELECT month, 'channel:reserved', SUM(units) FROM relay_line_usage
 WHERE state = 'reserved' GROUP BY month
UNION ALL
SELECT month, 'person:' || CAST(person_id AS VARCHAR(20)), SUM(units) FROM relay_line_usage
 WHERE state IN ('reserved', 'spent') AND person_id IS NOT NULL GROUP BY month, person_id
UNION ALL
SELECT month, 'token:' || CAST(token_pk AS VARCHAR(20)), SUM(units) FROM relay_line_usage
 WHERE state IN ('reserved', 'spent') AND token_pk IS NOT NULL GROUP BY month, token_pk
"""


def upgrade():
    op.create_table('relay_line_totals',
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('subject', sa.String(length=40), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('month', 'subject', name=op.f('pk_relay_line_totals'))
    )
    op.execute(_FILL)


def downgrade():
    op.drop_table('relay_line_totals')
