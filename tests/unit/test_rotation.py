"""``flask rotate-keys`` and ``flask generate-key`` (SPEC 4.6, reliability.md "Secrets at rest").

Each phase of a rotation is its own app on the same database, with the key ring an operator
would configure at that point: first ``[old]``, then ``[new, old]``, finally ``[new]``. One
module past 400 lines on purpose: every test runs those phases over the same seeded rows.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, insert, select, update

from notify_site import create_app
from notify_site.crypto import KeyRing, MissingKeyError
from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.keyring import encrypted_columns, keyring
from notify_site.models import Connection, OAuthState, User
from notify_site.relay.line.channel import ChannelSettings, access_token
from notify_site.relay.line.channel import token_context as relay_line_token_context
from notify_site.relay.models import RelayLineToken
from notify_site.services.connecting import hash_state, verifier_context
from notify_site.services.connections import connection_context
from notify_site.services.delivery import connection_token
from tests.conftest import init_database, make_test_config
from tests.factories import create_user, login

OLD = "kold:" + Fernet.generate_key().decode()
NEW = "knew:" + Fernet.generate_key().decode()
GONE = "kgone:" + Fernet.generate_key().decode()


def app_with_ring(tmp_path, *keys: str, **overrides):
    """The site as configured with ``keys``; every call with one tmp_path shares one database."""
    app = create_app(make_test_config(tmp_path, TOKEN_KEYS=list(keys), **overrides))
    init_database(app)
    return app


def token_for(row_id: int) -> str:
    return f"canary-token-{row_id:06d}"


def seed(app, *, connections: int, states: int = 0, key: str = OLD, first_id: int = 1) -> None:
    """Insert rows fast with Core, their secrets encrypted under ``key`` alone."""
    ring = KeyRing([key])
    now = utcnow()
    with app.app_context():
        if db.session.get(User, 1) is None:
            db.session.execute(
                insert(User.__table__),
                [{"id": 1, "username": "owner", "password_hash": "x", "is_admin": False}],
            )
        ids = range(first_id, first_id + connections)
        db.session.execute(
            insert(Connection.__table__),
            [
                {
                    "id": i,
                    "owner_id": 1,
                    "label": f"chat {i}",
                    "status": "active",
                    "token_ciphertext": ring.encrypt(token_for(i), context=connection_context(i)),
                    "created_at": now,
                    "updated_at": now - timedelta(days=1),
                }
                for i in ids
            ],
        )
        hashes = [hash_state(f"state-{first_id}-{n}") for n in range(states)]
        if hashes:
            db.session.execute(
                insert(OAuthState.__table__),
                [
                    {
                        "state_hash": h,
                        "user_id": 1,
                        "label": "pending",
                        "verifier_ciphertext": ring.encrypt(
                            f"verifier-{h}", context=verifier_context(h)
                        ),
                        "redirect_uri": "http://127.0.0.1:5000/callback",
                        "created_at": now,
                        "expires_at": now + timedelta(hours=1),
                    }
                    for h in hashes
                ],
            )
        db.session.commit()


def count_under(app, key_id: str) -> int:
    """Values of every encrypted column whose ciphertext is under ``key_id``."""
    with app.app_context():
        total = 0
        for column in encrypted_columns(app):
            total += db.session.scalar(
                select(func.count())
                .select_from(column.value.class_)
                .where(column.value.startswith(key_id + "$"))
            )
        return total


def ciphertext_of(connection_id: int) -> str:
    return db.session.scalar(
        select(Connection.token_ciphertext).where(Connection.id == connection_id)
    )


def rotate_keys(app, *args: str):
    return app.test_cli_runner().invoke(args=["rotate-keys", *args])


def assert_everything_decrypts(app, connections: range, states: int = 0) -> None:
    with app.app_context():
        ring = keyring()
        rows = db.session.execute(select(Connection.id, Connection.token_ciphertext)).all()
        assert len(rows) == len(connections)
        for row_id, ciphertext in rows:
            assert ring.decrypt(ciphertext, context=connection_context(row_id)) == token_for(row_id)
        verifiers = db.session.execute(
            select(OAuthState.state_hash, OAuthState.verifier_ciphertext)
        ).all()
        assert len(verifiers) == states
        for state_hash, ciphertext in verifiers:
            context = verifier_context(state_hash)
            assert ring.decrypt(ciphertext, context=context) == f"verifier-{state_hash}"


# ---------------------------------------------------------------------------- the full cycle

ROWS = 100_000  # reliability.md: "Rotating 100,000 rows leaves 0 on the old key id"
STATES = 40
BATCH = 5_000


def test_100000_rows_interrupted_half_way_then_resumed_leave_none_on_the_old_key(tmp_path):
    seed(app_with_ring(tmp_path, OLD), connections=ROWS, states=STATES)

    rotating = app_with_ring(tmp_path, NEW, OLD)
    first = rotate_keys(rotating, "--batch-size", str(BATCH), "--max-batches", "10")
    assert first.exit_code == 0, first.output
    assert f"{ROWS + STATES} stored values not under 'knew'" in first.output
    assert "Stopped after 10 batches as asked; run again to carry on." in first.output
    left = ROWS + STATES - 10 * BATCH
    assert f"  kold: {left}\n" in first.output
    assert count_under(rotating, "kold") == left
    assert count_under(rotating, "knew") == 10 * BATCH

    second = rotate_keys(rotating, "--batch-size", str(BATCH))
    assert second.exit_code == 0, second.output
    assert f"Re-encrypted {left} under 'knew'" in second.output
    assert "  kold: 0 (can now be removed from TOKEN_KEYS)" in second.output
    assert count_under(rotating, "kold") == 0
    assert count_under(rotating, "knew") == ROWS + STATES

    # The old key dropped from the ring: every value still decrypts, and nothing is left.
    after = app_with_ring(tmp_path, NEW)
    assert_everything_decrypts(after, range(1, ROWS + 1), STATES)
    report = rotate_keys(after, "--dry-run")
    assert report.exit_code == 0, report.output
    assert "none: 'knew' is the only key in the ring." in report.output


def test_an_interruption_mid_batch_keeps_finished_batches_and_resume_completes(
    tmp_path, monkeypatch
):
    seed(app_with_ring(tmp_path, OLD), connections=1_000)
    rotating = app_with_ring(tmp_path, NEW, OLD)
    real_rotate = KeyRing.rotate
    calls = 0

    def ctrl_c_during_the_third_batch(self, ciphertext, *, context):
        nonlocal calls
        calls += 1
        if calls == 2 * 200 + 50:
            raise KeyboardInterrupt
        return real_rotate(self, ciphertext, context=context)

    monkeypatch.setattr(KeyRing, "rotate", ctrl_c_during_the_third_batch)
    interrupted = rotate_keys(rotating, "--batch-size", "200")
    assert interrupted.exit_code == 1
    assert "Interrupted. Every finished batch is saved" in interrupted.output
    # Two whole batches were committed; the third, cut short, was rolled back whole.
    assert count_under(rotating, "knew") == 400
    assert count_under(rotating, "kold") == 600

    monkeypatch.setattr(KeyRing, "rotate", real_rotate)
    resumed = rotate_keys(rotating, "--batch-size", "200")
    assert resumed.exit_code == 0, resumed.output
    assert "Re-encrypted 600 under 'knew' in 3 batches." in resumed.output
    assert count_under(rotating, "kold") == 0
    assert_everything_decrypts(app_with_ring(tmp_path, NEW), range(1, 1_001))


def test_rotation_does_not_touch_updated_at(tmp_path):
    seed(app_with_ring(tmp_path, OLD), connections=3)
    rotating = app_with_ring(tmp_path, NEW, OLD)
    with rotating.app_context():
        before = dict(db.session.execute(select(Connection.id, Connection.updated_at)).all())
    assert rotate_keys(rotating).exit_code == 0
    with rotating.app_context():
        after = dict(db.session.execute(select(Connection.id, Connection.updated_at)).all())
    assert after == before


# ---------------------------------------------------------------------------- what cannot be read


def test_values_under_a_missing_key_are_reported_by_key_id_and_left_alone(tmp_path):
    seed(app_with_ring(tmp_path, OLD), connections=20)
    seed(app_with_ring(tmp_path, GONE), connections=3, states=2, key=GONE, first_id=21)
    rotating = app_with_ring(tmp_path, NEW, OLD)
    with rotating.app_context():
        untouched = ciphertext_of(21)

    result = rotate_keys(rotating)
    assert result.exit_code == 1
    assert "  kgone: 5 - NOT IN TOKEN_KEYS (connection tokens 3; OAuth state verifiers 2)" in (
        result.output
    )
    assert "unreadable connection tokens under 'kgone': rows 21, 22, 23" in result.output
    assert "token key 'kgone' is not in TOKEN_KEYS" in result.output
    assert "Re-encrypted 20 under 'knew'" in result.output  # the readable ones went ahead
    assert count_under(rotating, "kold") == 0
    assert count_under(rotating, "kgone") == 5
    with rotating.app_context():
        assert ciphertext_of(21) == untouched
        # The site itself refuses such a value with an error naming the key, no fallback.
        with pytest.raises(MissingKeyError, match="'kgone' is not in TOKEN_KEYS"):
            connection_token(21)

    # With the key back in the ring (after the first), the same command finishes the job.
    restored = app_with_ring(tmp_path, NEW, OLD, GONE)
    done = rotate_keys(restored)
    assert done.exit_code == 0, done.output
    assert "  kgone: 0 (can now be removed from TOKEN_KEYS)" in done.output
    assert count_under(restored, "knew") == 25


def test_a_value_bound_to_another_row_is_reported_not_rewritten(tmp_path):
    seed(app_with_ring(tmp_path, OLD), connections=5)
    rotating = app_with_ring(tmp_path, NEW, OLD)
    with rotating.app_context():
        two = ciphertext_of(2)
        # Someone copied row 2's ciphertext onto row 4.
        db.session.execute(
            update(Connection).where(Connection.id == 4).values(token_ciphertext=two)
        )
        db.session.commit()

    result = rotate_keys(rotating)
    assert result.exit_code == 1
    assert "unreadable connection tokens under 'kold': rows 4" in result.output
    assert "belongs to another record" in result.output
    assert "1 stored values could not be re-encrypted" in result.output
    assert "  kold: 1\n" in result.output
    assert count_under(rotating, "knew") == 4
    with rotating.app_context():
        assert ciphertext_of(4) == two


def test_a_value_that_is_no_ciphertext_at_all_is_reported(tmp_path):
    seed(app_with_ring(tmp_path, OLD), connections=3)
    rotating = app_with_ring(tmp_path, NEW, OLD)
    with rotating.app_context():
        db.session.execute(
            update(Connection).where(Connection.id == 3).values(token_ciphertext="plaintext?!")
        )
        db.session.commit()

    result = rotate_keys(rotating)
    assert result.exit_code == 1
    assert "  (malformed): 1 - not key-ring ciphertexts at all (connection tokens 1)" in (
        result.output
    )
    assert "unreadable connection tokens under '(malformed)': rows 3" in result.output
    assert "is not in TOKEN_KEYS" not in result.output
    assert count_under(rotating, "knew") == 2


def test_a_connection_revoked_during_rotation_stays_revoked(tmp_path, monkeypatch):
    seed(app_with_ring(tmp_path, OLD), connections=3)
    rotating = app_with_ring(tmp_path, NEW, OLD)
    real_rotate = KeyRing.rotate

    def revoke_row_2_meanwhile(self, ciphertext, *, context):
        if context == connection_context(2):
            db.session.execute(
                update(Connection).where(Connection.id == 2).values(token_ciphertext="")
            )
        return real_rotate(self, ciphertext, context=context)

    monkeypatch.setattr(KeyRing, "rotate", revoke_row_2_meanwhile)
    result = rotate_keys(rotating)
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 2 under 'knew'" in result.output
    assert "1 changed while being rotated (left as they are)." in result.output
    with rotating.app_context():
        assert db.session.get(Connection, 2).token_ciphertext == ""


def test_with_one_key_there_is_nothing_to_do(tmp_path):
    seed(app_with_ring(tmp_path, OLD), connections=2)
    result = rotate_keys(app_with_ring(tmp_path, OLD))
    assert result.exit_code == 0, result.output
    assert "0 stored values not under 'kold'" in result.output
    assert "none: 'kold' is the only key in the ring." in result.output


# ---------------------------------------------------------------------------- OAuth states

BOT = "https://notify-bot.test"
API = "https://notify-api.test"


def test_a_connect_flow_started_before_rotation_finishes_after_the_old_key_is_gone(
    tmp_path, mocked_http
):
    """The rotated verifier is bound exactly as services.connections reads it."""
    config = {"NOTIFY_BOT_ORIGIN": BOT, "NOTIFY_API_ORIGIN": API}
    before = app_with_ring(tmp_path, OLD, **config)
    with before.app_context():
        create_user("alice")
    browser = before.test_client()
    login(browser)
    started = browser.post("/connections", data={"label": "Family"})
    params = parse_qs(urlsplit(started.headers["Location"]).query)
    assert count_under(before, "kold") == 1

    assert rotate_keys(app_with_ring(tmp_path, NEW, OLD, **config)).exit_code == 0
    assert count_under(before, "knew") == 1

    after = app_with_ring(tmp_path, NEW, **config)
    resumed = after.test_client()
    resumed.set_cookie("session", browser.get_cookie("session").value)
    token_call = mocked_http.post(BOT + "/oauth/token", json={"access_token": "rotated-flow"})
    mocked_http.get(
        API + "/api/status",
        json={"status": 200, "message": "ok", "targetType": "GROUP", "target": "Family"},
    )
    answer = resumed.post("/callback", data={"code": "c0de", "state": params["state"][0]})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert token_call.call_count == 1
    verifier = parse_qs(token_call.calls[0].request.body)["code_verifier"][0]
    assert len(verifier) >= 43
    with after.app_context():
        connection = db.session.scalar(select(Connection))
        assert connection.token_ciphertext.startswith("knew$")


# ---------------------------------------------------------------------------- generate-key


def test_generate_key_prints_an_entry_the_ring_accepts(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["generate-key"])
    second = runner.invoke(args=["generate-key", "--id", "k2026b"])
    assert first.exit_code == second.exit_code == 0
    entry = first.stdout.strip()
    named = second.stdout.strip()
    assert named.startswith("k2026b:")
    ring = KeyRing([named, entry])
    assert ring.key_ids == ("k2026b", entry.split(":")[0])
    assert ring.decrypt(ring.encrypt("x", context="c:1"), context="c:1") == "x"
    assert entry.split(":")[1] != named.split(":")[1]
    assert "docs/key-rotation.md" in second.stderr
    assert "docs/key-rotation.md" not in second.stdout


def test_generate_key_refuses_a_bad_id(app):
    result = app.test_cli_runner().invoke(args=["generate-key", "--id", "no spaces"])
    assert result.exit_code == 2
    assert "a token key id is 1 to 32 characters" in result.output


# ---------------------------------------------------------------------------- the relay's tokens


def seed_relay_line_tokens(app, key: str, *tokens: tuple[int, str]) -> None:
    """Store the relay's LINE channel tokens (id, token) under ``key``; "" is a revoked one."""
    ring = KeyRing([key])
    now = utcnow()
    with app.app_context():
        for row_id, token in tokens:
            db.session.add(
                RelayLineToken(
                    id=row_id,
                    key_id=f"kid-{row_id}",
                    token_ciphertext=(
                        ring.encrypt(token, context=relay_line_token_context(row_id))
                        if token
                        else ""
                    ),
                    issued_at=now - timedelta(days=1),
                    expires_at=now + timedelta(days=20),
                    revoked_at=None if token else now,
                )
            )
        db.session.commit()


