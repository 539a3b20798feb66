"""stored text codes: a code and parameters beside every stored English text

Pages used to translate a notification's last error, a delivery attempt's error and a
connection's status detail by matching their English against regular expressions; rewording the
English silently untranslated a page. Each text now has a code and its parameters beside it
(notify_site/stored_text.py), and pages translate from those:

- notifications.last_error_code, last_error_params
- delivery_attempts.error_code, error_params
- connections.status_detail_code, status_detail_params

Rows already there get their code from the English shapes the site wrote until now (the
regular expressions of the old stored_text.py, kept here as they were, so that this migration
keeps meaning what it meant whatever the site says later). A text of none of those shapes is
someone else's words (a Notify server's message) and keeps no code: pages show it as stored.

Revision ID: 1b68cdc1e014
Revises: 3ddb9a6b85b2
Create Date: 2026-12-05 04:29:03.984884
"""

import re

import sqlalchemy as sa
from alembic import op


revision = '1b68cdc1e014'
down_revision = '3ddb9a6b85b2'
branch_labels = None
depends_on = None

# The columns that hold a stored text: (table, text column); the code and the parameters are
# "<column>_code" and "<column>_params".
STORED_TEXTS = (
    ("notifications", "last_error"),
    ("delivery_attempts", "error"),
    ("connections", "status_detail"),
)
BATCH = 2000

# The texts the site stored word for word, and their codes.
FIXED = {
    "connection revoked": "connection_revoked",
    "chat unreachable (the bot was blocked or removed from the group)": "chat_unreachable",
    "cancelled by an admin": "cancelled_by_admin",
    "no answer recorded: the worker stopped during the call": "no_answer_recorded",
    "The Notify server rejected the new token.": "token_rejected",
    "Connected; the chat's name could not be read yet.": "name_not_read",
    "The chat's name is not available.": "no_name",
    "Revoked on this site.": "revoked_here",
    "The Notify server says the token is no longer valid.": "token_invalid",
    "The Notify server answered 401: the token was revoked.": "token_revoked",
}

# The texts built around other words, in the order the old stored_text.py tried them. The
# parameters named in NESTED may be a text of the site's own in their turn; those in NUMBERS
# are whole numbers.
PATTERNS = (
    (re.compile(r"gave up after (?P<count>\d+) attempts: (?P<reason>.*)", re.S), "gave_up"),
    (
        re.compile(r"Notify server answered (?P<status>\d{3}): (?P<message>.*)", re.S),
        "server_answered",
    ),
    (re.compile(r"(?P<status>\d{3}): (?P<message>.*)", re.S), "status_message"),
    (
        re.compile(
            r"no answer from the Notify server at (?P<url>\S+) within (?P<seconds>[\d.]+) s"
            r" \((?P<detail>.*)\)",
            re.S,
        ),
        "no_answer",
    ),
    (
        re.compile(
            r"could not connect to the Notify server at (?P<url>\S+) \((?P<detail>.*)\)", re.S
        ),
        "no_connection",
    ),
    (
        re.compile(r"request to the Notify server at (?P<url>\S+) failed \((?P<detail>.*)\)", re.S),
        "request_failed",
    ),
)
NESTED = {"reason", "message"}
NUMBERS = {"count", "status"}


def parse(text):
    """The code and parameters of an English text the site wrote, or None for other words."""
    if text in FIXED:
        return FIXED[text], None
    for pattern, code in PATTERNS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        params = {}
        for name, value in match.groupdict().items():
            inner = parse(value) if name in NESTED else None
            if inner is not None:
                params[name] = {"code": inner[0], "params": inner[1] or {}}
            elif name in NUMBERS:
                params[name] = int(value)
            else:
                params[name] = value
        return code, params
    return None


def backfill(connection, table_name, column):
    """Give every row of ``table_name`` whose ``column`` the site wrote its code, in batches
    along the primary key."""
    code_column, params_column = f"{column}_code", f"{column}_params"
    table = sa.table(
        table_name,
        sa.column("id", sa.Integer),
        sa.column(column, sa.String),
        sa.column(code_column, sa.String),
        sa.column(params_column, sa.JSON(none_as_null=True)),
    )
    update = (
        table.update()
        .where(table.c.id == sa.bindparam("row_id"))
        .values(
            {
                code_column: sa.bindparam("new_code"),
                params_column: sa.bindparam("new_params", type_=sa.JSON(none_as_null=True)),
            }
        )
    )
    after = 0
    while True:
        rows = connection.execute(
            sa.select(table.c.id, table.c[column])
            .where(table.c.id > after, table.c[column].is_not(None))
            .order_by(table.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        changes = []
        for row_id, text in rows:
            parsed = parse(text)
            if parsed is not None:
                changes.append({"row_id": row_id, "new_code": parsed[0], "new_params": parsed[1]})
        if changes:
            connection.execute(update, changes)
        after = rows[-1][0]


def upgrade():
    for table_name, column in STORED_TEXTS:
        with op.batch_alter_table(table_name, schema=None) as batch_op:
            batch_op.add_column(sa.Column(f'{column}_code', sa.String(length=32), nullable=True))
            batch_op.add_column(
                sa.Column(f'{column}_params', sa.JSON(none_as_null=True), nullable=True)
            )
    for table_name, column in STORED_TEXTS:
        backfill(op.get_bind(), table_name, column)


def downgrade():
    for table_name, column in reversed(STORED_TEXTS):
        with op.batch_alter_table(table_name, schema=None) as batch_op:
            batch_op.drop_column(f'{column}_params')
            batch_op.drop_column(f'{column}_code')
