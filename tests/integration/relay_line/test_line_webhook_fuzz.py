"""The relay's webhook, fuzzed from LINE's own ``webhook.yml`` over real HTTP (issue 21).

Webhook bodies are generated from the document's event schemas (flattened by
tests/fakes/line_webhook_schemas.py; schemathesis's generator draws the values): every event
type and message type LINE defines, optional fields present and absent, unknown extra fields
everywhere, odd strings and extreme numbers, several events per body, events of types LINE
may add later, and redeliveries of events already sent. Each body is checked against
``webhook.yml`` (so the generator produces only what LINE may send), signed with the channel
secret and POSTed to ``/relay/line/webhook`` on the Live relay, which calls the fake
Messaging API for names.

For every body: a 200, never a 4xx or 5xx; every event stored by the time the 200 arrives
(the ack path stores, then answers); every event then handled exactly once (a spy counts
calls of the relay's event handler per ``webhookEventId``), redeliveries included, without
an error outcome or an error logged; and the chat registry equal to a model of it: a chat's
reachability is decided by its latest event by ``timestamp`` among follow / join / message
(reachable) and unfollow / leave (not), and a member's presence by its latest memberJoined /
memberLeft or message it sent there. Sources come from a small pool of chat ids most of the
time, so events meet the same chats, and arbitrary generated ids otherwise.

How many: ``NOTIFY_SITE_LINE_FUZZ_EXAMPLES`` bodies per kind (24 kinds: 18 event types, the 7
message types, one unknown type) and 15 times that many mixed bodies of one to five events.
``make test`` runs the default, 3 (72 + 45 bodies, about 5 s here); ``make scan`` runs 25
(600 + 375 bodies). The examples are derandomised, so a run is repeatable.
"""

from __future__ import annotations

import copy
import itertools
import logging
import os
import time
from collections import Counter
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.relay.line import events as relay_events
from notify_site.relay.models import RelayChat, RelayChatMember, RelayLineEvent
from tests.fakes.line_api import sign, webhook_body
from tests.fakes.line_contract import line_contract
from tests.fakes.line_live import TIMEOUT
from tests.fakes.line_webhook_schemas import webhook_schemas

EXAMPLES = int(os.environ.get("NOTIFY_SITE_LINE_FUZZ_EXAMPLES", "3"))
MIXED_BODIES = 15 * EXAMPLES
SCHEMAS = webhook_schemas()
USERS = tuple(f"U{n:032x}" for n in range(1, 4))
GROUPS = tuple(f"C{n:032x}" for n in range(1, 3))
ROOMS = (f"R{1:032x}",)
POOL = {"user": ("userId", USERS), "group": ("groupId", GROUPS), "room": ("roomId", ROOMS)}
REACHABLE = {"follow": True, "join": True, "message": True, "unfollow": False, "leave": False}
MEMBERS = {"memberJoined": ("joined", True), "memberLeft": ("left", False)}
# LINE's event ids are ULIDs: 26 characters; the timestamps start in 2026 and only grow.
_ids = itertools.count(1)
_clock = itertools.count(1_790_000_000_000, 1000)


def _generated_bodies() -> dict[str, st.SearchStrategy[dict[str, Any]]]:
    """A strategy of events per kind, from webhook.yml's schemas: each event type but
    "message", "message.TYPE" for each message type, and "unknown"."""
    known = list(SCHEMAS.events)
    schemas = {name: schema for name, schema in SCHEMAS.events.items() if name != "message"}
    for message_type in SCHEMAS.message_types:
        pinned = {"properties": {"type": {"enum": [message_type]}}, "required": ["type"]}
        schemas[f"message.{message_type}"] = {
            "allOf": [SCHEMAS.events["message"], {"properties": {"message": pinned}}]
        }
    # An event of a type LINE may add one day: the common Event schema, any other type name.
    schemas["unknown"] = {
        "allOf": [
            SCHEMAS.base_event,
            {"properties": {"type": {"minLength": 1, "not": {"enum": known}}}},
        ]
    }
    document = {
        "openapi": "3.0.3",
        "info": {"title": "LINE webhook events (from webhook.yml)", "version": "1"},
        "paths": {
            f"/{name}": {
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": schema}},
                    },
                    "responses": {"200": {"description": "OK"}},
                }
            }
            for name, schema in schemas.items()
        },
    }
    operations = schemathesis.openapi.from_dict(document).get_all_operations()
    return {
        operation.ok().path.lstrip("/"): operation.ok()
        .as_strategy(generation_mode=GenerationMode.POSITIVE)
        .map(lambda case: case.body)
        for operation in operations
    }


