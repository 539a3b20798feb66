"""`flask --app wsgi worker` as a real process, for the tests and the chaos run (chaos/).

:func:`worker_env` gives a worker the configuration of a running app (its database, keys and
Notify server) through ``NOTIFY_SITE_*`` variables, as an operator would; :class:`WorkerProcess`
starts it, and stops it as an operator (SIGTERM) or a crash (SIGKILL) would.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.servers import ROOT, app_environment

FLASK = Path(sys.executable).parent / "flask"


def worker_env(config: Mapping[str, Any], instance: Path, **settings: Any) -> dict[str, str]:
    """The environment of a worker for the app configured by ``config`` (its database, keys and
    Notify server), plus ``settings`` as NOTIFY_SITE_* keys
    (:func:`tests.servers.app_environment`)."""
    return app_environment(
        config,
        instance,
        NOTIFY_API_ORIGIN=config["NOTIFY_API_ORIGIN"],
        NOTIFY_BOT_ORIGIN=config["NOTIFY_BOT_ORIGIN"],
        **settings,
    )


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

    def terminate(self, timeout: float = 180) -> int:
        """SIGTERM, as an operator stops a worker; returns its exit status. A worker finishes
        the claim in hand first: on a machine under heavy load that took over a minute."""
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
