"""A throwaway PostgreSQL cluster for the chaos run: its own directory, port and life.

The machine's PostgreSQL server is shared (other engineers' tests, CI), so the chaos run never
touches it: it ``initdb``s a cluster into a temporary directory, serves it on a free loopback
port with ``fsync`` on (a restart must prove durability, not skip it), stops and starts it as
the scenarios need, and removes it at the end. The binaries are found with a glob
(``/usr/lib/postgresql/*/bin``, newest version first) or ``CHAOS_PG_BINDIR``.

initdb refuses to run as root: when the harness is root (as on CI), every server command runs
as the ``postgres`` user through ``runuser``, in a directory that user owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

SERVER_USER = "postgres"


class ClusterError(RuntimeError):
    pass


def find_bindir() -> Path:
    """The newest installed PostgreSQL's bin directory (or ``CHAOS_PG_BINDIR``)."""
    configured = os.environ.get("CHAOS_PG_BINDIR")
    candidates = [configured] if configured else glob.glob("/usr/lib/postgresql/*/bin")

    def version(path: str) -> tuple[int, ...]:
        found = re.search(r"/postgresql/([\d.]+)/bin", path)
        return tuple(int(part) for part in found[1].split(".")) if found else (0,)

    for path in sorted(candidates, key=version, reverse=True):
        if (Path(path) / "initdb").exists() and (Path(path) / "pg_ctl").exists():
            return Path(path)
    raise ClusterError(
        "no PostgreSQL binaries: apt-get install postgresql (or set CHAOS_PG_BINDIR)"
    )


class Cluster:
    """One private cluster. :meth:`create` it, then :meth:`start`, :meth:`stop`, :meth:`remove`."""

    def __init__(self, port: int) -> None:
        self.bindir = find_bindir()
        self.port = port
        self.as_root = os.geteuid() == 0
        self.directory = Path(tempfile.mkdtemp(prefix="notify-chaos-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        if self.as_root:
            server_user = pwd.getpwnam(SERVER_USER)
            os.chown(self.directory, server_user.pw_uid, server_user.pw_gid)
        self.directory.chmod(0o700)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bindir / program), *args]
        if self.as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise ClusterError(f"{program} {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done

    def create(self) -> Cluster:
        self._run(
            "initdb",
            "--pgdata",
            str(self.data),
            "--username",
            "postgres",
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.directory}'",
            # Durable commits, as in production: a restart must not lose what was accepted.
            "fsync": "on",
            "synchronous_commit": "on",
            "full_page_writes": "on",
            "max_connections": "300",
            "shared_buffers": "128MB",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# notify_site chaos run\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        return self

    def start(self) -> None:
        self._run(
            "pg_ctl", "--pgdata", str(self.data), "--log", str(self.log), "-w", "-t", "60", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: sessions are ended, as on a restart or a failover)."""
        self._run("pg_ctl", "--pgdata", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def is_up(self) -> bool:
        done = subprocess.run(
            [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
            check=False,
        )
        return done.returncode == 0

    def wait_until_up(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not self.is_up():
            if time.monotonic() > deadline:
                raise ClusterError(f"the chaos cluster did not come up:\n{self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def remove(self) -> None:
        """Stop the server if it runs (immediately: nothing in it is kept) and delete it all."""
        if (self.data / "postmaster.pid").exists():
            self._run(
                "pg_ctl", "--pgdata", str(self.data), "-m", "immediate", "-w", "stop", check=False
            )
        shutil.rmtree(self.directory, ignore_errors=True)
