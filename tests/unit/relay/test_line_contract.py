"""The LINE fakes are held to LY's own OpenAPI documents (tests/fakes/line_contract.py).

A request LINE would refuse is answered 400 as LINE answers it, recorded with the rule it
broke, and fails the test at the fake's teardown; an answer of the fake that LINE would never
give is recorded and fails it too. The relay's own requests in every fake-backed test go
through the same check (tests/unit/relay/test_line_*.py, tests/integration/relay_line/, the
browser pairing test).
"""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from notify_site.relay.line import push as line_push
from notify_site.relay.models import PushStatus
from tests.conftest import make_test_config
from tests.fakes import line_contract
from tests.fakes.line_api import (
    STATIC_TOKEN,
    FakeLine,
    channel_config,
    event,
    serve_fake,
    text_message,
    webhook_body,
)
from tests.unit.relay.line_pushes import ALICE, add_line_user_chat, notify, pushes, run

PUSH = "/v2/bot/message/push"
TIMEOUT = 10


@pytest.fixture
def fake(mocked_http):
    """A running fake whose violations each test reads, then clears (see ``refused``)."""
    generator = serve_fake()
    server = next(generator)
    mocked_http.add_passthru(server.url)  # these tests call it with requests themselves
    yield server
    server.state.violations.clear()
    with pytest.raises(StopIteration):
        next(generator)


def post_push(fake, body: dict, **headers) -> requests.Response:
    headers = {
        "Authorization": f"Bearer {STATIC_TOKEN}",
        "X-Line-Retry-Key": str(uuid.uuid4()),
        **headers,
    }
    return requests.post(f"{fake.url}{PUSH}", json=body, headers=headers, timeout=TIMEOUT)


def text(value: str = "hello") -> dict:
    return {"type": "text", "text": value}


def refused(fake) -> str:
    """The violations recorded so far, as one text."""
    return "\n".join(fake.state.violations)


def test_a_push_line_accepts_passes_and_is_delivered(fake):
    answer = post_push(fake, {"to": ALICE, "messages": [text(), text("two")]})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["sentMessages"]) == 2
    assert fake.state.violations == []


@pytest.mark.parametrize(
    ("messages", "broken"),
    [
        # A text message without its text: only found by following Message's discriminator.
        ([{"type": "text"}], "'text' is a required property"),
        ([{"type": "sticker", "packageId": 446, "stickerId": "1988"}], "446 is not of type"),
        (
            [{"type": "image", "originalContentUrl": "not a url", "previewImageUrl": "x"}],
            "is not a 'uri'",
        ),
        ([{"type": "notify"}], "'notify'"),  # a message type LINE does not define
        ([text()] * 6, "is too long"),  # at most 5 messages
        ([], "should be non-empty"),
    ],
)
def test_a_push_line_would_refuse_is_refused_naming_the_rule(fake, messages, broken):
    answer = post_push(fake, {"to": ALICE, "messages": messages})
    assert answer.status_code == 400
    assert answer.json()["message"]  # LINE's error body
    assert fake.state.delivered == []
    assert "pushMessage (POST /v2/bot/message/push): request body" in refused(fake)
    assert broken in refused(fake)


def test_a_retry_key_that_is_not_a_uuid_is_refused(fake):
    answer = post_push(fake, {"to": ALICE, "messages": [text()]}, **{"X-Line-Retry-Key": "r-1"})
    assert answer.status_code == 400
    assert "header parameter X-Line-Retry-Key: 'r-1' is not a 'uuid'" in refused(fake)


def test_a_call_without_the_bearer_token_breaks_the_security_rule(fake):
    answer = requests.get(f"{fake.url}/v2/bot/info", timeout=TIMEOUT)
    assert answer.status_code == 400
    assert "getBotInfo" in refused(fake)
    assert "Security not found" in refused(fake)


def test_an_endpoint_line_does_not_have_is_reported(fake):
    auth = {"Authorization": f"Bearer {STATIC_TOKEN}"}
    requests.get(f"{fake.url}/v2/bot/room/R1/summary", headers=auth, timeout=TIMEOUT)
    requests.delete(f"{fake.url}{PUSH}", headers=auth, timeout=TIMEOUT)
    assert "no LINE document describes GET /v2/bot/room/R1/summary" in refused(fake)
    assert "documents no DELETE operation for /v2/bot/message/push" in refused(fake)


