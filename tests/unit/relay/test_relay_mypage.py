"""My page (SPEC 6): Generate token, Connected services, Disconnect; the token's format and
that only its hash is kept."""

from __future__ import annotations

import re
import string

import pytest
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.relay.chats import ensure_sandbox_chats
from notify_site.relay.models import RelayAccessToken
from notify_site.relay.secrets_util import ACCESS_TOKEN_ALPHABET, hash_secret, new_access_token
from tests.factories import add_person

MY = "/relay/my/"
TOKEN = re.compile(r'<code id="relay-new-token" class="relay-secret">([^<]+)</code>')


def generate(client, name: str, chat: int | str):
    return client.post("/relay/my/tokens", data={"name": name, "chat": str(chat)})


def new_token(response) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)
    return TOKEN.search(response.get_data(as_text=True)).group(1)


def own_chat(app, person, kind="GROUP", name="Family") -> int:
    """The id of one of the person's sandbox chats (made now if they are new)."""
    with app.app_context():
        chats = ensure_sandbox_chats(
            person.id, app.config["RELAY_SANDBOX_USER"], app.config["RELAY_SANDBOX_GROUPS"]
        )
        return next(chat.id for chat in chats if (chat.kind, chat.name) == (kind, name))


def test_a_visitor_is_sent_to_sign_in(app):
    visitor = app.test_client()
    answer = visitor.get(MY)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/login?next=%2Frelay%2Fmy%2F"
    assert visitor.post("/relay/my/tokens", data={"name": "x", "chat": "1"}).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(RelayAccessToken)) is None


def test_my_page_offers_the_persons_own_chats(app, client, person):
    page = client.get(MY)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert "Generate token" in html
    for name in ("1-on-1 chat with Sandbox user", "Family", "Team alerts"):
        assert name in html
    assert html.count('type="radio" name="chat"') == 3
    assert "No connected services yet" in html


def test_generate_a_token_shown_once_with_a_curl_line(app, client, person):
    family = own_chat(app, person)
    answer = generate(client, "Backup script", family)
    token = new_token(answer)
    html = answer.get_data(as_text=True)
    assert answer.headers["Cache-Control"] == "no-store"
    assert re.fullmatch(r"[A-Za-z0-9]{43}", token)
    assert (
        f'curl -X POST -H "Authorization: Bearer {token}" -F "message=Hello from my script" '
        "http://127.0.0.1:5000/relay/api/notify" in html
    )
    assert 'data-copy-target="relay-new-token"' in html
    # The copy button's script is a file: the CSP allows no inline script.
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts == [
        '<script src="/web/static/js/error-focus.js" defer>',  # both layouts (issue 23)
        '<script src="/relay/static/relay/copy.js" defer>',
    ]
    assert "It sends to Family." in html
    # Listed as a connected service; shown nowhere again.
    again = client.get(MY).get_data(as_text=True)
    assert token not in again
    assert "Backup script" in again
    with app.app_context():
        row = db.session.scalar(select(RelayAccessToken))
        assert (row.token_hash, row.name, row.client_pk) == (
            hash_secret(token),
            "Backup script",
            None,
        )
        assert (row.chat_id, row.person_id) == (family, person.id)


def test_a_personal_token_works_with_the_notify_api_and_prefixes_its_name(app, client, person):
    token = new_token(generate(client, "Backup script", own_chat(app, person)))
    bearer = {"Authorization": f"Bearer {token}"}
    sent = app.test_client().post("/relay/api/notify", headers=bearer, data={"message": "done"})
    assert sent.status_code == 200
    status = app.test_client().get("/relay/api/status", headers=bearer).get_json()
    quota = status.pop("lineQuota")  # the extension: a sandbox group of 5 costs 5 units
    assert status == {"status": 200, "message": "ok", "targetType": "GROUP", "target": "Family"}
    assert (quota["used"], quota["remaining"]) == (5, 195)
    (message,) = client.get("/relay/inbox.json").get_json()["messages"]
    assert (message["client"], message["message"]) == ("Backup script", "done")
    html = client.get("/relay/inbox").get_data(as_text=True)
    assert "<strong>Backup script</strong>" in html


