"""A person with two chats, and the clock: these tests move it with time-machine (the site's
utcnow() is datetime.now, which time-machine moves), never sleep."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from tests.conftest import make_test_config
from tests.factories import create_connection, create_user

API = "https://notify-api.test"
NOTIFY_URL = f"{API}/api/notify"


@pytest.fixture
def app_config(tmp_path):
    return make_test_config(tmp_path, NOTIFY_API_ORIGIN=API)


@pytest.fixture
def clock():
    """A stopped clock at 2027-01-04 00:00 UTC; ``clock.move_to(...)`` moves it."""
    with time_machine.travel(datetime(2027, 1, 4, tzinfo=UTC), tick=False) as traveller:
        yield traveller


@pytest.fixture
def world(app, clock) -> dict:
    with app.app_context():
        alice = create_user("alice")
        bob = create_user("bob")
        family = create_connection(alice, label="Family")
        ops = create_connection(alice, label="Ops")
        bobs = create_connection(bob, label="Bob's")
        return {
            "alice": alice.id,
            "bob": bob.id,
            "family": family.id,
            "ops": ops.id,
            "bobs": bobs.id,
        }


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)
