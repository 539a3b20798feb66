"""Accept benchmark: POST /api/v1/notifications against a trivial Flask endpoint.

Both are served by gunicorn with the same workers and loaded by wrk with the same
concurrency, in the same run. The API request authenticates the key, validates the body and
commits one outbox row (no worker runs, so the queue only grows). Target: ratio ≥ 0.5. Then
the same POST with a fresh ``Idempotency-Key`` on every request, against the same server:
target ≥ 0.8× the POST without one.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from pathlib import Path

from bench.common import apply_env, bench_env, free_port, gunicorn, report, setup_instance, workdir

# A fresh Idempotency-Key for every request: "<wrk thread>-<request number>".
FRESH_KEYS = """
local made = 0
function setup(thread)
  made = made + 1
  thread:set("thread_id", made)
end
local sent = 0
function request()
  sent = sent + 1
  wrk.headers["Idempotency-Key"] = "bench-" .. thread_id .. "-" .. sent
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
) -> tuple[float, float, float]:
    """Requests per second that wrk reached posting ``body`` (non-2xx answers abort the run),
    and the p50 and p99 latency in ms; with ``fresh_keys``, each request carries an
    ``Idempotency-Key`` of its own."""
    script = path / f"post-{free_port()}.lua"
    lines = [
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
    return rate, _percentile(output, "50"), _percentile(output, "99")


def _percentile(output: str, which: str) -> float:
    """wrk --latency's percentile line ("99%  12.34ms"), in ms."""
    value, unit = re.search(rf"^\s*{which}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
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
            user = create_user("bench")
            create_connection(user, label="bench")
            _, key = create_api_key(user, "bench")

        message = {"connection": "bench", "message": "Disk 91% full on web-1"}
        with gunicorn(
            "bench.trivial_app:app", trivial_port, env, workers=args.workers, threads=args.threads
        ):
            trivial, trivial_p50, trivial_p99 = wrk(
                f"http://127.0.0.1:{trivial_port}/ping",
                message,
                {"Content-Type": "application/json"},
                seconds=args.seconds,
                connections=args.connections,
                path=path,
            )
        with gunicorn("wsgi:app", site_port, env, workers=args.workers, threads=args.threads):
            runs = [
                wrk(
                    f"http://127.0.0.1:{site_port}/api/v1/notifications",
                    message,
                    {"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
                    seconds=args.seconds,
                    connections=args.connections,
                    path=path,
                    fresh_keys=fresh_keys,
                )
                for fresh_keys in (False, True)
            ]
    (accept, p50, p99), (keyed, keyed_p50, keyed_p99) = runs
    database = "PostgreSQL" if args.database_url else "SQLite"
    commits = "one commit per request" if args.no_group_commit else "group commit"
    report(
        f"accept: gunicorn {args.workers} workers x {args.threads} threads, "
        f"wrk {args.connections} connections, {args.seconds} s each, {database}, {commits}",
        [
            ("trivial Flask endpoint", trivial, "req/s"),
            ("POST /api/v1/notifications", accept, "req/s"),
            ("ratio (target >= 0.5)", accept / trivial, "x"),
            ("trivial p50 latency", trivial_p50, "ms"),
            ("trivial p99 latency", trivial_p99, "ms"),
            ("accept p50 latency", p50, "ms"),
            ("accept p99 latency", p99, "ms"),
            ("POST with a fresh Idempotency-Key each", keyed, "req/s"),
            ("keyed / accept (target >= 0.8)", keyed / accept, "x"),
            ("keyed p50 latency", keyed_p50, "ms"),
            ("keyed p99 latency", keyed_p99, "ms"),
        ],
    )


if __name__ == "__main__":
    main()
