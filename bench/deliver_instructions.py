"""Instructions per delivered notification, counted by callgrind around an in-process worker.

The delivery counterpart of bench/instructions.py (which counts the accept path). One run of
this module under valgrind counts one variant::

    BENCH_UNDER_VALGRIND=1 valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file=/dev/null .venv/bin/python -m bench.deliver_instructions deliver

It builds a private instance (``flask setup``), serves it with gunicorn only long enough to
connect ``--connections`` sandbox chats through the real OAuth flow, then works in this
process: the app's Notify client reaches the relay through a requests transport adapter that
calls the same app's WSGI entry directly (no sockets, so everything the delivery costs in user
space is in this process and counted). ``--warmup`` notifications are queued and delivered,
then ``--notifications`` more are queued and delivered with callgrind's instrumentation on
(switched on and off with ``callgrind_control``). The worker is
:meth:`notify_site.worker.Worker.run_until_idle`: the same claim / deliver / finish code as the
threaded loop, one claim at a time. Without valgrind it prints CPU time per notification.

Variants, which together split a delivery's cost:

- ``deliver``: the worker delivering to the in-process relay (worker + relay + database);
- ``deliver-stub``: the worker against a stub transport that answers every call 200 with
  rate-limit headers (the worker and its own database work, no relay);
- ``relay``: a kept-alive session posting straight to ``/relay/api/notify`` (what
  bench/deliver.py's "relay capacity" baseline asks of the relay, plus its client);
- ``client``: that same session posting to the stub transport (the baseline's client alone).

So per notification: worker = ``deliver-stub`` (its requests client included), relay =
``relay`` − ``client``, and the baseline's client = ``client``. The database's share of the
worker is printed by ``--all --out-dir`` from the callgrind files (inclusive cost of the
sqlite3 module's execute and commit, i.e. SQLite itself; SQLAlchemy's Python is counted as
the worker's).

``--all`` runs every variant under valgrind and prints the table bench/README.md shows;
``--profile`` runs one variant under cProfile instead and prints the top functions (the
wall-time view; sqlite's fsyncs are in it, which callgrind does not count).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from bench.common import (
    apply_env,
    bench_env,
    callgrind,
    count_instructions,
    free_port,
    gunicorn,
    setup_instance,
    workdir,
)

VARIANTS = ("deliver", "deliver-stub", "relay", "client")


class WSGIAdapter(BaseAdapter):
    """A requests transport that hands each request to a WSGI app in this process."""

    def __init__(self, app) -> None:
        super().__init__()
        from werkzeug.test import Client

        self.client = Client(app)

    def send(self, request, **kwargs):
        url = urlsplit(request.url)
        body = request.body
        if isinstance(body, str):
            body = body.encode()
        answer = self.client.open(
            path=url.path,
            query_string=url.query,
            method=request.method,
            headers=list(request.headers.items()),
            data=body or b"",
            base_url=f"{url.scheme}://{url.netloc}",
        )
        return _response(request, answer.status_code, dict(answer.headers), answer.get_data())

    def close(self) -> None:
        pass


class StubAdapter(BaseAdapter):
    """Answers every call 200 with a Notify body and a roomy rate-limit window."""

    BODY = json.dumps({"status": 200, "message": "ok"}).encode()

    def send(self, request, **kwargs):
        headers = {
            "Content-Type": "application/json",
            "X-RateLimit-Limit": "1000",
            "X-RateLimit-Remaining": "999",
            "X-RateLimit-ImageLimit": "50",
            "X-RateLimit-ImageRemaining": "50",
            "X-RateLimit-Reset": str(int(time.time()) + 3600),
        }
        return _response(request, 200, headers, self.BODY)

    def close(self) -> None:
        pass


def _response(request, status: int, headers: dict, content: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers = CaseInsensitiveDict(headers)
    response._content = content
    response.url = request.url
    response.request = request
    response.reason = "OK" if status == 200 else ""
    response.encoding = "utf-8"
    return response


def build(variant: str, path, connections: int):
    """The app, the chats' tokens and a function queueing ``count`` notifications."""
    from bench.deliver import connect_chats

    port = free_port()
    env = bench_env(port, path, WORKER_BATCH_SIZE=50)
    apply_env(env)
    setup_instance(env)
    with gunicorn("wsgi:app", port, env, workers=1, threads=2):
        connect_chats(f"http://127.0.0.1:{port}", connections)

    from sqlalchemy import select

    from notify_site import create_app
    from notify_site.extensions import db
    from notify_site.keyring import keyring
    from notify_site.models import Connection, User
    from notify_site.notify_content import Content
    from notify_site.services.connections import connection_context
    from notify_site.services.notifications import add_notifications
    from notify_site.services.notify_clients import notify_client

    app = create_app()
    origin = app.config["NOTIFY_API_ORIGIN"]
    with app.app_context():
        adapter = StubAdapter() if variant in ("deliver-stub", "client") else WSGIAdapter(app)
        notify_client().session.mount(origin, adapter)
        rows = list(db.session.scalars(select(Connection).order_by(Connection.id)))
        owner_id = rows[0].owner_id
        connection_ids = [row.id for row in rows]
        tokens = [
            keyring().decrypt(row.token_ciphertext, context=connection_context(row.id))
            for row in rows
        ]
        db.session.rollback()

    def queue(start: int, count: int) -> None:
        with app.app_context():
            owner = db.session.get(User, owner_id)
            chats = [db.session.get(Connection, i) for i in connection_ids]
            for n in range(start, start + count):
                add_notifications(owner, [chats[n % len(chats)]], Content(message=f"bench {n}"))
            db.session.commit()

    return app, origin, tokens, queue, adapter