GENERATED = _generated_bodies()
KINDS = sorted(GENERATED)
REGISTRY_KINDS = [
    "follow",
    "unfollow",
    "join",
    "leave",
    "memberJoined",
    "memberLeft",
    "message.text",
]


@st.composite
def line_events(draw, kinds: st.SearchStrategy[str]) -> dict[str, Any]:
    """One generated event made to look like LINE's: a fresh ULID-long id, a growing
    timestamp (the pool's events), and most of the time a source (and members) from the
    pool so that events meet the same chats."""
    kind = draw(kinds)
    raw = draw(GENERATED[kind])
    raw["webhookEventId"] = f"01FUZZ{next(_ids):020d}"
    if draw(st.integers(0, 3)):  # three times in four: a chat of the pool
        source = raw["source"] if isinstance(raw.get("source"), dict) else {}
        source_type = draw(st.sampled_from(sorted(POOL)))
        key, pool = POOL[source_type]
        source.update({"type": source_type, key: draw(st.sampled_from(pool))})
        if source_type != "user" and draw(st.booleans()):
            source["userId"] = draw(st.sampled_from(USERS))
        raw["source"] = source
        raw["timestamp"] = next(_clock)
    for field, _joined in MEMBERS.values():
        holder = raw.get(field)
        members = holder.get("members") if isinstance(holder, dict) else None
        for member in members if isinstance(members, list) else []:
            if isinstance(member, dict) and draw(st.booleans()):
                member.update(type="user", userId=draw(st.sampled_from(USERS)))
    return raw


class Registry:
    """The model: what the relay's chat registry must say after the events it was sent."""

    def __init__(self) -> None:
        self.reachable: dict[str, tuple[int, bool]] = {}
        self.members: dict[tuple[str, str], tuple[int, bool]] = {}

    def apply(self, raw: dict[str, Any]) -> None:
        chat = _pool_chat(raw.get("source"))
        timestamp = raw.get("timestamp")
        if chat is None or not isinstance(timestamp, int):
            return
        kind = raw.get("type")
        if kind in REACHABLE:
            self._latest(self.reachable, chat, timestamp, REACHABLE[kind])
        elif kind in MEMBERS:
            field, joined = MEMBERS[kind]
            for user in _pool_members(raw.get(field)):
                self._latest(self.members, (chat, user), timestamp, joined)
        if kind == "message":
            # A message in a group or room shows its sender is a member there (issue 19).
            source = raw["source"]
            sender = source.get("userId")
            if source.get("type") in ("group", "room") and sender in USERS:
                self._latest(self.members, (chat, sender), timestamp, True)

    @staticmethod
    def _latest(table: dict, key, timestamp: int, value: bool) -> None:
        if key not in table or table[key][0] <= timestamp:
            table[key] = (timestamp, value)

    def check(self, app) -> None:
        with app.app_context():
            chats = {
                chat.line_id: chat
                for chat in db.session.scalars(
                    select(RelayChat).where(RelayChat.line_id.in_(USERS + GROUPS + ROOMS))
                )
            }
            members = {
                (chat.line_id, member.line_user_id): member.left_at is None
                for member, chat in db.session.execute(
                    select(RelayChatMember, RelayChat).join(
                        RelayChat, RelayChat.id == RelayChatMember.chat_id
                    )
                )
            }
            db.session.remove()
        for chat, (_, reachable) in self.reachable.items():
            assert chat in chats, f"{chat} was never registered"
            assert chats[chat].reachable is reachable, f"{chat} should be reachable={reachable}"
        for key, (_, present) in self.members.items():
            assert members.get(key) is present, f"member {key} should be present={present}"


def _pool_chat(source: Any) -> str | None:
    if not isinstance(source, dict) or source.get("type") not in POOL:
        return None
    key, pool = POOL[source["type"]]
    return source.get(key) if source.get(key) in pool else None


def _pool_members(field: Any) -> list[str]:
    members = field.get("members") if isinstance(field, dict) else None
    if not isinstance(members, list):
        return []
    return [m["userId"] for m in members if isinstance(m, dict) and m.get("userId") in USERS]


def processed(live, ids: list[str], seconds: float = 15) -> None:
    """Wait (bounded) until the relay's after-response step handled these events; the
    worker is not run: the ack path itself must get every new event handled."""
    deadline = time.monotonic() + seconds
    while True:
        with live.app.app_context():
            done = db.session.scalar(
                select(func.count()).where(
                    RelayLineEvent.webhook_event_id.in_(ids),
                    RelayLineEvent.processed_at.is_not(None),
                )
            )
            db.session.remove()
        if done == len(set(ids)):
            return
        assert time.monotonic() < deadline, f"events never handled: {ids}"
        time.sleep(0.01)