def test_the_relays_line_channel_tokens_move_to_the_new_key(tmp_path):
    old_app = app_with_ring(tmp_path, OLD)
    seed(old_app, connections=2)
    seed_relay_line_tokens(old_app, OLD, (1, ""), (2, "line-v21-token-current"))

    rotating = app_with_ring(tmp_path, NEW, OLD)
    result = rotate_keys(rotating)
    assert result.exit_code == 0, result.output
    assert "3 stored values not under 'knew'" in result.output
    assert "Re-encrypted 3 under 'knew'" in result.output
    assert "  kold: 0 (can now be removed from TOKEN_KEYS)" in result.output
    assert count_under(rotating, "kold") == 0

    # With the old key gone, the relay still reads its token and issues no new one.
    settings = ChannelSettings(
        channel_id="1234567890", channel_secret="s", private_jwk={"kid": "unused"}
    )
    new_only = app_with_ring(tmp_path, NEW)
    with new_only.app_context():
        assert access_token(settings) == "line-v21-token-current"
        revoked = db.session.get(RelayLineToken, 1)
        assert revoked.token_ciphertext == ""  # nothing to rotate: left as it was
        assert db.session.scalar(select(func.count()).select_from(RelayLineToken)) == 2


def test_a_relay_line_token_under_a_missing_key_is_reported(tmp_path):
    seed_relay_line_tokens(app_with_ring(tmp_path, GONE), GONE, (7, "line-v21-token-lost"))
    rotating = app_with_ring(tmp_path, NEW, OLD)
    result = rotate_keys(rotating)
    assert result.exit_code == 1
    assert "  kgone: 1 - NOT IN TOKEN_KEYS (relay LINE channel tokens 1)" in result.output
    assert "unreadable relay LINE channel tokens under 'kgone': rows 7" in result.output
    assert count_under(rotating, "kgone") == 1
