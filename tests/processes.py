"""`flask --app wsgi worker` as a real process, for the tests and the chaos run (chaos/).

:func:`worker_env` gives a worker the configuration of a running app (its database, keys and
Notify server) through ``NOTIFY_SITE_*`` variables, as an operator would; :class:`WorkerProcess`
starts it, and stops it as an operator (SIGTERM) or a crash (SIGKILL) would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FLASK = Path(sys.executable).parent / "flask"


def worker_env(config: Mapping[str, Any], instance: Path, **settings: Any) -> dict[str, str]:
    """The environment of a worker for the app configured by ``config``, plus ``settings``
    (``NOTIFY_SITE_<KEY>``; strings as they are, anything else as JSON)."""
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        {
            "NOTIFY_SITE_INSTANCE_PATH": str(instance),
            "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
            "NOTIFY_SITE_SECRET_KEY": config["SECRET_KEY"],
            "NOTIFY_SITE_TOKEN_KEYS": json.dumps(config["TOKEN_KEYS"]),
            "NOTIFY_SITE_NOTIFY_API_ORIGIN": config["NOTIFY_API_ORIGIN"],
            "NOTIFY_SITE_NOTIFY_BOT_ORIGIN": config["NOTIFY_BOT_ORIGIN"],
        }
    )
    for key, value in settings.items():
        env[f"NOTIFY_SITE_{key}"] = value if isinstance(value, str) else json.dumps(value)
    return env


class WorkerProcess:
    """One worker process; its output goes to ``log_path`` (or nowhere)."""

    def __init__(
        self, env: dict[str, str], *, threads: int, log_path: Path | None = None, name: str = ""
    ) -> None:
        self.env = env
        self.threads = threads
        self.log_path = log_path
        self.name = name or "worker"
        self.process: subprocess.Popen | None = None
        self.kills = 0

    def start(self) -> WorkerProcess:
        command = [str(FLASK), "--app", "wsgi", "worker", "--threads", str(self.threads)]
        if self.log_path is None:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            return self
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def kill(self) -> None:
        """``kill -9``: no chance to finish or release anything."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.kills += 1

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, as an operator stops a worker; returns its exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def ensure_stopped(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_tail(self, chars: int = 2000) -> str:
        if self.log_path is None:
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]