def test_connected_services_lists_every_token_of_the_person_and_no_one_elses(
    app, client, person, get_token
):
    get_token("GROUP", "Team alerts")  # through OAuth, to "Example Service"
    token = new_token(generate(client, "cron", own_chat(app, person, "USER", "Sandbox user")))
    app.test_client().post(
        "/relay/api/notify", headers={"Authorization": f"Bearer {token}"}, data={"message": "x"}
    )
    other = app.test_client()
    hana = add_person(app, other, "hana")
    other.get(MY)
    hanas = new_token(generate(other, "hana's job", own_chat(app, hana)))

    html = client.get(MY).get_data(as_text=True)
    rows = re.findall(r'<tr data-token-id="(\d+)">(.*?)</tr>', html, re.S)
    assert len(rows) == 2
    cron, service = rows[0][1], rows[1][1]
    assert "cron" in cron
    assert ">personal</span>" in cron
    assert "1-on-1 chat with Sandbox user" in cron
    assert "999 of 1,000" in cron  # one call spent this hour
    assert "Example Service" in service
    assert "Team alerts" in service
    assert "1,000 of 1,000" in service
    assert "never" in service
    assert "hana" not in html
    assert hanas not in html


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "This field is required."),
        ("   ", "This field is required."),
        ("x" * 101, "The name can be at most 100 characters."),
        ("bad\u0007name", "control characters"),
    ],
)
def test_a_bad_name_is_refused_and_no_token_made(app, client, person, name, reason):
    answer = generate(client, name, own_chat(app, person))
    assert answer.status_code == 400
    assert reason in answer.get_data(as_text=True)
    assert TOKEN.search(answer.get_data(as_text=True)) is None
    with app.app_context():
        assert db.session.scalar(select(RelayAccessToken)) is None


def test_another_persons_chat_cannot_be_chosen(app, client, person):
    other = app.test_client()
    hana = add_person(app, other, "hana")
    other.get(MY)
    hanas_family = own_chat(app, hana)
    answer = generate(client, "sneaky", hanas_family)
    assert answer.status_code == 400
    assert "Choose one of the chats listed" in answer.get_data(as_text=True)
    assert generate(client, "no chat", "").status_code == 400
    with app.app_context():
        assert db.session.scalar(select(RelayAccessToken)) is None


def test_disconnect_asks_first_then_the_token_stops_at_once(app, client, person, get_token):
    oauth_token = get_token()
    with app.app_context():
        token_pk = db.session.scalar(select(RelayAccessToken.id))
    confirm = client.get(f"/relay/my/tokens/{token_pk}/disconnect")
    assert confirm.status_code == 200
    assert "Disconnect “Example Service”?" in confirm.get_data(as_text=True)
    bearer = {"Authorization": f"Bearer {oauth_token}"}
    assert app.test_client().get("/relay/api/status", headers=bearer).status_code == 200

    done = client.post(f"/relay/my/tokens/{token_pk}/disconnect")
    assert (done.status_code, done.headers["Location"]) == (302, "/relay/my/")
    page = client.get(MY).get_data(as_text=True)
    assert "“Example Service” is disconnected" in page
    assert "Example Service" not in page.split("Connected services")[1]
    answer = app.test_client().post("/relay/api/notify", headers=bearer, data={"message": "x"})
    assert answer.status_code == 401
    again = client.post(f"/relay/my/tokens/{token_pk}/disconnect", follow_redirects=True)
    assert "already disconnected" in again.get_data(as_text=True)


def test_no_one_else_can_disconnect_a_token(app, client, person, get_token):
    token = get_token()
    with app.app_context():
        token_pk = db.session.scalar(select(RelayAccessToken.id))
    other = app.test_client()
    add_person(app, other, "hana")
    assert other.get(f"/relay/my/tokens/{token_pk}/disconnect").status_code == 404
    other.post(f"/relay/my/tokens/{token_pk}/disconnect")
    assert app.test_client().post("/relay/my/tokens/1/disconnect").status_code == 302
    status = app.test_client().get(
        "/relay/api/status", headers={"Authorization": f"Bearer {token}"}
    )
    assert status.status_code == 200


# --- Token format and storage ------------------------------------------------------------------


def test_tokens_are_43_characters_of_letters_and_digits_drawn_from_all_62():
    assert set(ACCESS_TOKEN_ALPHABET) == set(string.ascii_letters + string.digits)
    tokens = [new_access_token() for _ in range(300)]
    assert all(re.fullmatch(r"[A-Za-z0-9]{43}", token) for token in tokens)
    assert len(set(tokens)) == 300
    # 300 × 43 draws: every one of the 62 characters turns up (each is missed with
    # probability (61/62)**12900, about 10**-91).
    assert set("".join(tokens)) == set(ACCESS_TOKEN_ALPHABET)


def test_a_database_dump_holds_no_token(app, client, person, get_token):
    oauth_token = get_token()
    personal = new_token(generate(client, "dump check", own_chat(app, person)))
    with app.app_context():
        connection = db.engine.raw_connection()
        try:
            if db.engine.dialect.name == "sqlite":
                dump = "\n".join(connection.driver_connection.iterdump())
            else:
                cursor = connection.cursor()
                cursor.execute("SELECT row_to_json(t)::text FROM relay_access_tokens t")
                dump = "\n".join(row[0] for row in cursor.fetchall())
        finally:
            connection.close()
    for token in (oauth_token, personal):
        assert token not in dump
        assert hash_secret(token) in dump
