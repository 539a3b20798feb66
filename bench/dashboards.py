"""Dashboards benchmark: render times of /admin and /dashboard on a seeded database.

The site runs under gunicorn (2 processes, like bench/accept.py) against a database seeded by
bench/seed.py (10,000 connections, 1,000,000 notifications); one client signs in through the
real form and times sequential GETs, each from sending the request to reading the whole body.
Afterwards the statements behind each page are captured in-process and their plans printed
(SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN), to show which index each one uses.

    .venv/bin/python -m bench.dashboards        # SQLite; seeds /tmp/... first if it is empty
    .venv/bin/python -m bench.dashboards --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Target: p95 ≤ 150 ms per page. Times are wall-clock on a shared machine: the load average is
printed with them.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also runnable as `python bench/dashboards.py`
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bench.common import bench_env, free_port, gunicorn, report, workdir  # noqa: E402
from bench.seed import (  # noqa: E402
    DEFAULT_SCHEMA,
    DEFAULT_SQLITE,
    PASSWORD,
    make_app,
    seed,
    with_schema,
)

TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')

# (name, who signs in, path)
PAGES = [
    ("/admin first page", "admin", "/admin"),
    ("/admin filtered (status=error)", "admin", "/admin?status=error"),
    ("/admin filtered (one owner)", "admin", "/admin?user=user0007"),
    (
        "/admin deep pages (connections p.200, lists p.40)",
        "admin",
        "/admin?page=200&stuck_page=40&failed_page=40&keys_page=16",
    ),
    ("/admin 48-hour chart", "admin", "/admin?hours=48"),
    ("/admin/summary.json", "admin", "/admin/summary.json"),
    ("/admin/connections.json p.150", "admin", "/admin/connections.json?page=150"),
    ("/dashboard (user with 200 chats, ~80k rows)", "heavy", "/dashboard"),
]


def seeded(url: str) -> bool:
    """Whether ``url`` already holds a seeded database (its admin account exists)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return bool(
                connection.execute(
                    sa.text("SELECT count(*) FROM users WHERE username = 'admin'")
                ).scalar()
            )
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def sign_in(base: str, username: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/login", timeout=30).text
    answer = session.post(
        f"{base}/login",
        data={
            "username": username,
            "password": PASSWORD,
            "csrf_token": TOKEN.search(page).group(1),
        },
        allow_redirects=False,
        timeout=30,
    )
    if answer.status_code != 302:
        raise RuntimeError(f"cannot sign in as {username}: {answer.status_code}")
    return session


def time_page(session: requests.Session, url: str, count: int, warmup: int) -> list[float] | None:
    """Milliseconds per request, or None when the page does not exist (yet)."""
    for _ in range(warmup):
        answer = session.get(url, timeout=60)
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        answer = session.get(url, timeout=60)
        _ = answer.content
        times.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    return times


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def cold_chart(url: str, count: int) -> list[tuple[str, float, str]]:
    """The hourly chart counted from scratch (as after its 5-minute cache expires), in-process."""
    from notify_site.services import admin

    rows = []
    with tempfile.TemporaryDirectory(prefix="notify-chart-") as instance:
        app = make_app(url, Path(instance))
        with app.app_context():
            for hours in admin.CHART_HOURS:
                times = []
                for _ in range(count):
                    admin.forget_closed_hours()
                    started = time.perf_counter()
                    admin.deliveries_per_hour(hours)
                    times.append((time.perf_counter() - started) * 1000)
                name = f"chart counted from scratch, {hours} h (in-process)"
                rows.append((f"{name} p50", statistics.median(times), "ms"))
                rows.append((f"{name} p95", percentile(times, 0.95), "ms"))
            from notify_site.extensions import db

            db.engine.dispose()
    return rows


def print_plan(lines: list[str]) -> None:
    """The plan's lines; a long plan (the chart's, one index search per hour) is shown with
    each distinct line once and how often it appears."""
    if len(lines) <= 60:
        for line in lines:
            print("   ", re.sub(r"\s*\(cost=[^)]*\)", "", line))
        return
    counts: dict[str, int] = {}
    for line in lines:
        shape = re.sub(r"\b(SUBQUERY|InitPlan|SubPlan) \d+", r"\1 n", line)
        shape = re.sub(r"\$\d+", "$n", shape)
        shape = re.sub(r"'[^']*'::timestamp with time zone", "'<time>'", shape)
        shape = re.sub(r"\b(notifications|connections|users)_\d+\b", r"\1_n", shape)
        shape = re.sub(r"\s*\(cost=[^)]*\)", "", shape).rstrip()
        counts[shape] = counts.get(shape, 0) + 1
    for shape, count in counts.items():
        print("   ", shape, f"  (x{count})" if count > 1 else "")


def explain(url: str) -> None:
    """Print the plan of every distinct statement the benchmarked pages run."""
    from sqlalchemy import event

    from notify_site.extensions import db
    from notify_site.services import admin

    with tempfile.TemporaryDirectory(prefix="notify-explain-") as instance:
        app = make_app(url, Path(instance))
        app.config["WTF_CSRF_ENABLED"] = False
        with app.app_context():
            engine = db.engine
            admin.forget_closed_hours()  # so the chart's full statement runs (and is shown)
        captured: dict[str, tuple] = {}
        current_page = [""]

        def capture(connection, cursor, statement, parameters, context, executemany):
            if statement.lstrip().upper().startswith("SELECT"):
                captured.setdefault(statement, (parameters, current_page[0]))

        # Requests run outside any app context of ours: each gets its own, so Flask-Login's
        # per-context cache of the signed-in user cannot leak from one client to the other.
        event.listen(engine, "before_cursor_execute", capture)
        for username in ("admin", "heavy"):
            client = app.test_client()
            client.post("/login", data={"username": username, "password": PASSWORD})
            for name, who, path in PAGES:
                if who == username:
                    current_page[0] = name
                    client.get(path)
        event.remove(engine, "before_cursor_execute", capture)

        prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
        print(f"\n== plans ({engine.dialect.name}): {len(captured)} distinct statements")
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            for statement, (parameters, page) in captured.items():
                if statement.lstrip().startswith("SELECT users."):
                    continue  # signing in and loading the session's user
                cursor.execute(prefix + statement, parameters)
                lines = [
                    str(row[-1] if engine.dialect.name == "sqlite" else row[0])
                    for row in cursor.fetchall()
                ]
                text = " ".join(statement.split())
                print(f"\n-- [{page}] {text[:300]}{' …' if len(text) > 300 else ''}")
                print_plan(lines)
        finally:
            raw.close()
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_SQLITE)
    parser.add_argument("--schema", default=DEFAULT_SCHEMA, help="PostgreSQL only")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reseed", action="store_true", help="seed even if already seeded")
    parser.add_argument("--no-explain", action="store_true")
    args = parser.parse_args()

    url = with_schema(args.database_url, args.schema)
    if args.reseed or not seeded(url):
        url = seed(args.database_url, schema=args.schema)
    database = "PostgreSQL" if url.startswith("postgresql") else "SQLite"

    rows = []
    with workdir() as path:
        port = free_port()
        env = bench_env(port, path, url, NOTIFY_CLIENT_ID="bench", NOTIFY_CLIENT_SECRET="bench")
        base = f"http://127.0.0.1:{port}"
        load_before = os.getloadavg()[0]
        with gunicorn("wsgi:app", port, env, workers=args.workers, threads=1):
            sessions = {who: sign_in(base, who) for who in ("admin", "heavy")}
            for name, who, page in PAGES:
                times = time_page(sessions[who], base + page, args.requests, args.warmup)
                if times is None:
                    print(f"  {name}: not found (404), skipped")
                    continue
                rows.append((f"{name} p50", statistics.median(times), "ms"))
                rows.append((f"{name} p95", percentile(times, 0.95), "ms"))
        load_after = os.getloadavg()[0]
    rows += cold_chart(url, 20)
    report(
        f"dashboards: gunicorn {args.workers} workers, {args.requests} sequential requests "
        f"per page after {args.warmup} warm-up, {database} "
        f"(load average {load_before:.1f} before, {load_after:.1f} after; target p95 <= 150)",
        rows,
    )
    if not args.no_explain:
        explain(url)


if __name__ == "__main__":
    main()
