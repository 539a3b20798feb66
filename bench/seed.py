"""Seed a database for the dashboards benchmark: ~500 users, 10,000 connections, 1,000,000
notifications created over the last 7 days (mostly delivered, some failed, some queued or
stuck in sending), and API keys.

    .venv/bin/python -m bench.seed        # SQLite: /tmp/notify-bench-dashboards.sqlite3
    .venv/bin/python -m bench.seed --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

The schema is fresh each time and built by the Alembic migrations (so the benchmark measures
the indexes the migrations create): the SQLite file is replaced; on PostgreSQL a schema
(``--schema``, default ``bench_dashboards``) is dropped and created, and every connection of
the benchmark puts it first on its search_path. Rows go in with Core ``executemany`` in
batches, then the planner's statistics are gathered (ANALYZE / VACUUM ANALYZE).

Accounts to sign in with: ``admin`` (an admin) and ``heavy`` (the user with the most
connections and notifications), both with the password ``bench-password``. Tokens are not real
ciphertexts: the pages never decrypt them, and a worker pointed at this database would mark
the connections in error rather than call anyone.
"""

from __future__ import annotations

import argparse
import random
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also runnable as `python bench/seed.py`
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

DEFAULT_SQLITE = "sqlite:////tmp/notify-bench-dashboards.sqlite3"
DEFAULT_SCHEMA = "bench_dashboards"
PASSWORD = "bench-password"
BATCH = 20_000

ERRORS = [
    (500, "The Notify server answered 500: Internal Server Error"),
    (400, "Invalid message: the message is too long"),
    (None, "connection revoked"),
    (None, "Timed out after 10 s talking to the Notify server"),
    (503, "The Notify server answered 503: Service Unavailable"),
]
TARGETS = [
    ("Sandbox user", "USER"),
    ("Family", "GROUP"),
    ("Team alerts", "GROUP"),
    ("Ops", "GROUP"),
]
HEAVY_ID = 2  # the user "heavy"
# Cumulative shares of (queued, sending, failed); the rest is delivered.
RECENT_SHARES = (0.06, 0.06, 0.08)
OLDER_SHARES = (0.004, 0.005, 0.035)


