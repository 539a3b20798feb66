"""gunicorn.conf.py read as gunicorn reads it (a Python file of settings), without a server."""

from __future__ import annotations

import runpy
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def settings(monkeypatch, tmp_path, **env) -> dict:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    monkeypatch.delenv("GUNICORN_CONTROL_SOCKET", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONFIG))


def test_two_instances_on_one_machine_get_their_own_control_sockets(monkeypatch, tmp_path):
    first = settings(monkeypatch, tmp_path, GUNICORN_BIND="127.0.0.1:8001")
    second = settings(monkeypatch, tmp_path, GUNICORN_BIND="127.0.0.1:8002")
    assert first["bind"] == "127.0.0.1:8001"
    assert first["control_socket"] == str(tmp_path / "run" / "notify_site-127.0.0.1-8001.ctl")
    assert second["control_socket"] == str(tmp_path / "run" / "notify_site-127.0.0.1-8002.ctl")


def test_a_unix_socket_bind_makes_a_flat_file_name(monkeypatch, tmp_path):
    config = settings(monkeypatch, tmp_path, GUNICORN_BIND="unix:/run/notify/web.sock")
    assert Path(config["control_socket"]).parent == tmp_path / "run"
    assert Path(config["control_socket"]).name == "notify_site-unix-run-notify-web.sock.ctl"


def test_the_control_socket_can_be_named_outright(monkeypatch, tmp_path):
    path = str(tmp_path / "web.ctl")
    config = settings(monkeypatch, tmp_path, GUNICORN_CONTROL_SOCKET=path)
    assert config["control_socket"] == path


def test_the_access_log_format_has_no_query_string_referer_or_headers(monkeypatch, tmp_path):
    config = settings(monkeypatch, tmp_path)
    fmt = config["access_log_format"]
    assert "%(U)s" in fmt
    for leaky in ("%(r)s", "%(q)s", "%(f)s", "%(u)s", "%({"):
        assert leaky not in fmt
