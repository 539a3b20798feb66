"""After a real connect flow, neither the database nor any log line holds a plaintext token."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import requests
from sqlalchemy import MetaData, select
from sqlalchemy.schema import CreateTable

from notify_site.extensions import db
from notify_site.keyring import keyring
from notify_site.models import Connection
from notify_site.services.notify import connection_context
from tests.integration.helpers import (
    answer_authorize,
    finish_form_post,
    register,
    start_connect,
)


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


def test_database_and_logs_hold_no_plaintext_token(live, caplog):
    caplog.set_level(logging.DEBUG)
    browser = requests.Session()
    register(browser, live.site)
    answer = answer_authorize(browser, start_connect(browser, live.site, "Me"), chat="1-on-1")
    assert finish_form_post(browser, answer, live.site).status_code == 302

    with live.app.app_context():
        connection = db.session.scalars(db.select(Connection)).one()
        token = keyring().decrypt(
            connection.token_ciphertext, context=connection_context(connection.id)
        )
    assert len(token) >= 32
    secrets = {
        "access token": token,
        "client secret": live.app.config["NOTIFY_CLIENT_SECRET"],
        "token key": live.app.config["TOKEN_KEYS"][0].split(":", 1)[1],
    }
    dump = database_dump(live)
    # The dump really has the tables and their rows.
    assert "CREATE TABLE connections" in dump
    assert connection.token_ciphertext in dump
    logs = "\n".join(record.getMessage() for record in caplog.records)
    assert "POST /callback" in logs  # the captured logs really cover the flow
    for name, value in secrets.items():
        assert value not in dump, f"{name} found in the database"
        assert value not in logs, f"{name} found in the logs"
    page = browser.get(f"{live.site}/connections").text
    assert token not in page
