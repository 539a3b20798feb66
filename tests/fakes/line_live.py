"""Channel mode over real HTTP: shared pieces for the tests that run the Live site and relay
against the fake Messaging API (tests/integration/relay_line and the browser tests).

``fake_line_with_alice`` gives a running fake server that knows Alice's profile;
``live_channel_config`` is the relay's channel-mode configuration aimed at it. The helpers
post signed webhooks the way LINE does and wait (bounded) until the relay handled them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import requests
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.relay.models import RelayLineEvent
from notify_site.worker import Worker
from tests.fakes.line_api import (
    FakeLine,
    FakeLineServer,
    channel_config,
    serve_fake,
    sign,
    webhook_body,
)

ALICE = "U" + "a" * 32
ALICE_NAME = "Alice Tanaka"
TIMEOUT = 10


def fake_line_with_alice() -> Iterator[FakeLineServer]:
    """For a fixture: ``yield from fake_line_with_alice()``; stopped afterwards, and the test
    failed if anything sent to it or answered by it broke LINE's documents."""
    state = FakeLine()
    state.profiles[ALICE] = ALICE_NAME
    yield from serve_fake(state)


def live_channel_config(fake: FakeLineServer, **overrides) -> dict:
    """The Live relay's channel-mode configuration, aimed at ``fake`` (static token)."""
    return channel_config(fake, "https://relay.example/relay", **overrides)


def post_webhook(live, *events) -> None:
    """POST the events to the relay's webhook, signed; wait until they are processed."""
    body = webhook_body(*events)
    answer = requests.post(
        f"{live.relay}/line/webhook",
        data=body,
        headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 200, answer.text
    wait_until_processed(live, [e["webhookEventId"] for e in events])


def wait_until_processed(live, event_ids, seconds: float = 15) -> None:
    """The relay handles events after answering; wait (bounded) until these are handled,
    by its after-response step or, failing that, by a worker round."""
    deadline = time.monotonic() + seconds
    while True:
        with live.app.app_context():
            done = db.session.scalars(
                select(RelayLineEvent.webhook_event_id).where(
                    RelayLineEvent.webhook_event_id.in_(event_ids),
                    RelayLineEvent.processed_at.is_not(None),
                )
            ).all()
            db.session.remove()
        if len(done) == len(event_ids):
            return
        assert time.monotonic() < deadline, f"events not processed: {event_ids}"
        Worker(live.app).run_until_idle()
        time.sleep(0.05)


def wait_for_pairing(live, poll_token: str, seconds: float = 15) -> dict:
    """Poll the relay's pairing endpoint (as the consent page does) until it is not waiting."""
    deadline = time.monotonic() + seconds
    while True:
        state = requests.get(
            f"{live.relay}/line/pairing", headers={"X-Relay-Pairing": poll_token}, timeout=TIMEOUT
        ).json()
        if state["status"] != "waiting":
            return state
        assert time.monotonic() < deadline, "the pairing was never matched"
        time.sleep(0.05)
