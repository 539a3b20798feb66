"""The instance folder is private (issue 12, item 6): the folder 0700, the SQLite database and
its -wal/-shm companions, the secrets and every other file in it 0600 — after ``flask setup``
and after the app has written to the database, whatever the process's umask."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from notify_site import create_app
from notify_site.extensions import db
from tests.conftest import make_test_config
from tests.factories import create_user


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def umask(value: int):
    previous = os.umask(value)
    try:
        yield
    finally:
        os.umask(previous)


def sqlite_app(tmp_path, instance: Path):
    """An app whose SQLite database is the default one, in ``instance`` (even on the
    PostgreSQL pass: this is about the SQLite file)."""
    config = make_test_config(tmp_path, DATABASE_URL="sqlite:///" + str(instance / "site.sqlite3"))
    config["INSTANCE_PATH"] = str(instance)
    return create_app(config)


def files_of(instance: Path) -> dict[str, int]:
    return {path.name: mode(path) for path in instance.iterdir()}


def test_setup_and_writes_leave_only_private_files_whatever_the_umask(tmp_path):
    instance = tmp_path / "fresh" / "instance"  # does not exist yet
    with umask(0):  # the worst case: everything created world-writable unless asked otherwise
        app = sqlite_app(tmp_path, instance)
        result = app.test_cli_runner().invoke(args=["setup"])
        assert result.exit_code == 0, result.output
        with app.app_context():
            create_user("alice")  # a write: SQLite's WAL and shared-memory files appear
            assert (instance / "site.sqlite3-wal").exists()
            assert (instance / "site.sqlite3-shm").exists()
            found = files_of(instance)
            db.engine.dispose()
    assert mode(instance) == 0o700
    assert {"site.sqlite3", "site.sqlite3-wal", "site.sqlite3-shm", "secrets.json"} <= set(found)
    assert found == dict.fromkeys(found, 0o600), found


def test_setup_closes_an_install_an_older_version_left_readable(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    os.chmod(instance, 0o755)  # noqa: S103 - the open install this test closes
    database = instance / "site.sqlite3"
    with umask(0o022):
        connection = sqlite3.connect(database)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE leftover (x)")
        connection.commit()
        (instance / "config.py").write_text("REGISTRATION_OPEN = False\n")
        assert mode(database) == 0o644
        assert mode(instance / "site.sqlite3-wal") == 0o644
        app = sqlite_app(tmp_path, instance)
        result = app.test_cli_runner().invoke(args=["setup"])
        connection.close()
    assert result.exit_code == 0, result.output
    assert "readable by its owner only" in result.output
    assert mode(instance) == 0o700
    found = files_of(instance)
    assert {"site.sqlite3", "config.py", "secrets.json"} <= set(found)
    assert found == dict.fromkeys(found, 0o600), found


def test_the_app_creates_a_missing_database_0600_before_sqlite_does(tmp_path):
    instance = tmp_path / "new-instance"
    with umask(0o022):
        app = sqlite_app(tmp_path, instance)
        assert mode(instance) == 0o700
        assert mode(instance / "site.sqlite3") == 0o600
        with app.app_context():
            db.create_all()
            create_user("alice")
            companions = [p for p in instance.iterdir() if p.name.startswith("site.sqlite3-")]
            assert companions
            assert {mode(p) for p in companions} == {0o600}
            db.engine.dispose()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_database_needs_no_file(tmp_path, url):
    instance = tmp_path / "instance"
    config = make_test_config(tmp_path, DATABASE_URL=url)
    create_app(config)
    assert not any(p.name.endswith(".sqlite3") for p in instance.iterdir())