@pytest.fixture
def handled(monkeypatch) -> Counter:
    """How many times the relay handled each event (by webhookEventId): a spy, not a stub."""
    counts: Counter = Counter()
    handle = relay_events._handle

    def counting(settings, raw):
        counts[raw.get("webhookEventId")] += 1
        return handle(settings, raw)

    monkeypatch.setattr(relay_events, "_handle", counting)
    return counts


def test_generated_webhooks_are_acknowledged_stored_and_handled_once(live, handled, caplog):
    caplog.set_level(logging.WARNING)
    contract = line_contract()
    registry = Registry()
    sent: list[dict[str, Any]] = []
    seen_types: set[str] = set()
    seen_messages: set[str] = set()

    def post(events: list[dict[str, Any]]) -> None:
        body = webhook_body(*events)
        # What LINE may send and nothing else (an event of a type webhook.yml does not define
        # yet cannot be checked against it).
        documented = [e for e in events if e["type"] in SCHEMAS.events]
        assert contract.check_webhook_body(webhook_body(*documented)) == []
        answer = requests.post(
            f"{live.relay}/line/webhook",
            data=body,
            headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)},
            timeout=TIMEOUT,
        )
        assert answer.status_code == 200, answer.text
        ids = [e["webhookEventId"] for e in events]
        with live.app.app_context():
            stored = set(
                db.session.scalars(
                    select(RelayLineEvent.webhook_event_id).where(
                        RelayLineEvent.webhook_event_id.in_(ids)
                    )
                )
            )
            db.session.remove()
        assert stored == set(ids), "the 200 came before every event was stored"
        processed(live, ids)
        for raw in events:
            if raw["webhookEventId"] not in {e["webhookEventId"] for e in sent}:
                sent.append(raw)
                registry.apply(raw)
            seen_types.add(raw["type"])
            if raw["type"] == "message":
                seen_messages.add(raw["message"]["type"])
        twice = {i: handled[i] for i in ids if handled[i] != 1}
        assert not twice, f"events not handled exactly once: {twice}"
        registry.check(live.app)

    common = settings(
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )

    # Every event and message type LINE defines (and an event type it does not), several
    # events of it per body.
    for kind in KINDS:

        @settings(common, max_examples=EXAMPLES)
        @given(st.lists(line_events(st.just(kind)), min_size=1, max_size=3))
        def one_type(events):
            post(events)

        one_type()

    # Mixed bodies, with redeliveries of events already sent (isRedelivery, same id).
    # Half of the events change a chat's reachability, so bodies often hold several for one.
    kinds = st.sampled_from(KINDS) | st.sampled_from(REGISTRY_KINDS)

    @settings(common, max_examples=MIXED_BODIES)
    @given(data=st.data())
    def mixed(data):
        events = data.draw(st.lists(line_events(kinds), min_size=1, max_size=5), "events")
        # LINE does not promise order: the pool's events may arrive out of timestamp order.
        timed = [e for e in events if _pool_chat(e.get("source"))]
        order = data.draw(st.permutations([e["timestamp"] for e in timed]), "timestamps")
        for raw, timestamp in zip(timed, order, strict=True):
            raw["timestamp"] = timestamp
        # Drawn whatever was sent before, so the draws never depend on that state.
        redeliver = data.draw(st.booleans(), "redeliver")
        pick = data.draw(st.integers(0, 2**16), "which")
        where = data.draw(st.integers(0, 5), "where")
        if redeliver and sent:
            again = copy.deepcopy(sent[pick % len(sent)])
            again["deliveryContext"] = {"isRedelivery": True}
            events.insert(where % (len(events) + 1), again)
        post(events)

    mixed()

    assert set(SCHEMAS.events) <= seen_types, set(SCHEMAS.events) - seen_types
    assert set(SCHEMAS.message_types) <= seen_messages, set(SCHEMAS.message_types) - seen_messages
    with live.app.app_context():
        rows = db.session.scalars(select(RelayLineEvent)).all()
        errors = {r.webhook_event_id: r.outcome for r in rows if r.outcome.startswith("error")}
        redelivered = sum(r.duplicates for r in rows)
        db.session.remove()
    assert len(rows) == len(sent)
    assert errors == {}
    assert redelivered > 0  # redeliveries were sent, recognised and not handled again
    assert sorted(handled.values()) == [1] * len(sent)
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert logged == [], [r.getMessage() for r in logged]
    assert registry.reachable  # the model followed the pool's chats
