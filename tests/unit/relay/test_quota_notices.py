"""No surprise (issue 15): at 80 % and 100 % of a monthly budget the operator's chosen chat
gets one notice per threshold per month, and the warnings show on the site's /admin."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.relay.budgets import set_budget
from notify_site.relay.clients import find_client
from notify_site.relay.models import RelayChat, RelayMessage
from notify_site.relay.notices import SENDER, check_thresholds
from notify_site.relay.quota_models import RelayQuotaNotice
from tests.conftest import make_test_config
from tests.factories import create_relay_token, create_user
from tests.fakes.line_api import channel_config
from tests.unit.relay.line_pushes import run

GROUP = "C" + "e" * 32
OPERATOR = "U" + "0" * 32


@pytest.fixture
def app_config(tmp_path, fake_line):
    fake_line.state.member_counts[GROUP] = 5
    return make_test_config(
        tmp_path,
        RELAY_QUOTA_NOTICE_CHAT=OPERATOR,
        **channel_config(fake_line, "https://relay.example/relay"),
    )


@pytest.fixture
def group_token(app, registered) -> str:
    with app.app_context():
        group = RelayChat(kind="GROUP", name="Ops", line_id=GROUP, source_type="group")
        operator = RelayChat(kind="USER", name="Operator", line_id=OPERATOR, source_type="user")
        db.session.add_all([group, operator])
        db.session.commit()
        create_relay_token(find_client(registered.client_id).id, group.id, "tok-n", person_id=3)
        set_budget("channel", 0, 10, now=utcnow())
        set_budget("token", 1, 5, now=utcnow())
        db.session.commit()
    return "tok-n"


def notices(app) -> list[tuple[str, int]]:
    with app.app_context():
        rows = db.session.scalars(select(RelayQuotaNotice).order_by(RelayQuotaNotice.id))
        return [(row.subject, row.threshold) for row in rows]


def test_each_threshold_is_noticed_once_a_month_in_the_chosen_chat(
    app, client, group_token, fake_line
):
    bearer = {"Authorization": f"Bearer {group_token}"}
    assert (
        client.post("/relay/api/notify", headers=bearer, data={"message": "a"}).status_code == 200
    )
    # 5 of the channel's 10 (50 %), 5 of the token's 5 (100 %): both token notices.
    assert notices(app) == [("token:1", 80), ("token:1", 100)]
    refused = client.post("/relay/api/notify", headers=bearer, data={"message": "b"})
    assert refused.status_code == 429
    with app.app_context():
        check_thresholds(app.config, utcnow(), token_pk=1, person_id=3)  # again: nothing new
        texts = list(
            db.session.scalars(
                select(RelayMessage.message).where(RelayMessage.client_name == SENDER)
            )
        )
    assert notices(app) == [("token:1", 80), ("token:1", 100)]
    assert (
        texts
        == [
            "LINE quota: token:1 has used 100% of its monthly budget (5 of 5 units) in "
            + texts[0].rsplit(" in ", 1)[1],
        ]
        * 2
    )
    run(app)
    operator_pushes = [c for c in fake_line.state.pushes if c.json["to"] == OPERATOR]
    assert len(operator_pushes[0].json["messages"]) == 2  # both notices, packed
    assert operator_pushes[0].json["messages"][0]["text"].startswith("[Notify relay] LINE quota:")


def test_the_channels_thresholds_show_on_the_sites_admin(app, client, group_token, fake_line):
    with app.app_context():
        set_budget("token", 1, None, now=utcnow())
        db.session.commit()
        admin = create_user("root", admin=True).get_id()
    bearer = {"Authorization": f"Bearer {group_token}"}
    client.post("/relay/api/notify", headers=bearer, data={"message": "a"})
    with client.session_transaction() as session:
        session["_user_id"], session["_fresh"] = admin, True
    assert "data-admin-notice" not in client.get("/admin").get_data(as_text=True)
    client.post("/relay/api/notify", headers=bearer, data={"message": "b"})
    page = client.get("/admin").get_data(as_text=True)
    # 10 units of pushes, then the two notices to the operator (a user: 1 unit each), which
    # no budget refuses: a notice that the budget is spent must get through.
    assert "The channel has used 120% of its monthly budget (12 of 10 units)." in page
    assert notices(app) == [("channel", 80), ("channel", 100)]


def test_an_accepted_call_reads_its_budgets_once_and_never_sums_the_ledger(
    app, client, group_token
):
    """The budgets' figures as the call left them serve its check, its answer's X-LineQuota
    headers and its threshold notices: one read of the running totals (here the channel's and
    the token's) and no sum over the month's ledger rows, whose cost grew with the month."""
    from sqlalchemy import event

    sums, reads = [], []

    def count(_conn, _cursor, statement, *_args) -> None:
        lowered = statement.lower()
        if "sum(relay_line_usage.units)" in lowered:
            sums.append(statement)
        if lowered.startswith("select") and "from relay_line_totals" in lowered:
            reads.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        answer = client.post(
            "/relay/api/notify",
            headers={"Authorization": f"Bearer {group_token}"},
            data={"message": "a"},
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert answer.status_code == 200
    assert (len(sums), len(reads)) == (0, 1)
    # 5 units of the token's 5: the tightest budget, spent, after this call.
    assert answer.headers["X-LineQuota-Limit"] == "5"
    assert answer.headers["X-LineQuota-Remaining"] == "0"
    assert notices(app) == [("token:1", 80), ("token:1", 100)]