def with_schema(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` first (PostgreSQL); other URLs unchanged."""
    if not url.startswith("postgresql"):
        return url
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


def fresh_database(url: str, schema: str) -> str:
    """Empty the target and return the URL the app should use."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return url
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return with_schema(url, schema)


def make_app(url: str, instance: Path):
    """The site, configured for ``url`` with throwaway secrets (never the real instance/)."""
    from notify_site import create_app

    return create_app(
        {
            "INSTANCE_PATH": str(instance),
            "DATABASE_URL": url,
            "SECRET_KEY": "bench-secret-key",
            "TOKEN_KEYS": ["kbench:" + Fernet.generate_key().decode()],
            "NOTIFY_CLIENT_ID": "bench",
            "NOTIFY_CLIENT_SECRET": "bench",
        }
    )


def batches(rows: Iterator[dict], size: int = BATCH) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Rows:
    """The rows to insert, drawn from one seeded random generator (the same data every run)."""

    def __init__(self, rng: random.Random, now, days: int) -> None:
        self.rng = rng
        self.now = now
        self.days = days

    def users(self, count: int) -> list[dict]:
        from werkzeug.security import generate_password_hash

        password_hash = generate_password_hash(PASSWORD)  # one hash: scrypt is slow on purpose
        names = ["admin", "heavy"] + [f"user{n:04d}" for n in range(count - 2)]
        return [
            {
                "id": n,
                "username": name,
                "password_hash": password_hash,
                "is_admin": name == "admin",
                "created_at": self.now - timedelta(days=30),
            }
            for n, name in enumerate(names, start=1)
        ]

    def connections(self, count: int, users: int) -> list[dict]:
        """``heavy`` (user 2) owns 200 chats; the other users share the rest unevenly."""
        rng, now = self.rng, self.now
        others = [n for n in range(1, users + 1) if n != HEAVY_ID]
        rng.shuffle(others)  # who owns many is random, not by id
        weights = [1 / (rank + 1) ** 0.6 for rank in range(len(others))]
        owners = [HEAVY_ID] * min(200, count)
        owners += rng.choices(others, weights=weights, k=count - len(owners))
        rows = []
        for n, owner in enumerate(owners, start=1):
            target, kind = rng.choice(TARGETS)
            roll = rng.random()
            status = "active" if roll < 0.92 else ("revoked" if roll < 0.98 else "error")
            known = rng.random() < 0.85  # the others were never checked
            remaining = None
            if known:
                remaining = 0 if rng.random() < 0.03 else rng.randint(0, 1000)
            rows.append(
                {
                    "id": n,
                    "owner_id": owner,
                    "label": f"chat {n}",
                    "token_ciphertext": "kbench$seeded-not-a-real-token",
                    "target_name": target,
                    "target_type": kind,
                    "status": status,
                    "status_detail": "The token was revoked." if status == "revoked" else None,
                    "rate_limit": 1000 if known else None,
                    "rate_remaining": remaining,
                    "rate_image_limit": 50 if known else None,
                    "rate_image_remaining": rng.randint(0, 50) if known else None,
                    "rate_reset_at": self._maybe(known, now, 0, 3600),
                    "rate_checked_at": self._maybe(known, now, -3600, 0),
                    "rate_checked_by": rng.choice(["notify", "status"]) if known else None,
                    "created_at": now - timedelta(days=rng.uniform(self.days, 30)),
                    "updated_at": now - timedelta(hours=rng.uniform(0, 24)),
                    "revoked_at": now - timedelta(days=1) if status == "revoked" else None,
                }
            )
        return rows

    def _maybe(self, known: bool, base, low: float, high: float):
        if not known:
            return None
        return base + timedelta(seconds=self.rng.uniform(low, high))

    def api_keys(self, users: int) -> list[dict]:
        """About 400 keys: ``heavy``'s and those of 300 other users, some with two."""
        rng, now = self.rng, self.now
        others = [n for n in range(1, users + 1) if n != HEAVY_ID]
        rows = []
        for owner in [HEAVY_ID, *rng.sample(others, k=min(300, len(others)))]:
            for _ in range(2 if rng.random() < 0.3 else 1):
                key_id = len(rows) + 1
                rows.append(
                    {
                        "id": key_id,
                        "owner_id": owner,
                        "name": f"key {key_id}",
                        "prefix": "nsk_" + secrets.token_urlsafe(6)[:8],
                        "key_hash": secrets.token_hex(32),
                        "created_at": now - timedelta(days=rng.uniform(self.days, 30)),
                        "last_used_at": now - timedelta(minutes=rng.uniform(0, self.days * 1440))
                        if rng.random() < 0.9
                        else None,
                        "revoked_at": now - timedelta(days=1) if rng.random() < 0.05 else None,
                    }
                )
        return rows

    def notifications(
        self, count: int, connections: list[dict], keys: list[dict]
    ) -> Iterator[dict]:
        """``count`` notifications, oldest first, over the last ``days`` days.

        ``heavy``'s chats get 8 % of them. Older than an hour: 96.5 % delivered, 3 % failed,
        0.4 % queued and overdue (stuck), 0.1 % sending with a lease that ran out (stuck). In
        the last hour: 92 % delivered, 6 % queued (due within 15 minutes), 2 % failed.
        """
        rng, now = self.rng, self.now
        heavy = [row["id"] for row in connections if row["owner_id"] == HEAVY_ID]
        other = [row["id"] for row in connections if row["owner_id"] != HEAVY_ID]
        owner_of = {row["id"]: row["owner_id"] for row in connections}
        keys_of: dict[int, list[int]] = {}
        for key in keys:
            keys_of.setdefault(key["owner_id"], []).append(key["id"])
        span = timedelta(days=self.days).total_seconds()
        offsets = sorted(rng.uniform(0, span) for _ in range(count))
        first = now - timedelta(days=self.days)
        for n, offset in enumerate(offsets, start=1):
            created = first + timedelta(seconds=offset)
            connection_id = rng.choice(heavy if rng.random() < 0.08 else other)
            owner = owner_of[connection_id]
            owner_keys = keys_of.get(owner)
            row = {
                "owner_id": owner,
                "connection_id": connection_id,
                "api_key_id": rng.choice(owner_keys) if owner_keys and rng.random() < 0.6 else None,
                "message": f"Disk {n % 100}% full on web-{n % 50} (#{n})",
                "notification_disabled": False,
                "status": "delivered",
                "attempts": 1,
                "last_error": None,
                "last_status_code": 200,
                "next_attempt_at": created,
                "lease_token": None,
                "lease_expires_at": None,
                "created_at": created,
                "updated_at": created,
                "finished_at": None,
            }
            recent = now - created < timedelta(hours=1)
            queued, sending, failed = RECENT_SHARES if recent else OLDER_SHARES
            roll = rng.random()
            if roll < queued:
                due = now if recent else created
                row.update(
                    status="queued",
                    attempts=rng.randint(0, 3),
                    last_status_code=None,
                    next_attempt_at=due + timedelta(seconds=rng.uniform(0, 900)),
                )
            elif roll < sending:
                row.update(
                    status="sending",
                    attempts=rng.randint(0, 2),
                    last_status_code=None,
                    lease_token=str(uuid.UUID(int=rng.getrandbits(128))),
                    lease_expires_at=created + timedelta(seconds=60),
                )
            elif roll < failed:
                code, error = rng.choice(ERRORS)
                finished = min(created + timedelta(seconds=rng.uniform(1, 7200)), now)
                row.update(
                    status="failed",
                    attempts=rng.randint(1, 8),
                    last_error=error,
                    last_status_code=code,
                    finished_at=finished,
                    updated_at=finished,
                )
            else:
                finished = min(created + timedelta(seconds=rng.uniform(0.2, 5)), now)
                row.update(finished_at=finished, updated_at=finished)
            yield row


def seed(
    url: str,
    *,
    users: int = 500,
    connections: int = 10_000,
    notifications: int = 1_000_000,
    days: int = 7,
    schema: str = DEFAULT_SCHEMA,
    rng_seed: int = 1,
) -> str:
    """Fill a fresh database; returns the URL to reach it (with the schema for PostgreSQL)."""
    from flask_migrate import upgrade

    from notify_site.db_types import utcnow
    from notify_site.extensions import db
    from notify_site.models import ApiKey, Connection, Notification, User

    app_url = fresh_database(url, schema)
    started = time.monotonic()
    rows = Rows(random.Random(rng_seed), utcnow(), days)
    with tempfile.TemporaryDirectory(prefix="notify-seed-") as instance:
        app = make_app(app_url, Path(instance))
        with app.app_context():
            upgrade()
            engine = db.engine
            print(f"schema ready ({engine.dialect.name}) in {time.monotonic() - started:.1f} s")
            user_rows = rows.users(users)
            connection_rows = rows.connections(connections, users)
            key_rows = rows.api_keys(users)
            with engine.begin() as connection:
                connection.execute(User.__table__.insert(), user_rows)
                connection.execute(Connection.__table__.insert(), connection_rows)
                connection.execute(ApiKey.__table__.insert(), key_rows)
            print(
                f"{len(user_rows)} users, {len(connection_rows)} connections, "
                f"{len(key_rows)} API keys in {time.monotonic() - started:.1f} s"
            )
            inserted = 0
            generated = rows.notifications(notifications, connection_rows, key_rows)
            for batch in batches(generated):
                with engine.begin() as connection:
                    connection.execute(Notification.__table__.insert(), batch)
                inserted += len(batch)
                if inserted % 200_000 == 0 or inserted == notifications:
                    elapsed = time.monotonic() - started
                    print(f"  {inserted:>9,} notifications, {elapsed:.1f} s")
            if engine.dialect.name == "postgresql":
                # Statistics for the planner, and the visibility map for index-only scans.
                autocommit = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                with autocommit as connection:
                    connection.execute(sa.text("VACUUM ANALYZE"))
            else:
                with engine.begin() as connection:
                    connection.execute(sa.text("ANALYZE"))
            engine.dispose()
    print(f"seeded in {time.monotonic() - started:.1f} s: {app_url}")
    return app_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_SQLITE)
    parser.add_argument("--schema", default=DEFAULT_SCHEMA, help="PostgreSQL only")
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--notifications", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args()
    seed(
        args.database_url,
        users=args.users,
        connections=args.connections,
        notifications=args.notifications,
        days=args.days,
        schema=args.schema,
    )


if __name__ == "__main__":
    main()
