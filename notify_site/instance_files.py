"""The instance folder is private: the folder 0700, every file in it 0600.

It holds the SQLite database (messages, password hashes, API-key hashes, encrypted tokens),
the generated secrets and the operator's ``config.py``; nobody else on the machine has any
business reading them.

- :func:`prepare` (called by ``create_app``) makes the folder 0700 when it is missing, and
  creates a file-based SQLite database 0600 before anything opens it. SQLite gives its
  ``-wal``, ``-shm`` and ``-journal`` files the mode of the database file, whatever the umask,
  so they are 0600 too. Left to itself SQLite would create the database 0644 (less the umask).
- :func:`tighten` (``flask setup``, so ``make run``) also closes what an older version, or a
  copy made by hand, left open: the folder to 0700, each file in it and the database's
  companions to 0600.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from flask import Flask
from sqlalchemy.engine import make_url

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and its parents) if missing; the folder itself 0700."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty and 0600, unless it exists (an empty file is an empty SQLite
    database)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))


def sqlite_file(app: Flask) -> Path | None:
    """The file of the app's SQLite database, or None (another database, or in memory)."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):  # SQLite URI filenames: left to the operator
        return None
    return Path(database)


def prepare(app: Flask) -> None:
    """Before the app opens its database: a missing instance folder is made 0700 (when the
    database lives in it), and a missing SQLite database file is created 0600."""
    database = sqlite_file(app)
    if database is None:
        return
    if database.parent.resolve() == Path(app.instance_path).resolve():
        make_private_dir(database.parent)
    if database.parent.is_dir():
        create_private_file(database)


def tighten(app: Flask) -> list[Path]:
    """Make the instance folder 0700 and the files in it, and the database's, 0600.

    Returns what was changed. Symbolic links and other people's files are left alone.
    """
    changed: list[Path] = []
    folder = Path(app.instance_path)
    candidates: list[Path] = []
    if folder.is_dir():
        changed.extend(_chmod(folder, PRIVATE_DIR))
        candidates.extend(folder.iterdir())
    database = sqlite_file(app)
    if database is not None:
        candidates.append(database)
        candidates.extend(Path(f"{database}{suffix}") for suffix in SQLITE_COMPANIONS)
    for path in dict.fromkeys(candidates):
        changed.extend(_chmod(path, PRIVATE_FILE, only_files=True))
    return changed


def _chmod(path: Path, mode: int, *, only_files: bool = False) -> list[Path]:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return []
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid():
        return []
    if only_files and not stat.S_ISREG(info.st_mode):
        return []
    if stat.S_IMODE(info.st_mode) & ~mode == 0:
        return []
    os.chmod(path, stat.S_IMODE(info.st_mode) & mode)
    return [path]
