"""Instructions per accepted request, counted by callgrind around in-process WSGI calls.

Instruction counts do not move with the machine's load, so they compare versions exactly
(user space only: the commit's system calls are not in them). One run of this module under
valgrind counts one variant::

    BENCH_UNDER_VALGRIND=1 valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file=/dev/null .venv/bin/python -m bench.instructions accept

It builds a private instance (``flask setup``, as the other benchmarks), the app in this
process, and calls its WSGI entry directly with a prepared environ: ``--warmup`` calls, then
``--requests`` calls counted (callgrind's instrumentation is switched on and off around them
with ``callgrind_control``), and prints instructions per request. Without valgrind it prints
the CPU time per request instead. ``--all`` runs every variant under valgrind, one after the
other, and prints the table bench/README.md shows.

Variants: ``trivial`` (bench/trivial_app.py), ``accept`` (the API's POST, one connection by
label, no Idempotency-Key), ``accept-idem`` (a fresh Idempotency-Key per request),
``accept-nolimit`` (the per-key limit off), ``unauthorized`` (a wrong key: refused with 401).

``--database-url`` runs it on PostgreSQL (a schema of the caller's, as bench/accept.py);
``--profile`` prints a cProfile of the counted calls (made on the main thread).

``--threads N`` (without valgrind) calls from N threads at once and prints the CPU time per
request, kernel time included (SQLite's fsync), with how many rows shared each commit: what a
gunicorn process with N threads spends on its app, without gunicorn, wrk or the network.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import threading
import time

from bench.common import (
    apply_env,
    bench_env,
    callgrind,
    count_instructions,
    free_port,
    setup_instance,
    workdir,
)

VARIANTS = ("trivial", "accept", "accept-idem", "accept-nolimit", "unauthorized")
MESSAGE = {"connection": "bench", "message": "Disk 91% full on web-1"}


def build(variant: str, path, database_url: str | None = None):
    """The WSGI app and a function giving a fresh environ for request number ``n``."""
    from werkzeug.test import EnvironBuilder

    body = json.dumps(MESSAGE).encode()
    if variant == "trivial":
        from bench.trivial_app import app

        url, headers = "/ping", {}
    else:
        extra = {"RATELIMIT_ENABLED": "false"} if variant == "accept-nolimit" else {}
        env = bench_env(free_port(), path, database_url, **extra)
        apply_env(env)
        setup_instance(env)
        from notify_site import create_app
        from notify_site.services.api_keys import create_api_key
        from tests.factories import create_connection, create_user

        app = create_app()
        with app.app_context():
            # A name of its own: a PostgreSQL schema may hold an earlier run's user.
            user = create_user(f"bench-{free_port()}")
            create_connection(user, label="bench")
            _, key = create_api_key(user, "bench")
        url = "/api/v1/notifications"
        headers = {"Authorization": "Bearer " + ("nsk_wrong" if variant == "unauthorized" else key)}
    base = EnvironBuilder(
        path=url, method="POST", data=body, content_type="application/json", headers=headers
    ).get_environ()

    def environ(n: int) -> dict:
        fresh = dict(base)
        fresh["wsgi.input"] = io.BytesIO(body)
        if variant == "accept-idem":
            fresh["HTTP_IDEMPOTENCY_KEY"] = f"request-{n}"
        return fresh

    return app, environ


def call(app, environ: dict, expected: int) -> None:
    status: list[str] = []
    chunks = app.wsgi_app(environ, lambda s, h, exc_info=None: status.append(s))
    b"".join(chunks)
    getattr(chunks, "close", lambda: None)()
    if not status[0].startswith(str(expected)):
        raise RuntimeError(f"unexpected answer {status[0]}")


def run_one(
    variant: str,
    warmup: int,
    requests: int,
    under_valgrind: bool,
    threads: int = 1,
    database_url: str | None = None,
    profile: bool = False,
) -> None:
    expected = 401 if variant == "unauthorized" else 202
    with workdir() as path:
        app, environ = build(variant, path, database_url)
        for n in range(warmup):
            call(app, environ(n), expected)
        numbers = iter(range(warmup, warmup + requests))
        lock = threading.Lock()

        def caller() -> None:
            while True:
                with lock:
                    n = next(numbers, None)
                if n is None:
                    return
                call(app, environ(n), expected)

        if under_valgrind:
            callgrind("on")
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        started = time.process_time()
        if profiler is not None:  # cProfile sees its own thread only
            caller()
        else:
            callers = [threading.Thread(target=caller) for _ in range(threads)]
            for thread in callers:
                thread.start()
            for thread in callers:
                thread.join()
        spent = time.process_time() - started
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        if under_valgrind:
            callgrind("off")
            print(f"counted {requests} requests", flush=True)
        else:
            print(f"{variant}: {spent / requests * 1e3:.3f} ms CPU per request ({threads} threads)")
            group = getattr(app, "extensions", {}).get("notify_site.group_commit")
            if group is not None:
                writer = group[1]
                print(f"  group commit: {writer.rows} rows in {writer.batches} transactions")


def run_all(
    warmup: int, requests: int, variants: list[str], database_url: str | None = None
) -> None:
    rows = []
    for variant in variants:
        collected = count_instructions(
            "bench.instructions",
            [
                variant,
                "--warmup",
                str(warmup),
                "--requests",
                str(requests),
                *(["--database-url", database_url] if database_url else []),
            ],
        )
        rows.append((variant, collected / requests / 1e6))
        print(f"  {variant:<20} {collected / requests / 1e6:8.2f} M instructions / request")
    print()
    print("| variant | M instructions / request |")
    print("|---|---|")
    for variant, value in rows:
        print(f"| {variant} | {value:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", nargs="?", choices=VARIANTS, default="accept")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--all", action="store_true", help="every variant, under valgrind")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument(
        "--threads", type=int, default=1, help="callers at once (CPU time mode, group commit)"
    )
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the counted calls (CPU time mode)"
    )
    args = parser.parse_args()
    if args.all:
        run_all(args.warmup, args.requests, args.variants.split(","), args.database_url)
        return
    under_valgrind = bool(os.environ.get("BENCH_UNDER_VALGRIND"))
    run_one(
        args.variant,
        args.warmup,
        args.requests,
        under_valgrind,
        args.threads,
        args.database_url,
        args.profile,
    )


if __name__ == "__main__":
    sys.exit(main())
