"""A 202 is "durably queued" (SPEC 4.3): on SQLite every connection commits with
``synchronous=FULL`` in WAL mode, so a commit has reached the disk, not only the OS, when it
returns — it survives a power loss, not only a crash of the process."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from notify_site.extensions import db

FULL = 2  # PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA


def test_every_sqlite_connection_commits_with_synchronous_full(app):
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("SQLite only")
        connections = [db.engine.connect() for _ in range(3)]  # several pooled connections
        try:
            for connection in connections:
                assert connection.execute(text("PRAGMA synchronous")).scalar() == FULL
                assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        finally:
            for connection in connections:
                connection.close()
