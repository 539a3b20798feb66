"""Monthly budgets of LINE units (issue 15): the channel's, a person's and a token's. A Notify
call that would pass one is answered 429 at once and nothing is queued or pushed; the
figures travel as X-LineQuota-* headers and /api/status's lineQuota; the month rolls over;
admins set budgets on the LINE page."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.relay.budgets import set_budget
from notify_site.relay.clients import find_client
from notify_site.relay.models import RelayChat, RelayMessage, RelayPush
from notify_site.relay.quota_models import RelayBudget
from notify_site.relay.views import notify_api
from tests.conftest import make_test_config
from tests.factories import create_relay_token, create_user
from tests.fakes.line_api import channel_config
from tests.unit.relay.line_pushes import run

GROUP = "C" + "e" * 32
USER = "U" + "a" * 32


@pytest.fixture
def app_config(tmp_path, fake_line):
    fake_line.state.member_counts[GROUP] = 5
    # The worker's path: calls queue their pushes (test_line_sync.py: a caller that waits).
    return make_test_config(
        tmp_path,
        RELAY_LINE_SYNC_WAIT_SECONDS=0,
        **channel_config(fake_line, "https://relay.example/relay"),
    )


def add_chat(app, registered, line_id, token, person=None):
    with app.app_context():
        group = line_id.startswith("C")
        chat = RelayChat(
            kind="GROUP" if group else "USER",
            name="Ops" if group else "Alice",
            line_id=line_id,
            source_type="group" if group else "user",
        )
        db.session.add(chat)
        db.session.commit()
        create_relay_token(find_client(registered.client_id).id, chat.id, token, person_id=person)
        return chat.id


def budget(app, scope, subject, units):
    with app.app_context():
        set_budget(scope, subject, units, now=utcnow())
        db.session.commit()


def notify(client, token, message="hello"):
    return client.post(
        "/relay/api/notify", data={"message": message}, headers={"Authorization": f"Bearer {token}"}
    )


def queued(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(RelayPush))


def test_the_channel_budget_refuses_with_429_and_no_call_to_line(
    app, client, registered, fake_line
):
    add_chat(app, registered, GROUP, "tok-g")
    budget(app, "channel", 0, 12)
    first = notify(client, "tok-g")
    assert first.status_code == 200
    assert first.headers["X-LineQuota-Limit"] == "12"
    assert first.headers["X-LineQuota-Remaining"] == "7"
    assert notify(client, "tok-g").headers["X-LineQuota-Remaining"] == "2"
    refused = notify(client, "tok-g")
    assert refused.status_code == 429
    body = refused.get_json()
    assert body["status"] == 429
    assert "monthly LINE message budget" in body["message"]
    assert body["reason"] == "monthly_budget"  # the site fails it rather than wait an hour
    assert "resets" in body["message"]
    assert refused.headers["X-LineQuota-Remaining"] == "2"
    assert int(refused.headers["X-LineQuota-Reset"]) > utcnow().timestamp()
    # The hourly window is LINE Notify's, untouched: the refused call spent nothing.
    assert refused.headers["X-RateLimit-Remaining"] == "998"
    assert queued(app) == 2
    assert run(app) == 1  # the two queued ones packed into one push
    (call,) = fake_line.state.pushes  # and 0 calls for the refused one
    assert len(call.json["messages"]) == 2
    assert fake_line.state.consumption == 5


def test_the_channel_budget_defaults_to_lines_limit(app, client, registered, fake_line):
    fake_line.state.quota, fake_line.state.consumption = 8, 0
    add_chat(app, registered, GROUP, "tok-d")
    with app.app_context():
        from notify_site.relay.line.channel import current_settings
        from notify_site.relay.line.quota import read_quota

        read_quota(current_settings(), utcnow())
    assert notify(client, "tok-d").headers["X-LineQuota-Limit"] == "8"
    assert notify(client, "tok-d").status_code == 429
    assert queued(app) == 1


def test_a_person_budget_covers_all_their_tokens(app, client, registered, fake_line):
    add_chat(app, registered, USER, "tok-1", person=7)
    with app.app_context():
        chat_id = db.session.scalar(select(RelayChat.id).where(RelayChat.line_id == USER))
        create_relay_token(find_client(registered.client_id).id, chat_id, "tok-2", person_id=7)
    budget(app, "person", 7, 2)
    assert notify(client, "tok-1").status_code == 200
    assert notify(client, "tok-2").status_code == 200
    refused = notify(client, "tok-1")
    assert refused.status_code == 429
    assert "person's monthly LINE message budget" in refused.get_json()["message"]
    assert queued(app) == 2


def test_a_token_budget_covers_that_token_only(app, client, registered, fake_line):
    add_chat(app, registered, USER, "tok-a", person=7)
    with app.app_context():
        chat_id = db.session.scalar(select(RelayChat.id).where(RelayChat.line_id == USER))
        create_relay_token(find_client(registered.client_id).id, chat_id, "tok-b", person_id=7)
        token_pk = db.session.scalar(select(func.min(RelayBudget.id)))  # none yet
        assert token_pk is None
        from notify_site.relay.models import RelayAccessToken

        first_pk = db.session.scalar(select(func.min(RelayAccessToken.id)))
    budget(app, "token", first_pk, 1)
    assert notify(client, "tok-a").status_code == 200
    assert notify(client, "tok-a").status_code == 429
    assert notify(client, "tok-b").status_code == 200
    status = client.get("/relay/api/status", headers={"Authorization": "Bearer tok-a"})
    assert status.get_json()["lineQuota"] == {
        "scope": "token",
        "limit": 1,
        "used": 1,
        "remaining": 0,
        "reset": int(status.headers["X-LineQuota-Reset"]),
    }


def test_the_budget_resets_with_the_billing_month(app, client, registered, fake_line, monkeypatch):
    add_chat(app, registered, GROUP, "tok-m")
    budget(app, "channel", 0, 5)
    # 23:30 UTC on 31 December is already January in Japan.
    december = datetime(2026, 12, 31, 14, 0, tzinfo=UTC)
    january = datetime(2026, 12, 31, 15, 30, tzinfo=UTC)
    monkeypatch.setattr(notify_api, "utcnow", lambda: december)
    assert notify(client, "tok-m").status_code == 200
    refused = notify(client, "tok-m")
    assert refused.status_code == 429
    assert refused.headers["X-LineQuota-Reset"] == str(
        int(datetime(2026, 12, 31, 15, 0, tzinfo=UTC).timestamp())
    )
    monkeypatch.setattr(notify_api, "utcnow", lambda: january)
    assert notify(client, "tok-m").status_code == 200
    assert queued(app) == 2


def test_admins_set_budgets_on_the_line_page(app, client, registered, fake_line):
    add_chat(app, registered, GROUP, "tok-p", person=None)
    with app.app_context():
        root = create_user("root", admin=True).get_id()
        bob = create_user("bob").get_id()
    for user_id, status in ((bob, 403), (root, 302)):
        with client.session_transaction() as session:
            session["_user_id"], session["_fresh"] = user_id, True
        answer = client.post("/relay/line/budgets", data={"target": "channel:0", "units": "99"})
        assert answer.status_code == status
    page = client.get("/relay/line/admin").get_data(as_text=True)
    assert "data-units-used>0<" in page
    answer = client.post("/relay/line/budgets", data={"target": "channel:0", "units": "10"})
    assert answer.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(RelayBudget.monthly_units)) == 10
    notify(client, "tok-p")
    page = client.get("/relay/line/admin").get_data(as_text=True)
    assert "data-units-used>5<" in page
    assert "data-units-limit>10<" in page
    notify(client, "tok-p")
    page = client.get("/relay/line/admin").get_data(as_text=True)
    assert 'data-quota-warning="100"' in page
    bad = client.post(
        "/relay/line/budgets", data={"target": "channel:0", "units": "many"}, follow_redirects=True
    )
    assert "whole number of units" in bad.get_data(as_text=True)
    client.post("/relay/line/budgets", data={"target": "channel:0", "units": ""})
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RelayBudget)) == 0
        assert db.session.scalar(select(func.count()).select_from(RelayMessage)) == 2


def test_line_check_prints_the_ledger_budget_and_tops(app, client, registered, fake_line):
    add_chat(app, registered, GROUP, "tok-c")
    budget(app, "channel", 0, 6)
    notify(client, "tok-c")
    result = app.test_cli_runner().invoke(args=["relay", "line-check"])
    assert result.exit_code == 0, result.output
    assert "Messages this month: 0 used, quota 200." in result.output
    assert "5 units used, channel budget 6" in result.output
    assert "Warning: the channel has used 83% of its monthly budget." in result.output
    assert "Top chats: Ops (5)" in result.output
    assert "Top services: Example Service (5)" in result.output


def test_concurrent_calls_never_pass_the_budget(app, registered, fake_line):
    """A burst at once: the check and the reservation are one step (an advisory lock on
    PostgreSQL, the one writer on SQLite), so exactly the calls that fit are accepted."""
    import threading

    add_chat(app, registered, GROUP, "tok-burst")
    budget(app, "channel", 0, 20)  # four pushes of 5
    answers: list[int] = []
    lock = threading.Lock()

    def call(n: int) -> None:
        status = notify(app.test_client(), "tok-burst", f"#{n}").status_code
        with lock:
            answers.append(status)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200] * 4 + [429] * 6
    assert queued(app) == 4
    run(app)
    assert fake_line.state.consumption <= 20
