"""The seams between the two houses (notify_site/seams.py): what each house adds, and that
the site's code runs the relay's part without knowing it."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from werkzeug.exceptions import NotFound

from notify_site import create_app, seams
from notify_site.extensions import db
from notify_site.keyring import encrypted_columns
from notify_site.relay.clients import client_is_registered
from notify_site.relay.models import RelayClient
from tests.conftest import make_test_config


def fresh_app(tmp_path, **overrides):
    """An app on a fresh SQLite instance whose client id is not configured (``setup``
    generates it), as after a fresh clone."""
    instance = tmp_path / "instance"
    config = make_test_config(
        tmp_path, DATABASE_URL="sqlite:///" + str(instance / "site.sqlite3"), **overrides
    )
    for key in ("NOTIFY_CLIENT_ID", "NOTIFY_CLIENT_SECRET"):
        if key not in overrides:
            config.pop(key)
    return create_app(config)


def clients(app) -> int:
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(RelayClient))
        db.engine.dispose()
        return count


def test_setup_runs_the_relays_step_which_registers_the_site_once(tmp_path):
    app = fresh_app(tmp_path)
    first = app.test_cli_runner().invoke(args=["setup"])
    assert first.exit_code == 0, first.output
    assert "Registered with the built-in relay as " in first.output
    saved = json.loads((tmp_path / "instance" / "secrets.json").read_text())
    with app.app_context():
        assert client_is_registered(saved["NOTIFY_CLIENT_ID"], "http://127.0.0.1:5000/callback")
        db.engine.dispose()
    # A second run (a new process: the saved id is now configuration) keeps that registration.
    again = fresh_app(tmp_path).test_cli_runner().invoke(args=["setup"])
    assert again.exit_code == 0, again.output
    assert f"Registered with the built-in relay as {saved['NOTIFY_CLIENT_ID']}." in again.output
    assert clients(app) == 1


def test_an_operators_client_id_is_left_alone(tmp_path):
    app = fresh_app(tmp_path, NOTIFY_CLIENT_ID="operators-id", NOTIFY_CLIENT_SECRET="s")
    result = app.test_cli_runner().invoke(args=["setup"])
    assert result.exit_code == 0, result.output
    assert "NOTIFY_CLIENT_ID is configured; not registering" in result.output
    assert clients(app) == 0


def test_without_the_relay_setup_has_no_relay_step_and_registers_nothing(tmp_path):
    app = fresh_app(tmp_path, RELAY_ENABLED=False)
    assert seams.items(app, seams.SETUP_STEPS) == ()
    result = app.test_cli_runner().invoke(args=["setup"])
    assert result.exit_code == 0, result.output
    assert "built-in relay" not in result.output
    assert clients(app) == 0


@pytest.mark.parametrize("relay_enabled", [True, False])
def test_the_key_ring_registry_holds_both_houses_columns(tmp_path, relay_enabled):
    """The relay's LINE tokens stay in the shared database when it is not mounted, so key
    rotation must still move them."""
    app = create_app(make_test_config(tmp_path, RELAY_ENABLED=relay_enabled))
    tables = [(c.value.class_.__tablename__, c.value.key) for c in encrypted_columns(app)]
    assert tables == [
        ("connections", "token_ciphertext"),
        ("oauth_states", "verifier_ciphertext"),
        ("line_login_states", "secrets_ciphertext"),
        ("api_key_reveals", "key_ciphertext"),
        ("relay_line_tokens", "token_ciphertext"),
    ]


def test_the_relay_answers_its_apis_routing_errors_through_the_error_seam(tmp_path):
    mounted = create_app(make_test_config(tmp_path))
    assert len(seams.items(mounted, seams.ERROR_ANSWERERS)) == 1
    answer = mounted.test_client().get("/relay/api/nothing-here", headers={"Accept-Language": "ja"})
    assert answer.status_code == 404
    # LINE Notify's shape, in English whatever the browser asks (Werkzeug's own text).
    assert answer.get_json() == {"status": 404, "message": NotFound.description}
    # Unmounted, the path is the site's like any other: its own (translated) page.
    alone = create_app(make_test_config(tmp_path, RELAY_ENABLED=False))
    assert seams.items(alone, seams.ERROR_ANSWERERS) == ()
    answer = alone.test_client().get("/relay/api/nothing-here")
    assert answer.status_code == 404
    assert answer.mimetype == "text/html"
