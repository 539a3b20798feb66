"""Accept benchmark: POST /api/v1/notifications against a trivial Flask endpoint.

Both are served by gunicorn with the same workers and loaded by wrk with the same
concurrency, in the same run. The API request authenticates the key, validates the body and
commits one outbox row (no worker runs, so the queue only grows). Target: ratio ≥ 0.5. Then
the same POST with a fresh ``Idempotency-Key`` on every request, against the same server:
target ≥ 0.8× the POST without one.

The three loads take turns over several short rounds (default 5 × 5 s each) with both servers
up, and the figures are medians over the rounds, each ratio taken within its round: on a shared
machine a neighbour's burst then lands in one round instead of deciding the whole run.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import statistics
import subprocess
from pathlib import Path

from bench.common import (
    apply_env,
    bench_env,
    free_port,
    gunicorn,
    idle_cpu,
    named_cpu,
    processes_cpu,
    report,
    setup_instance,
    tree_cpu,
    workdir,
)

# A fresh Idempotency-Key for every request: "<run>-<wrk thread>-<request number>" (the run's
# number, ``run_id``, is set above it in each script, so later rounds do not replay earlier ones).
FRESH_KEYS = """
local made = 0
function setup(thread)
  made = made + 1
  thread:set("thread_id", made)
end
local sent = 0
function request()
  sent = sent + 1
  wrk.headers["Idempotency-Key"] = "bench-" .. run_id .. "-" .. thread_id .. "-" .. sent
  return wrk.format()
