"""Issue 22 end to end, over real HTTP: the site, its relay in channel mode and the fake
Messaging API. The site says *delivered* only when LINE took the message, *pending at the
Notify server* while the relay waits (followed to its end), and *refused* with the reason;
LINE's monthly limit pauses the relay, which waits quietly and then delivers each waiting
push once.
"""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.models import Connection, Notification, NotificationStatus, User
from notify_site.relay.models import RelayLineChannel
from notify_site.services.retry import MONTHLY_LIMIT
from notify_site.worker import Worker
from tests.factories import create_api_key
from tests.fakes.line_api import event
from tests.fakes.line_live import ALICE, TIMEOUT, live_channel_config, post_webhook
from tests.integration.helpers import register
from tests.integration.relay_line.test_line_live import connect_line_chat

PUSH = "/v2/bot/message/push"
QUOTA = "/v2/bot/message/quota"


@pytest.fixture
def live_overrides(fake):
    return live_channel_config(
        fake,
        DELIVERY_FOLLOW_SECONDS=0,  # the site asks about a pending message on every round
        RELAY_LINE_MONTHLY_RECHECK_MINUTES=0,  # and the relay re-reads the quota as often
        RELAY_LINE_SYNC_WAIT_SECONDS=3,
    )


def post(live, key: str, message: str) -> int:
    answer = requests.post(
        f"{live.site}/api/v1/notifications",
        json={"connection": "Phone", "message": message},
        headers={"Authorization": f"Bearer {key}"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 202, answer.text
    return answer.json()["notifications"][0]["id"]


def site_view(live, key: str, notification_id: int) -> dict:
    answer = requests.get(
        f"{live.site}/api/v1/notifications/{notification_id}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def row(live, notification_id: int) -> Notification:
    with live.app.app_context():
        found = db.session.get(Notification, notification_id)
        db.session.expunge(found)
        return found


def test_the_site_tells_what_line_did(live, fake):
    live.fake = fake  # connect_line_chat reads the bot's reply from it
    browser = requests.Session()
    register(browser, live.site)  # the site's first account: an admin
    post_webhook(live, event("follow", user=ALICE))
    connect_line_chat(live, browser, "Phone")
    with live.app.app_context():
        owner = db.session.get(User, db.session.scalars(select(Connection.owner_id)).one())
        _, key = create_api_key(owner, "truth")
    worker = Worker(live.app)

    # LINE takes it: delivered, and nothing to follow.
    sent = post(live, key, "Backup finished")
    worker.run_until_idle()
    assert site_view(live, key, sent)["status"] == "delivered"
    assert row(live, sent).remote_message_id is None

    # LINE fails once: the relay says pending; the site follows it until LINE took it.
    fake.state.fail_next(PUSH, 500)
    slow = post(live, key, "Disk 91% full")
    worker.run_until_idle()
    assert row(live, slow).remote_message_id  # it was pending at the relay
    assert site_view(live, key, slow)["status"] == "delivered"
    assert len(fake.state.delivered) == 2

    # LINE refuses it (a 400 with details): refused, with LINE's reason, at once.
    details = [{"message": "Length must be between 0 and 5000", "property": "messages[0].text"}]
    fake.state.fail_next(
        PUSH, (400, {"message": "The request body has 1 error(s)", "details": details})
    )
    refused = post(live, key, "too long for LINE, it says")
    worker.run_until_idle()
    view = site_view(live, key, refused)
    assert view["status"] == "failed"
    assert "LINE refused the message: The request body has 1 error(s)" in view["last_error"]

    # The month runs out while a push waits for LINE (its first try failed, its retry meets
    # the limit): the relay pauses, the push waits, and the site shows it pending.
    fake.state.fail_next(PUSH, 500)
    fake.state.quota, fake.state.consumption = 3, 3
    waiting = post(live, key, "sent before the limit")
    pushes_before = len(fake.state.pushes)
    worker.run_until_idle()
    assert site_view(live, key, waiting)["status"] == "at_server"
    with live.app.app_context():
        assert db.session.scalar(select(RelayLineChannel.monthly_limit_at)) is not None

    # A new send meets the monthly 429 at once: refused on the site, no call to LINE.
    over = post(live, key, "sent at the limit")
    worker.run_until_idle()
    view = site_view(live, key, over)
    assert view["status"] == "failed"
    assert view["last_error"] == MONTHLY_LIMIT.text
    dashboard = browser.get(f"{live.site}/dashboard", timeout=TIMEOUT).text
    assert "monthly message limit is reached" in dashboard
    assert "pending at the Notify server" in dashboard

    # Waiting quietly: more rounds re-read the quota but push nothing.
    for _ in range(5):
        worker.run_until_idle()
    assert len(fake.state.pushes) == pushes_before + 2  # the 500, then the monthly 429
    admin = browser.get(f"{live.relay}/line/admin", timeout=TIMEOUT).text
    assert "Paused: LINE" in admin
    assert len(fake.state.calls_to(QUOTA, "GET")) >= 5

    # The plan is raised: the waiting push goes out once, with its retry key, and the site
    # shows it delivered.
    fake.state.quota = 1000
    worker.run_until_idle()
    assert site_view(live, key, waiting)["status"] == "delivered"
    keys = [c.header("x-line-retry-key") for c in fake.state.pushes[pushes_before:]]
    assert len(keys) == 3
    assert len(set(keys)) == 1
    texts = [d["body"]["messages"][0]["text"] for d in fake.state.delivered]
    assert texts.count("[notify_site] sent before the limit") == 1
    assert "[notify_site] sent at the limit" not in texts
    assert row(live, waiting).status == NotificationStatus.DELIVERED
