"""Configuration order, generated secrets and derived settings."""

from __future__ import annotations

import json
import os
import stat

import pytest

from notify_site import create_app
from notify_site.config import ConfigError, parse_key_list


def bare_config(tmp_path, **extra):
    instance = tmp_path / "instance"
    instance.mkdir(exist_ok=True)
    return {"INSTANCE_PATH": str(instance), **extra}


def test_secrets_are_generated_once_with_mode_0600(tmp_path):
    app = create_app(bare_config(tmp_path))
    path = tmp_path / "instance" / "secrets.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert app.config["SECRET_KEY"] == stored["SECRET_KEY"]
    assert app.config["TOKEN_KEYS"] == stored["TOKEN_KEYS"]
    assert len(app.config["SECRET_KEY"]) >= 32
    again = create_app(bare_config(tmp_path))
    assert again.config["SECRET_KEY"] == app.config["SECRET_KEY"]


def test_instance_config_then_environment_then_test_mapping(tmp_path, monkeypatch):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.py").write_text(
        "RELAY_RATE_LIMIT = 10\nNOTIFY_TIMEOUT = 3\nREGISTRATION_OPEN = True\n"
    )
    monkeypatch.setenv("NOTIFY_SITE_RELAY_RATE_LIMIT", "20")
    monkeypatch.setenv("NOTIFY_SITE_REGISTRATION_OPEN", "false")
    app = create_app(bare_config(tmp_path, NOTIFY_TIMEOUT=7))
    assert app.config["RELAY_RATE_LIMIT"] == 20  # environment beats instance/config.py
    assert app.config["REGISTRATION_OPEN"] is False  # parsed as JSON
    assert app.config["NOTIFY_TIMEOUT"] == 7  # the test mapping beats both


def test_database_url_selects_psycopg_for_postgresql(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example/notify")
    app = create_app(bare_config(tmp_path))
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db.example/notify"


def test_default_database_is_sqlite_in_instance(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app(bare_config(tmp_path))
    assert app.config["SQLALCHEMY_DATABASE_URI"] == (
        "sqlite:///" + str(tmp_path / "instance" / "notify_site.sqlite3")
    )


def test_cookie_is_secure_when_the_site_is_https(tmp_path):
    local = create_app(bare_config(tmp_path))
    public = create_app(
        bare_config(tmp_path, NOTIFY_REDIRECT_URI="https://notify.example/callback")
    )
    assert local.config["SESSION_COOKIE_SECURE"] is False
    assert public.config["SESSION_COOKIE_SECURE"] is True
    assert public.config["SESSION_COOKIE_HTTPONLY"] is True
    assert public.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_key_list_accepts_a_comma_separated_string():
    assert parse_key_list("k2:aaa, k1:bbb") == ["k2:aaa", "k1:bbb"]
    with pytest.raises(ConfigError, match="TOKEN_KEYS"):
        parse_key_list(" , ")


def test_relay_can_be_turned_off(tmp_path):
    app = create_app(bare_config(tmp_path, RELAY_ENABLED=False))
    assert "relay" not in app.blueprints
    assert app.test_client().get("/relay/inbox").status_code == 404