end
"""


def wrk(
    url: str,
    body: dict,
    headers: dict,
    *,
    seconds: int,
    connections: int,
    path: Path,
    fresh_keys: bool = False,
) -> tuple[float, float, float, int]:
    """Requests per second that wrk reached posting ``body`` (non-2xx answers abort the run),
    the p50 and p99 latency in ms, and the seconds it ran; with ``fresh_keys``, each request
    carries an ``Idempotency-Key`` of its own."""
    run_id = free_port()
    script = path / f"post-{run_id}.lua"
    lines = [
        f"local run_id = {run_id}",
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(json.dumps(body))}",
        *(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()),
        FRESH_KEYS if fresh_keys else "",
        "function response(status, headers, body)",
        '  if status ~= 202 then error("unexpected status " .. status .. ": " .. body) end',
        '  if headers["Idempotent-Replayed"] then error("a replay: the keys were not fresh") end',
        "end",
    ]
    script.write_text("\n".join(lines) + "\n")
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    return rate, _percentile(output, "50"), _percentile(output, "99"), seconds


def _percentile(output: str, which: str) -> float:
    """wrk --latency's percentile line ("99%  12.34ms"), in ms."""
    value, unit = re.search(rf"^\s*{which}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="per load and round")
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="rounds of trivial, accept and keyed loads, taking turns (default 5)",
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="gunicorn threads per process, for both servers (gunicorn.conf.py runs 4)",
    )
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument(
        "--window-ms", type=float, default=None, help="GROUP_COMMIT_WINDOW_MS (default: the app's)"
    )
    parser.add_argument(
        "--no-group-commit",
        action="store_true",
        help="one commit per request (GROUP_COMMIT=false) instead of shared ones",
    )
    parser.add_argument(
        "--population",
        type=int,
        default=0,
        help="other users to add first, each with an API key and 5 connections (one labelled "
        "like the benchmark's): the read's lookups at a real site's size",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")

    with workdir() as path:
        site_port, trivial_port = free_port(), free_port()
        extra = {"GROUP_COMMIT": "false"} if args.no_group_commit else {}
        if args.window_ms is not None:
            extra["GROUP_COMMIT_WINDOW_MS"] = str(args.window_ms)
        env = bench_env(site_port, path, args.database_url, **extra)
        apply_env(env)
        setup_instance(env)

        from notify_site import create_app
        from notify_site.services.api_keys import create_api_key
        from tests.factories import create_connection, create_user

        app = create_app()
        with app.app_context():
            # A name of its own: a PostgreSQL schema may hold an earlier run's user.
            user = create_user(f"bench-{site_port}")
            create_connection(user, label="bench")
            _, key = create_api_key(user, "bench")
            if args.population:
                _populate(args.population, site_port)

        message = {"connection": "bench", "message": "Disk 91% full on web-1"}
        api_headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        load = {"seconds": args.seconds, "connections": args.connections, "path": path}
        kinds = {
            "trivial": lambda: wrk(
                f"http://127.0.0.1:{trivial_port}/ping",
                message,
                {"Content-Type": "application/json"},
                **load,
            ),
            "accept": lambda: wrk(
                f"http://127.0.0.1:{site_port}/api/v1/notifications", message, api_headers, **load
            ),
            "keyed": lambda: wrk(
                f"http://127.0.0.1:{site_port}/api/v1/notifications",
                message,
                api_headers,
                fresh_keys=True,
                **load,
            ),
        }
        rounds: list[dict[str, tuple]] = []
        with (
            gunicorn(
                "bench.trivial_app:app",
                trivial_port,
                env,
                workers=args.workers,
                threads=args.threads,
            ) as trivial,
            gunicorn(
                "wsgi:app", site_port, env, workers=args.workers, threads=args.threads
            ) as site,
        ):
            servers = {"trivial": trivial.pid, "accept": site.pid, "keyed": site.pid}
            for number in range(args.rounds):
                # Every other round runs its three loads the other way round, so that neither
                # always follows the other (a neighbour's burst, SQLite's growing file).
                order = list(kinds) if number % 2 == 0 else list(reversed(kinds))
                rounds.append({kind: _with_cpu(kinds[kind], servers[kind]) for kind in order})
    _report(args, rounds)


def _populate(users: int, run: int) -> None:
    """``users`` more users, each with an API key and 5 connections (one labelled "bench"),
    written in bulk, then the tables analysed (PostgreSQL plans by their statistics)."""
    import hashlib

    from sqlalchemy import insert, select, text

    from notify_site.db_types import utcnow
    from notify_site.extensions import db
    from notify_site.models import ApiKey, Connection, User

    now = utcnow()
    names = [f"pop-{run}-{number}" for number in range(users)]
    db.session.execute(
        insert(User),
        [
            {"username": name, "is_admin": False, "created_at": now, "session_epoch": "x"}
            for name in names
        ],
    )
    owners = db.session.scalars(select(User.id).where(User.username.in_(names))).all()
    db.session.execute(
        insert(ApiKey),
        [
            {
                "owner_id": owner,
                "name": "k",
                "prefix": "nsk_pop",
                "key_hash": hashlib.sha256(f"{run}-{owner}".encode()).hexdigest(),
                "created_at": now,
                "last_used_at": now,
            }
            for owner in owners
        ],
    )
    db.session.execute(
        insert(Connection),
        [
            {
                "owner_id": owner,
                "label": "bench" if number == 0 else f"chat {number}",
                "token_ciphertext": "x",
                "status": "active",
                "created_at": now,
                "updated_at": now,
            }
            for owner in owners
            for number in range(5)
        ],
    )
    db.session.commit()
    db.session.execute(text("ANALYZE"))
    db.session.commit()


def _with_cpu(load, server: int) -> tuple[float, float, float, dict[str, float]]:
    """``load()``'s figures and the CPU it cost per request, in ms: the server's processes,
    PostgreSQL's, wrk's, and the machine's idle time (both cores)."""
    before, idle, children = processes_cpu(), idle_cpu(), _children_cpu()
    rate, p50, p99, seconds = load()
    after, idle = processes_cpu(), idle_cpu() - idle
    requests = rate * seconds
    cpu = {
        "server": tree_cpu(after, server) - tree_cpu(before, server),
        "postgres": named_cpu(after, "postgres") - named_cpu(before, "postgres"),
        "wrk": _children_cpu() - children,  # wrk has ended: counted among our children
        "idle": idle,
    }
    return rate, p50, p99, {part: 1000 * value / requests for part, value in cpu.items()}


def _children_cpu() -> float:
    """CPU seconds of this process's ended children (each wrk run)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _report(args: argparse.Namespace, rounds: list[dict[str, tuple]]) -> None:
    """Medians over the rounds; the ratios are taken within each round, then their median."""

    def median_of(kind: str, index: int) -> float:
        return statistics.median(one[kind][index] for one in rounds)

    ratios = [one["accept"][0] / one["trivial"][0] for one in rounds]
    keyed_ratios = [one["keyed"][0] / one["accept"][0] for one in rounds]
    database = "PostgreSQL" if args.database_url else "SQLite"
    commits = "one commit per request" if args.no_group_commit else "group commit"
    report(
        f"accept: gunicorn {args.workers} workers x {args.threads} threads, "
        f"wrk {args.connections} connections, {args.rounds} rounds of {args.seconds} s per "
        f"load, {database}, {commits} (medians over the rounds)",
        [
            ("trivial Flask endpoint", median_of("trivial", 0), "req/s"),
            ("POST /api/v1/notifications", median_of("accept", 0), "req/s"),
            ("ratio (target >= 0.5), median of the rounds'", statistics.median(ratios), "x"),
            ("ratio, lowest round", min(ratios), "x"),
            ("ratio, highest round", max(ratios), "x"),
            ("trivial p50 latency", median_of("trivial", 1), "ms"),
            ("trivial p99 latency", median_of("trivial", 2), "ms"),
            ("accept p50 latency", median_of("accept", 1), "ms"),
            ("accept p99 latency", median_of("accept", 2), "ms"),
            ("POST with a fresh Idempotency-Key each", median_of("keyed", 0), "req/s"),
            ("keyed / accept (target >= 0.8), median", statistics.median(keyed_ratios), "x"),
            ("keyed p50 latency", median_of("keyed", 1), "ms"),
            ("keyed p99 latency", median_of("keyed", 2), "ms"),
        ],
    )
    print("  CPU per request, ms (median over the rounds; idle: the machine's idle time):")
    for kind in ("trivial", "accept", "keyed"):
        parts = rounds[0][kind][3]
        figures = "  ".join(
            f"{part} {statistics.median(one[kind][3][part] for one in rounds):.3f}"
            for part in parts
        )
        print(f"    {kind:8} {figures}")
    busy = [
        (one["accept"][3]["server"] + one["accept"][3]["postgres"])
        / (one["trivial"][3]["server"] + one["trivial"][3]["postgres"])
        for one in rounds
    ]
    print(
        "  CPU ratio: trivial's server+database CPU per request / accept's, median "
        f"{1 / statistics.median(busy):.2f} x"
    )
    print("  rounds (trivial / accept / keyed req/s):")
    for number, one in enumerate(rounds, 1):
        figures = " / ".join(f"{one[kind][0]:.0f}" for kind in ("trivial", "accept", "keyed"))
        print(f"    {number}: {figures}   ratio {ratios[number - 1]:.2f}")


if __name__ == "__main__":
    main()