def run_one(args, under_valgrind: bool) -> None:
    with workdir() as path:
        app, origin, tokens, queue, adapter = build(args.variant, path, args.connections)
        if args.variant in ("relay", "client"):
            session = requests.Session()
            session.mount(origin, adapter)

            def work(start: int, count: int) -> int:
                for n in range(start, start + count):
                    session.post(
                        f"{origin}/api/notify",
                        data={"message": f"direct {n}"},
                        headers={"Authorization": f"Bearer {tokens[n % len(tokens)]}"},
                        timeout=30,
                    ).raise_for_status()
                return count
        else:
            from notify_site.worker import Worker

            worker = Worker(app, threads=args.threads)

            def work(start: int, count: int) -> int:
                queue(start, count)
                return worker.run_until_idle()

        done = work(0, args.warmup)
        if done != args.warmup:
            raise RuntimeError(f"warm-up delivered {done} of {args.warmup}")
        if args.variant not in ("relay", "client"):
            queue(args.warmup, args.notifications)
            work = _deliver_only(worker)
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
        if under_valgrind:
            callgrind("on")
        started = time.process_time()
        wall = time.perf_counter()
        if profiler:
            profiler.enable()
        done = work(args.warmup, args.notifications)
        if profiler:
            profiler.disable()
        spent = time.process_time() - started
        wall = time.perf_counter() - wall
        if under_valgrind:
            callgrind("off")
        if done != args.notifications:
            raise RuntimeError(f"delivered {done} of {args.notifications}")
        if under_valgrind:
            print(f"counted {done} notifications", flush=True)
        else:
            print(
                f"{args.variant}: {spent / done * 1e3:.3f} ms CPU, "
                f"{wall / done * 1e3:.3f} ms wall per notification"
            )
        if profiler:
            import pstats

            stats = pstats.Stats(profiler).sort_stats(args.sort)
            stats.print_stats(args.top)


def _deliver_only(worker):
    def work(_start: int, _count: int) -> int:
        return worker.run_until_idle()

    return work


def run_all(args) -> None:
    rows = []
    for variant in args.variants.split(","):
        collected = count_instructions(
            "bench.deliver_instructions",
            [
                variant,
                "--warmup",
                str(args.warmup),
                "--notifications",
                str(args.notifications),
                "--connections",
                str(args.connections),
            ],
            f"{args.out_dir}/callgrind.{variant}" if args.out_dir else None,
        )
        per = collected / args.notifications / 1e6
        sqlite = None
        if args.out_dir:
            sqlite = sqlite_share(f"{args.out_dir}/callgrind.{variant}") / args.notifications / 1e6
        rows.append((variant, per, sqlite))
        print(f"  {variant:<14} {per:8.3f} M instructions / notification", flush=True)
    print()
    print("| variant | M instructions / notification | of which in SQLite |")
    print("|---|---|---|")
    for variant, value, sqlite in rows:
        print(f"| {variant} | {value:.3f} | {'' if sqlite is None else f'{sqlite:.3f}'} |")


#: SQLite's entry points that the sqlite3 module calls for a statement or a commit; their
#: inclusive costs do not overlap (a prepared statement is cached, and stepped).
SQLITE_ENTRY_POINTS = ("sqlite3_step", "sqlite3_prepare_v2", "sqlite3_prepare_v3")


def sqlite_share(path: str) -> int:
    """Instructions spent inside SQLite itself (inclusive of its entry points)."""
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    total = 0
    for line in out.splitlines():
        match = re.match(r"\s*([\d,]+) .*?:(\w+) ", line)
        if match and match.group(2) in SQLITE_ENTRY_POINTS:
            total += int(match.group(1).replace(",", ""))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", nargs="?", choices=VARIANTS, default="deliver")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--notifications", type=int, default=400)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8, help="claims per round")
    parser.add_argument("--all", action="store_true", help="every variant, under valgrind")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out-dir", help="keep each variant's callgrind file here (--all)")
    parser.add_argument("--profile", action="store_true", help="cProfile the counted part")
    parser.add_argument("--sort", default="cumulative", help="cProfile sort key")
    parser.add_argument("--top", type=int, default=40, help="cProfile lines shown")
    args = parser.parse_args()
    if args.all:
        run_all(args)
        return
    run_one(args, bool(os.environ.get("BENCH_UNDER_VALGRIND")))


if __name__ == "__main__":
    sys.exit(main())