def test_a_token_request_missing_a_field_is_refused_in_the_token_endpoints_shape(fake):
    answer = requests.post(
        f"{fake.url}/oauth2/v2.1/revoke",
        data={"client_id": "1234567890", "access_token": "t"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 400
    assert set(answer.json()) == {"error", "error_description"}
    assert "revokeChannelTokenByJWT" in refused(fake)
    assert "'client_secret' is a required property" in refused(fake)
    assert fake.state.revoked == []


def test_an_answer_line_would_never_give_is_reported(fake):
    fake.state.bot_name = 42  # BotInfoResponse.displayName is a string
    auth = {"Authorization": f"Bearer {STATIC_TOKEN}"}
    answer = requests.get(f"{fake.url}/v2/bot/info", headers=auth, timeout=TIMEOUT)
    assert answer.status_code == 200
    assert "the fake's messaging-api.yml getBotInfo (GET /v2/bot/info): answer 200" in refused(fake)
    assert "42 is not of type 'string'" in refused(fake)


def test_an_undocumented_error_status_must_carry_lines_error_body(fake):
    # getProfile documents only 200; a 404 must still be LINE's ErrorResponse.
    answer = requests.get(
        f"{fake.url}/v2/bot/profile/{ALICE}",
        headers={"Authorization": f"Bearer {STATIC_TOKEN}"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 404
    assert fake.state.violations == []


def test_the_fakes_teardown_fails_the_test_listing_every_violation(mocked_http):
    generator = serve_fake()
    server = next(generator)
    mocked_http.add_passthru(server.url)
    post_push(server, {"to": ALICE, "messages": [{"type": "text"}]})
    post_push(server, {"to": ALICE, "messages": [text()]}, **{"X-Line-Retry-Key": "again"})
    with pytest.raises(AssertionError) as failure:
        next(generator)
    message = str(failure.value)
    assert "LINE's OpenAPI documents were not kept" in message
    assert "'text' is a required property" in message
    assert "'again' is not a 'uuid'" in message


def test_a_refused_request_does_not_consume_an_injected_failure(fake):
    fake.state.fail_next(PUSH, 500)
    assert post_push(fake, {"to": ALICE, "messages": [{"type": "text"}]}).status_code == 400
    assert post_push(fake, {"to": ALICE, "messages": [text()]}).status_code == 500
    fake.state.violations.clear()


def test_without_the_documents_the_fake_fails_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setattr(line_contract, "DOCUMENTS_DIR", tmp_path / "shared" / "line-openapi")
    with pytest.raises(line_contract.LineDocumentsMissing) as missing:
        FakeLine()
    message = str(missing.value)
    assert str(tmp_path / "shared" / "line-openapi" / "messaging-api.yml") in message
    assert "shared/line-openapi/ beside the project's root" in message


def test_the_documents_are_read_beside_the_project_root():
    root = line_contract.PROJECT_ROOT
    assert (root / "notify_site").is_dir()
    assert root.parent / "shared" / "line-openapi" == line_contract.DOCUMENTS_DIR
    # Read from there, never copied into the project.
    assert not list(root.glob("**/messaging-api.yml"))


# --- The webhook helpers send what LINE sends -----------------------------------------------


GROUP = "C" + "e" * 32
MEMBERS = {"members": [{"type": "user", "userId": ALICE}]}


@pytest.mark.parametrize(
    "built",
    [
        event("follow"),
        event("unfollow"),
        event("join", group=GROUP),
        event("leave", room="R" + "f" * 32),
        event("memberJoined", group=GROUP, joined=MEMBERS),
        event("memberLeft", group=GROUP, left=MEMBERS),
        text_message("hello", group=GROUP, user=ALICE),
    ],
    ids=lambda built: built["type"],
)
def test_the_helpers_events_are_what_webhook_yml_describes(built):
    assert line_contract.line_contract().check_webhook_body(webhook_body(built)) == []


def test_a_webhook_body_line_would_never_send_is_told_apart():
    body = webhook_body({"type": "follow", "webhookEventId": "01X"})
    problems = "\n".join(line_contract.line_contract().check_webhook_body(body))
    assert "'deliveryContext' is a required property" in problems
    assert "'follow' is a required property" in problems  # from FollowEvent, by discriminator
    assert json.loads(body)["events"][0]["type"] == "follow"


# --- The relay's own requests go through the same check ---------------------------------------


@pytest.fixture
def alice(app, registered) -> int:
    """The LINE user chat with a relay token, as in tests/unit/relay/test_line_push.py."""
    return add_line_user_chat(app, registered)


@pytest.fixture
def app_config(tmp_path, fake):
    return make_test_config(tmp_path, **channel_config(fake, "https://relay.example/relay"))


@pytest.mark.usefixtures("alice")
def test_the_relays_push_is_checked_and_a_bad_one_cannot_pass_unseen(
    app, client, fake, monkeypatch
):
    assert notify(client, message="Disk 91% full").status_code == 200
    run(app)
    assert [call.status for call in fake.state.pushes] == [200]
    assert fake.state.violations == []
    # A relay that sent a retry key LINE does not accept: LINE refuses the push (400, which
    # the relay takes as final) and the check names the rule, so the test cannot pass.
    monkeypatch.setattr(line_push, "new_retry_key", lambda: "not-a-uuid")
    refusal = notify(client, message="Disk 92% full")  # LINE's 400 passes through (issue 22)
    assert refusal.status_code == 400
    assert refusal.get_json()["message"] == (
        "LINE refused the message: The request does not match the API"
    )
    run(app)
    last = pushes(app)[-1]
    assert (last.status, last.last_status_code) == (PushStatus.FAILED, 400)
    assert "pushMessage" in refused(fake)
    assert "'not-a-uuid' is not a 'uuid'" in refused(fake)


def test_line_check_with_a_static_token_keeps_the_contract(app, fake):
    # The relay's own calls for `relay line-check`: verify (POST /v2/oauth/verify, a form),
    # bot info, quota and consumption, each checked against LINE's documents both ways.
    fake.state.quota, fake.state.consumption = None, 3
    result = app.test_cli_runner().invoke(args=["relay", "line-check"])
    assert result.exit_code == 0, result.output
    (verify,) = fake.state.calls_to("/v2/oauth/verify", "POST")
    assert verify.form == {"access_token": STATIC_TOKEN}
    assert {c.path for c in fake.state.calls} == {
        "/v2/oauth/verify",
        "/v2/bot/info",
        "/v2/bot/message/quota",
        "/v2/bot/message/quota/consumption",
    }
    assert fake.state.violations == []
