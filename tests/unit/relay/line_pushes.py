"""Channel mode's pushes in the relay's unit tests (test_line_push.py, test_line_contract.py):
a LINE user chat with a relay token, a send to it through /api/notify, a run of the push
outbox, and the pushes stored."""

from __future__ import annotations

from sqlalchemy import select

from notify_site.extensions import db
from notify_site.outbox import RetryPolicy
from notify_site.relay.clients import find_client
from notify_site.relay.line.channel import current_settings
from notify_site.relay.line.push import process_due_pushes, push_policy
from notify_site.relay.models import RelayChat, RelayPush
from tests.factories import create_relay_token

ALICE = "U" + "a" * 32
TOKEN = "relay-token-for-alice"


def add_line_user_chat(app, registered) -> int:
    """Alice's LINE user chat, with the relay access token :data:`TOKEN` for the service
    ``registered`` (the relay's unit-test fixture); returns the chat id."""
    with app.app_context():
        chat = RelayChat(kind="USER", name="Alice", line_id=ALICE, source_type="user")
        db.session.add(chat)
        db.session.flush()
        db.session.commit()
        create_relay_token(find_client(registered.client_id).id, chat.id, TOKEN)
        return chat.id


def notify(client, **data):
    return client.post("/relay/api/notify", data=data, headers={"Authorization": f"Bearer {TOKEN}"})


def run(app, policy: RetryPolicy | None = None) -> int:
    with app.app_context():
        return process_due_pushes(current_settings(), policy or push_policy(app.config))


def pushes(app) -> list[RelayPush]:
    with app.app_context():
        return list(db.session.scalars(select(RelayPush).order_by(RelayPush.id)))
