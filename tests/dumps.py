"""Everything a test app's database holds, as text: where tests look for secrets that must not
be stored in plaintext (tests/integration/test_no_plaintext_secrets.py, test_canary.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import MetaData, select
from sqlalchemy.schema import CreateTable

from notify_site.extensions import db


def database_dump(live) -> str:
    """Everything the database holds, as text.

    SQLite: a logical dump (every row as SQL) plus the raw bytes of the file and its WAL.
    PostgreSQL: each table's definition and every row of it, each value as text (bytes as
    they are stored).
    """
    with live.app.app_context():
        if db.engine.dialect.name == "postgresql":
            return postgres_dump()
    path = Path(live.app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    with sqlite3.connect(path) as connection:
        logical = "\n".join(connection.iterdump())
    raw = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    return logical + raw.decode("latin-1")


def postgres_dump() -> str:
    lines = []
    with db.engine.connect() as connection:
        tables = MetaData()
        tables.reflect(connection)
        for table in tables.sorted_tables:
            lines.append(str(CreateTable(table).compile(connection)))
            for row in connection.execute(select(table)):
                values = [
                    bytes(value).decode("latin-1")
                    if isinstance(value, bytes | memoryview)
                    else str(value)
                    for value in row
                ]
                lines.append("\t".join(values))
    return "\n".join(lines)
