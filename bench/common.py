"""Shared set-up for the benchmarks: a private instance, `flask setup`, gunicorn, and timing.

Benchmarks compare against a baseline measured in the same run (the machines are shared and
noisy), and print ratios. Nothing here is used by the tests.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

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


def setup_instance(env: dict) -> None:
    subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "setup"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


@contextmanager
def gunicorn(app: str, port: int, env: dict, *, workers: int = 2, threads: int = 1):
    """Serve ``app`` with gunicorn until the block ends."""
    process = subprocess.Popen(
        [
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
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


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
