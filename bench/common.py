"""Shared set-up for the benchmarks: a private instance, `flask setup`, gunicorn, and timing.

Benchmarks compare against a baseline measured in the same run (the machines are shared and
noisy), and print ratios. Nothing here is used by the tests.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_env(port: int, workdir: Path, database_url: str | None = None, **extra) -> dict:
    """Environment for every process of one benchmark run: same keys, database and origins."""
    origin = f"http://127.0.0.1:{port}/relay"
    env = {
        **os.environ,
        "NOTIFY_SITE_INSTANCE_PATH": str(workdir / "instance"),
        "DATABASE_URL": database_url or f"sqlite:///{workdir / 'bench.sqlite3'}",
        "NOTIFY_SITE_SECRET_KEY": "bench-secret-key",
        "NOTIFY_SITE_TOKEN_KEYS": json.dumps(["kbench:" + Fernet.generate_key().decode()]),
        "NOTIFY_SITE_NOTIFY_BOT_ORIGIN": origin,
        "NOTIFY_SITE_NOTIFY_API_ORIGIN": origin,
        "NOTIFY_SITE_NOTIFY_REDIRECT_URI": f"http://127.0.0.1:{port}/callback",
        "NOTIFY_SITE_RELAY_RATE_LIMIT": "100000000",
        "NOTIFY_SITE_RELAY_IMAGE_RATE_LIMIT": "100000000",
        # The sandbox counts LINE units (issue 15); benchmarks send far past a month's quota.
        "NOTIFY_SITE_RELAY_SANDBOX_MONTHLY_QUOTA": "1000000000",
        # The per-key API limit stays on (its cost is part of a request) but never bites.
        "NOTIFY_SITE_API_RATE_LIMIT": "100000000 per minute",
    }
    env.update({f"NOTIFY_SITE_{key}": str(value) for key, value in extra.items()})
    return env


def apply_env(env: dict) -> None:
    """Make this process see the same configuration as the servers it starts."""
    os.environ.update(env)


@contextmanager
def workdir():
    with tempfile.TemporaryDirectory(prefix="notify-bench-") as path:
        yield Path(path)


@contextmanager
def fresh_schema(base_url: str):
    """A URL whose connections use a new schema, dropped (with its connections) afterwards."""
    import sqlalchemy as sa

    engine = sa.create_engine(base_url)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base_url else "?"
    options = quote(f"-csearch_path={schema}")
    try:
        yield f"{base_url}{separator}options={options}&application_name={schema}"
    finally:
        from tests.pg_schemas import drop_schema_on

        with engine.begin() as connection:
            drop_schema_on(connection, schema)
        engine.dispose()


def setup_instance(env: dict) -> None:
    subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "setup"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


@contextmanager
def gunicorn(app: str, port: int, env: dict, *, workers: int = 2, threads: int = 1, cpus: str = ""):
    """Serve ``app`` with gunicorn until the block ends (on the CPUs ``cpus`` names, as
    ``taskset -c`` reads them, if given)."""
    process = subprocess.Popen(
        [
            *(["taskset", "-c", cpus] if cpus else []),
            str(BIN / "gunicorn"),
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            app,
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        wait_for_port(port)
        wait_until_serving(port, workers)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_until_serving(port: int, workers: int, timeout: float = 60) -> None:
    """Wait until every gunicorn worker process answers HTTP.

    The port is open as soon as the master binds it, while each worker still imports and
    builds the app (a second or more): a benchmark that started then would count the workers'
    start-up in its window. Any answer (even 404) counts; each request is on a new connection,
    and the answers must come ``4 × workers`` times in a row within a second each, so that
    every worker has booted.
    """
    deadline = time.monotonic() + timeout
    in_a_row = 0
    while in_a_row < 4 * workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"port {port} is open but the app does not answer")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.settimeout(1)
                sock.sendall(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                answered = sock.recv(16).startswith(b"HTTP/")
        except OSError:
            answered = False
        in_a_row = in_a_row + 1 if answered else 0
        if not answered:
            time.sleep(0.1)


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port}")


def report(title: str, rows: list[tuple[str, float, str]]) -> None:
    print(f"\n== {title}")
    for name, value, unit in rows:
        print(f"  {name:<48} {value:>10.2f} {unit}")


def callgrind(switch: str) -> None:
    """Switch callgrind's instrumentation of this process "on" or "off" (under valgrind with
    ``--instr-atstart=no``, only what runs between the two is counted)."""
    subprocess.run(
        ["callgrind_control", "-i", switch, str(os.getpid())], check=True, capture_output=True
    )


def count_instructions(module: str, arguments: list[str], out_file: str | None = None) -> int:
    """Instructions callgrind counted while ``python -m module *arguments`` had them switched
    on (:func:`callgrind`); the module sees ``BENCH_UNDER_VALGRIND=1``. ``out_file`` keeps the
    callgrind file (for callgrind_annotate)."""
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out_file or '/dev/null'}",
            str(BIN / "python"),
            "-m",
            module,
            *arguments,
        ],
        cwd=ROOT,
        env={**os.environ, "BENCH_UNDER_VALGRIND": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    # callgrind prints "Collected : N" for the instrumented part only
    return int(re.search(r"Collected : (\d+)", out.stderr).group(1))


def wait_until_delivered(poll: float = 0.05, ready: Callable[[], bool] | None = None) -> None:
    """Wait until no notification is pending (inside the app context of the database the
    workers deliver from), looking every ``poll`` seconds.

    ``ready``: a cheap check of this process's own (such as :func:`delivery_calls`) asked
    first each time; the database is asked only once it says yes. Counting the pending rows
    20 times a second took CPU and the GIL from the worker threads it was timing.
    """
    from sqlalchemy import func, select

    from notify_site.extensions import db
    from notify_site.models import Notification, NotificationStatus

    while True:
        if ready is not None and not ready():
            time.sleep(poll)
            continue
        pending = db.session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.status.in_(NotificationStatus.PENDING))
        )
        db.session.rollback()
        if pending == 0:
            return
        time.sleep(poll)


def threads_cpu() -> dict[str, float]:
    """CPU seconds (user and kernel) used so far by each live thread of this process, summed
    by thread name without its number (``deliver_3`` counts as ``deliver``), from
    ``/proc/self/task``: a thread's own CPU since it started."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
        except OSError:  # it ended meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        name = thread.name.rstrip("0123456789_")
        found[name] = found.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return found


def delivery_calls() -> float:
    """The calls to the Notify API the workers of this process have made so far (their
    metrics counter, every outcome)."""
    from notify_site.metrics import DELIVERY_CALLS

    return sum(
        sample.value
        for metric in DELIVERY_CALLS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


def processes_cpu() -> dict[int, tuple[int, str, float]]:
    """Every process's parent, command name and CPU seconds so far (user and kernel, from
    ``/proc/PID/stat``); a process that ends while being read is left out."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[int, str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        found[int(entry.name)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / tick)
    return found


def tree_cpu(processes: dict[int, tuple[int, str, float]], root: int) -> float:
    """CPU seconds of ``root`` and its descendants in a :func:`processes_cpu` reading."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in processes.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in processes:
            total += processes[pid][2]
        todo.extend(children.get(pid, ()))
    return total


def named_cpu(processes: dict[int, tuple[int, str, float]], name: str) -> float:
    """CPU seconds of the processes whose command name starts with ``name`` (``postgres``)."""
    return sum(cpu for _, command, cpu in processes.values() if command.startswith(name))


def idle_cpu() -> float:
    """CPU seconds the whole machine has spent idle so far (``/proc/stat``, idle + iowait)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")
