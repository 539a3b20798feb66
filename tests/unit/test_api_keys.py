"""API keys: created on /api-keys or by the CLI, shown once, stored as SHA-256, revocable."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, func, select, text

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.keyring import keyring
from notify_site.models import ApiKey, ApiKeyReveal, User
from notify_site.services import api_keys
from notify_site.services.api_keys import reveal_context
from tests.factories import create_connection, create_user, login

KEY_PATTERN = re.compile(r"nsk_[A-Za-z0-9_-]+")


def _new_key(app, username: str = "alice", name: str = "test") -> tuple[int, str]:
    with app.app_context():
        owner = db.session.scalar(select(User).where(User.username == username))
        api_key, plaintext = api_keys.create_api_key(owner, name)
        return api_key.id, plaintext


def _call_api(client, key: str):
    return client.get("/api/v1/connections", headers={"Authorization": f"Bearer {key}"})


def test_created_key_is_shown_once_and_only_its_hash_is_stored(app, signed_in):
    created = signed_in.post("/api-keys", data={"name": "CI alerts"}, follow_redirects=True)
    assert created.status_code == 200
    assert "no-store" in created.headers["Cache-Control"]
    page = created.get_data(as_text=True)
    # The full key, once; the list below shows only its first 12 characters.
    keys_on_page = {match for match in KEY_PATTERN.findall(page) if len(match) > 12}
    assert len(keys_on_page) == 1
    (plaintext,) = keys_on_page
    assert plaintext.startswith("nsk_")
    assert len(plaintext) >= 4 + 32  # 32 random bytes, Base64: 256 bits

    with app.app_context():
        row = db.session.scalar(select(ApiKey))
        assert row.name == "CI alerts"
        assert row.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
        assert row.prefix == plaintext[:12]
        # No column of any table holds the key, or even its random part.
        secret_part = plaintext[4:]
        for table in db.metadata.sorted_tables:
            for values in db.session.execute(text(f'SELECT * FROM "{table.name}"')):  # noqa: S608
                for value in values:
                    assert secret_part not in str(value), table.name
        sqlite = db.engine.dialect.name == "sqlite"
        database_file = Path(db.engine.url.database)
    if sqlite:  # and not even in the file's free pages or its WAL
        db_bytes = b"".join(
            path.read_bytes()
            for path in database_file.parent.glob(database_file.name + "*")
            if path.is_file()
        )
        assert secret_part.encode() not in db_bytes

    again = signed_in.get("/api-keys")
    assert again.status_code == 200
    assert plaintext not in again.get_data(as_text=True)
    assert plaintext[:12] in again.get_data(as_text=True)  # the prefix, to tell keys apart
    assert _call_api(signed_in, plaintext).status_code == 200


def test_new_key_page_has_copy_button_from_a_static_script_and_a_curl_example(signed_in):
    created = signed_in.post("/api-keys", data={"name": "deploy"}, follow_redirects=True)
    page = created.get_data(as_text=True)
    assert 'data-copy-target="new-api-key"' in page
    assert "/static/js/clipboard.js" in page
    assert "<script>" not in page  # no inline script: the CSP forbids it
    assert "curl -X POST http://127.0.0.1:5000/api/v1/notifications" in page
    assert signed_in.get("/static/js/clipboard.js").status_code == 200


def test_create_needs_a_name(app, signed_in):
    answer = signed_in.post("/api-keys", data={"name": "   "})
    assert answer.status_code == 400
    assert not KEY_PATTERN.search(answer.get_data(as_text=True))
    with app.app_context():
        assert db.session.scalar(select(ApiKey)) is None


def test_page_requires_sign_in(client):
    assert client.get("/api-keys").status_code == 302
    assert client.post("/api-keys", data={"name": "x"}).status_code == 302


def test_list_shows_name_prefix_last_use_and_volume(app, signed_in):
    key_id, plaintext = _new_key(app, name="reporting")
    with app.app_context():
        alice = db.session.scalar(select(User).where(User.username == "alice"))
        create_connection(alice, label="Ops")
    for message in ("one", "two"):
        sent = signed_in.post(
            "/api/v1/notifications",
            json={"connection": "Ops", "message": message},
            headers={"Authorization": f"Bearer {plaintext}"},
        )
        assert sent.status_code == 202
    with app.app_context():
        alice = db.session.scalar(select(User).where(User.username == "alice"))
        (usage,) = api_keys.list_api_keys(alice)
        assert usage.key.id == key_id
        assert usage.volume == 2
    page = signed_in.get("/api-keys").get_data(as_text=True)
    row = page[page.index(f'data-api-key-id="{key_id}"') :]
    row = row[: row.index("</tr>")]
    assert "reporting" in row
    assert plaintext[:12] in row
    assert '<td class="volume" data-label="Sent">2</td>' in row
    assert "never" not in row  # it was used
    assert 'data-confirm="Revoke the key' in row


def test_revoked_key_is_refused(app, signed_in):
    key_id, plaintext = _new_key(app)
    assert _call_api(signed_in, plaintext).status_code == 200
    revoked = signed_in.post(f"/api-keys/{key_id}/revoke")
    assert revoked.status_code == 302
    answer = _call_api(signed_in, plaintext)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert answer.get_json()["error"]["code"] == "invalid_api_key"
    page = signed_in.get("/api-keys").get_data(as_text=True)
    assert "pill-revoked" in page


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_api_key"),
        ("Bearer nsk_this-key-was-never-issued-000000000000000", "invalid_api_key"),
        ("Bearer not-even-a-key", "invalid_api_key"),
        ("Basic YWxpY2U6cGFzcw==", "invalid_api_key"),
    ],
)
def test_missing_or_wrong_key_is_refused(client, header, code):
    headers = {"Authorization": header} if header else {}
    answer = client.get("/api/v1/connections", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="notify_site"')
    assert answer.get_json()["error"]["code"] == code


def test_a_stored_hash_without_the_prefix_does_not_authenticate(app, client, alice):
    # A key must look like one of ours before it is looked up at all.
    with app.app_context():
        db.session.add(
            ApiKey(
                owner_id=alice,
                name="odd",
                prefix="plain",
                key_hash=hashlib.sha256(b"plain-secret").hexdigest(),
            )
        )
        db.session.commit()
        assert api_keys.authenticate("plain-secret") is None
    assert _call_api(client, "plain-secret").status_code == 401


def test_last_used_is_set_and_written_at_most_once_a_minute(app, client, alice):
    key_id, plaintext = _new_key(app)
    with app.app_context():
        assert db.session.get(ApiKey, key_id).last_used_at is None
    assert _call_api(client, plaintext).status_code == 200
    with app.app_context():
        first = db.session.get(ApiKey, key_id).last_used_at
    assert first is not None
    assert utcnow() - first < timedelta(seconds=5)

    assert _call_api(client, plaintext).status_code == 200
    with app.app_context():
        assert db.session.get(ApiKey, key_id).last_used_at == first  # no write within a minute
        db.session.get(ApiKey, key_id).last_used_at = first - timedelta(minutes=2)
        db.session.commit()
    assert _call_api(client, plaintext).status_code == 200
    with app.app_context():
        assert db.session.get(ApiKey, key_id).last_used_at > first - timedelta(seconds=1)


def test_touch_skips_the_update_when_recent(app, alice):
    key_id, _ = _new_key(app)
    with app.app_context():
        api_key = db.session.get(ApiKey, key_id)
        api_key.last_used_at = utcnow() - timedelta(seconds=10)
        db.session.commit()
        statements = []

        def record(conn, cursor, statement, *args):
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            api_keys.touch(api_key)
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        assert not [s for s in statements if s.lstrip().upper().startswith("UPDATE")]


def test_another_users_key_cannot_be_revoked(app, signed_in):
    with app.app_context():
        create_user("bob")
    bob_key_id, bob_plaintext = _new_key(app, username="bob")
    answer = signed_in.post(f"/api-keys/{bob_key_id}/revoke")
    assert answer.status_code == 404
    with app.app_context():
        assert db.session.get(ApiKey, bob_key_id).revoked_at is None
    assert _call_api(signed_in, bob_plaintext).status_code == 200
    assert signed_in.post("/api-keys/999999/revoke").status_code == 404


def test_alices_page_lists_only_her_keys(app, signed_in):
    with app.app_context():
        create_user("bob")
    _new_key(app, username="bob", name="bobs-secret-key-name")
    _new_key(app, username="alice", name="alices-key")
    page = signed_in.get("/api-keys").get_data(as_text=True)
    assert "alices-key" in page
    assert "bobs-secret-key-name" not in page


def test_cli_prints_a_working_key(app, runner, client, alice):
    result = runner.invoke(args=["create-api-key", "--user", "alice", "--name", "deploy"])
    assert result.exit_code == 0, result.output
    plaintext = result.stdout.strip()
    assert KEY_PATTERN.fullmatch(plaintext)
    with app.app_context():
        row = db.session.scalar(select(ApiKey))
        assert row.name == "deploy"
        assert row.owner_id == alice
        assert row.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert _call_api(client, plaintext).status_code == 200


def test_cli_refuses_an_unknown_user(app, runner):
    result = runner.invoke(args=["create-api-key", "--user", "nobody"])
    assert result.exit_code == 1
    assert "no account called" in result.output
    assert not KEY_PATTERN.search(result.output)
    with app.app_context():
        assert db.session.scalar(select(ApiKey)) is None


def test_service_rejects_bad_names(app, alice):
    with app.app_context():
        alice = db.session.get(User, alice)
        with pytest.raises(api_keys.ApiKeyError):
            api_keys.create_api_key(alice, "")
        with pytest.raises(api_keys.ApiKeyError):
            api_keys.create_api_key(alice, "x" * 65)
        assert db.session.scalar(select(ApiKey)) is None


def test_keys_are_unique_and_random(app, alice):
    with app.app_context():
        alice = db.session.get(User, alice)
        keys = {api_keys.create_api_key(alice, f"k{i}")[1] for i in range(20)}
    assert len(keys) == 20
    assert len({key[:12] for key in keys}) == 20


# ------------------------------------------- POST-redirect-GET: a new key shown once (item 11)


def test_creating_redirects_and_a_reload_shows_no_second_key_and_no_key(app, signed_in):
    created = signed_in.post("/api-keys", data={"name": "CI alerts"})
    assert created.status_code == 303
    assert created.headers["Location"] == "/api-keys"
    assert not KEY_PATTERN.search(created.get_data(as_text=True))

    shown = signed_in.get("/api-keys")
    assert "no-store" in shown.headers["Cache-Control"]
    keys = {m for m in KEY_PATTERN.findall(shown.get_data(as_text=True)) if len(m) > 12}
    assert len(keys) == 1
    (plaintext,) = keys

    reloaded = signed_in.get("/api-keys").get_data(as_text=True)
    assert plaintext not in reloaded
    assert 'id="new-api-key"' not in reloaded
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ApiKey)) == 1
        assert db.session.scalar(select(func.count()).select_from(ApiKeyReveal)) == 0
    assert _call_api(signed_in, plaintext).status_code == 200


def test_the_session_cookie_carries_a_slot_never_the_key(app, signed_in):
    signed_in.post("/api-keys", data={"name": "CI alerts"})
    cookie = signed_in.get_cookie("session").value
    session = app.session_interface.get_signing_serializer(app).loads(cookie)
    slot = session["new_api_key_slot"]
    with app.app_context():
        [reveal] = db.session.scalars(select(ApiKeyReveal)).all()
        # Waiting server-side, encrypted with the key ring and bound to its slot.
        assert reveal.slot_hash == hashlib.sha256(slot.encode()).hexdigest()
        assert reveal.key_ciphertext.startswith("ktest1$")
        plaintext = keyring().decrypt(
            reveal.key_ciphertext, context=reveal_context(reveal.slot_hash)
        )
    assert plaintext.startswith("nsk_")
    assert plaintext not in json.dumps(session)
    assert plaintext[4:] not in cookie
    assert plaintext in signed_in.get("/api-keys").get_data(as_text=True)


def test_a_key_left_waiting_too_long_is_not_shown(app, signed_in):
    signed_in.post("/api-keys", data={"name": "CI alerts"})
    with app.app_context():
        reveal = db.session.scalar(select(ApiKeyReveal))
        reveal.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    page = signed_in.get("/api-keys").get_data(as_text=True)
    assert 'id="new-api-key"' not in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ApiKeyReveal)) == 0


def test_another_users_session_cannot_take_the_slot(app, signed_in):
    signed_in.post("/api-keys", data={"name": "CI alerts"})
    cookie = signed_in.get_cookie("session").value
    slot = app.session_interface.get_signing_serializer(app).loads(cookie)["new_api_key_slot"]
    with app.app_context():
        create_user("mallory")
    mallory = app.test_client()
    login(mallory, "mallory")
    with mallory.session_transaction() as session:
        session["new_api_key_slot"] = slot
    assert 'id="new-api-key"' not in mallory.get("/api-keys").get_data(as_text=True)
    assert 'id="new-api-key"' in signed_in.get("/api-keys").get_data(as_text=True)
