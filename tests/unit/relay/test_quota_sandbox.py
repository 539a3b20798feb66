"""Sandbox parity (issue 15): without a LINE channel the relay prices, budgets and refuses
as in channel mode — a sandbox group costs RELAY_SANDBOX_GROUP_MEMBERS units a push, the
month has RELAY_SANDBOX_MONTHLY_QUOTA — and shows it on My page, the LINE page and in
``relay line-check``'s figures."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event

from notify_site.extensions import db
from notify_site.relay.chats import ensure_sandbox_chats
from tests.conftest import make_test_config
from tests.factories import create_user

NEW_TOKEN = re.compile(r'<code id="relay-new-token" class="relay-secret">([^<]+)</code>')


def generate(client, name: str, chat: int):
    """My page's Generate token, for one of the person's chats."""
    return client.post("/relay/my/tokens", data={"name": name, "chat": str(chat)})


def new_token(response) -> str:
    assert response.status_code == 200
    return NEW_TOKEN.search(response.get_data(as_text=True)).group(1)


def own_chat(app, person, kind="GROUP", name="Family") -> int:
    with app.app_context():
        chats = ensure_sandbox_chats(
            person.id, app.config["RELAY_SANDBOX_USER"], app.config["RELAY_SANDBOX_GROUPS"]
        )
        return next(chat.id for chat in chats if (chat.kind, chat.name) == (kind, name))


@pytest.fixture
def app_config(tmp_path):
    return make_test_config(tmp_path, RELAY_SANDBOX_MONTHLY_QUOTA=12)


def test_the_sandbox_counts_budgets_and_refuses_like_line(app, client, person):
    token = new_token(generate(client, "Backup script", own_chat(app, person)))
    bearer = {"Authorization": f"Bearer {token}"}
    sender = app.test_client()
    first = sender.post("/relay/api/notify", headers=bearer, data={"message": "one"})
    assert first.status_code == 200
    assert (first.headers["X-LineQuota-Limit"], first.headers["X-LineQuota-Remaining"]) == (
        "12",
        "7",
    )
    assert (
        sender.post("/relay/api/notify", headers=bearer, data={"message": "two"}).status_code == 200
    )
    refused = sender.post("/relay/api/notify", headers=bearer, data={"message": "three"})
    assert refused.status_code == 429
    assert "monthly LINE message budget" in refused.get_json()["message"]
    inbox = client.get("/relay/inbox.json").get_json()["messages"]
    assert [m["message"] for m in inbox if "three" in m["message"]] == []
    my_page = client.get("/relay/my/").get_data(as_text=True)
    assert 'data-units="10"' in my_page
    with app.app_context():
        admin = create_user("root", admin=True).get_id()
    with client.session_transaction() as session:
        session["_user_id"], session["_fresh"] = admin, True
    page = client.get("/relay/line/admin").get_data(as_text=True)
    assert "data-units-used>10<" in page
    assert "data-units-limit>12<" in page
    assert 'data-quota-warning="80"' in page
    assert "Backup script" in page  # the top tokens


def test_a_sandbox_user_chat_costs_one(app, client, person):
    token = new_token(generate(client, "Me", own_chat(app, person, "USER", "Sandbox user")))
    sent = app.test_client().post(
        "/relay/api/notify", headers={"Authorization": f"Bearer {token}"}, data={"message": "x"}
    )
    assert sent.headers["X-LineQuota-Remaining"] == "11"


def test_line_check_prints_the_sandbox_ledger(app, client, person):
    token = new_token(generate(client, "Backup script", own_chat(app, person)))
    app.test_client().post(
        "/relay/api/notify", headers={"Authorization": f"Bearer {token}"}, data={"message": "x"}
    )
    result = app.test_cli_runner().invoke(args=["relay", "line-check"])
    assert result.exit_code == 1  # no channel: sandbox mode, as before
    assert "5 units used, channel budget 12" in result.output
    assert "Top tokens: #1 Backup script (5)" in result.output
    assert "sandbox mode" in result.output


def test_an_accepted_call_reads_only_the_months_totals_after_its_first_write(app, client, person):
    """The first write of a Notify call (its rate window's UPDATE) takes SQLite's write lock
    until the commit, so everything the call can read earlier it reads earlier: after that
    write, the only read is the month's running totals, which must be read under the lock
    (on PostgreSQL, under the budgets' advisory lock)."""
    token = new_token(generate(client, "Me", own_chat(app, person, "USER", "Sandbox user")))
    statements = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(" ".join(statement.lower().split()))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        sent = app.test_client().post(
            "/relay/api/notify", headers={"Authorization": f"Bearer {token}"}, data={"message": "x"}
        )
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert sent.status_code == 200
    writes = [n for n, s in enumerate(statements) if s.startswith(("insert", "update", "delete"))]
    assert statements[writes[0]].startswith("update relay_access_tokens")
    reads = [
        s
        for s in statements[writes[0] : writes[-1]]
        if s.startswith("select") and "pg_advisory_xact_lock" not in s  # the lock itself
    ]
    assert [("from relay_line_totals" in s) for s in reads] == [True]
