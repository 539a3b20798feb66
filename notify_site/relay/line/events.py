"""Processing stored webhook events: the chat registry, message records, pairing codes.

Each event is claimed with a conditional UPDATE (``claimed_until``), handled, and marked
processed with a one-line outcome, exactly once however many times it arrived. Events are
parsed one at a time with the SDK's ``Event.from_dict``; an unknown type, an unknown message
type or a malformed event is logged and marked ignored. Unknown fields are ignored by the
SDK's models.

The SDK's models are stricter than LINE: they require fields LINE documents but does not
always send — ``quoteToken`` on text/image/video/sticker messages, ``contentProvider`` on
image/video/audio, ``stickerResourceType``, ``follow`` on ``follow``, ``replyToken`` on
``join``/``memberJoined``, ``mode``, ``deliveryContext`` — and refuse the whole event when one
is missing. Losing a ``follow`` or ``join`` that way would lose the chat itself. So the SDK's
parse is the first check, not the only one: an event it refuses whose ``type`` (and, for a
message, message type) is one handled here is still handled, from its JSON. Filling the
missing fields in before parsing was the other choice; it was not taken because the list of
required fields is the SDK's, changes between its versions, and invented values (a fake
``quoteToken``) would sit in parsed objects as if LINE had sent them. To keep one path, the
handlers below read everything they use — the source's ids, the members, the message's type
and text, the reply token, the mode — from the JSON in both cases, defensively (wrong types
count as missing), so an event the SDK accepts and the same event with those extra fields
left out do exactly the same thing.

What each event does:

* ``follow``: the 1-on-1 chat is registered (or made reachable again), its name read from the
  profile endpoint; ``unfollow``: the chat stays, marked unreachable (the user blocked the bot).
* ``join``: the group (or room) is registered or made reachable, named from the group-summary
  endpoint (rooms have no name); ``leave``: marked unreachable.
* ``memberJoined`` / ``memberLeft``: the member list of the group; with ``join``, the
  group's member count is read again from LINE (what a push to it costs, ``cost.py``).
* ``message`` (every type): recorded as what the chat last sent (in a group or room, its
  sender recorded as a member, as ``memberJoined`` would); a text that is a pending
  pairing code binds the pairing to the chat, and the bot replies to confirm (unless the
  channel is in standby mode, when another bot answers the chat).
* ``unsend``: the person took a message back, so the relay keeps none of it: the stored
  message event's text (and other content) is blanked, and so is the chat's summary if it was
  that message. An unsend handled before its message (LINE does not order deliveries) is
  honoured when the message comes.

Events are applied in LINE's time order, not in the order they are handled: LINE does not
promise to deliver them in order (it says to order them by ``timestamp``), and two processes
may handle events of one chat at once. A chat's reachability follows its latest follow, join
or message (reachable) or unfollow or leave (not) by ``timestamp``, and a member's presence its
latest memberJoined or memberLeft; an older event handled later is recorded and changes
nothing (conditional UPDATEs, so no race can undo a later event).

An event without a usable ``source`` (``webhook.yml`` makes it optional, and ``userId``
optional on a user source) names no chat: it is logged and marked ignored.

Past 400 lines on purpose: one idea, applying LINE's events to the chat registry in
timestamp order; every handler shares the claim and the ordering rules.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from linebot.v3 import messaging
from linebot.v3.webhooks import Event
from sqlalchemy import case, func, literal, or_, select, update

from notify_site.db_types import UTCDateTime, utcnow
from notify_site.extensions import db
from notify_site.on_conflict import dialect_insert
from notify_site.relay.line import cost, pairing
from notify_site.relay.line.channel import ChannelSettings, messaging_api
from notify_site.relay.line.webhook import pending_event_ids
from notify_site.relay.models import ChatKind, RelayChat, RelayChatMember, RelayLineEvent

log = logging.getLogger(__name__)

CLAIM_SECONDS = 60
UNREACHABLE_BLOCKED = "The user blocked the bot or removed it as a friend."
UNREACHABLE_LEFT = "The bot left the group or was removed from it."
# What this module handles: anything else is ignored, whether or not the SDK parses it.
HANDLED_TYPES = frozenset(
    {"follow", "unfollow", "join", "leave", "memberJoined", "memberLeft", "message", "unsend"}
)
#: What the admin page's summary says of a message its sender took back.
UNSENT = "unsent"
#: The fields of a stored message event that hold what the person wrote.
CONTENT_FIELDS = ("text", "title", "address", "fileName", "emojis", "mention", "quotedMessageId")
MESSAGE_TYPES = frozenset({"text", "image", "video", "audio", "file", "location", "sticker"})
# LINE's user, group and room ids: a letter and 32 hex digits; the column holds 64.
MAX_LINE_ID = 64
# The outcome's note when an event is older than the one that last decided its chat.
STALE = " (older than the chat's last event: changes nothing)"


def process_events(settings: ChannelSettings, event_ids: list[int] | None = None) -> int:
    """Process the given stored events (default: every pending one); returns how many."""
    done = 0
    for event_id in event_ids if event_ids is not None else pending_event_ids():
        if process_event(settings, event_id):
            done += 1
    return done


def process_event(settings: ChannelSettings, event_id: int) -> bool:
    """Claim one stored event and handle it; False when it is done or another process has it."""
    now = utcnow()
    claimed = db.session.execute(
        update(RelayLineEvent)
        .where(
            RelayLineEvent.id == event_id,
            RelayLineEvent.processed_at.is_(None),
            or_(RelayLineEvent.claimed_until.is_(None), RelayLineEvent.claimed_until < now),
        )
        .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        db.session.rollback()
        return False
    db.session.commit()
    row = db.session.get(RelayLineEvent, event_id)
    try:
        outcome = _handle(settings, json.loads(row.payload))
    except Exception as error:  # noqa: BLE001 - one bad event must not stop the others
        db.session.rollback()
        log.exception("relay: webhook event %s failed", event_id)
        outcome = f"error: {type(error).__name__}"
        row = db.session.get(RelayLineEvent, event_id)
    row.processed_at = utcnow()
    row.outcome = outcome[:200]
    db.session.commit()
    return True


def _handle(settings: ChannelSettings, raw: dict[str, Any]) -> str:
    kind = raw.get("type")
    raw_message = raw.get("message") if isinstance(raw.get("message"), dict) else {}
    try:
        Event.from_dict(raw)
    except (ValueError, TypeError, KeyError) as error:
        # Unknown event types (and unknown message types) land here; so does a malformed one,
        # and so does a known one the SDK finds a field missing from (see the module's doc).
        reason = str(error).split(".", 1)[0][:80]
        if kind not in HANDLED_TYPES or (
            kind == "message" and raw_message.get("type") not in MESSAGE_TYPES
        ):
            log.info("relay: webhook event of type %r ignored (%s)", str(kind)[:32], reason)
            return "ignored: not understood"
        log.info("relay: the SDK refused a %s event (%s); handled from its JSON", kind, reason)
    if kind not in HANDLED_TYPES:
        log.info("relay: webhook event of type %s ignored", str(kind)[:32])
        return f"ignored: {str(kind)[:32]}"
    source = _source_key(raw.get("source"))
    if source is None:
        # webhook.yml makes ``source`` optional on every event and ``userId`` optional on a
        # user source (LINE leaves them out, e.g. for users of other LINE clients): no chat
        # can be told from such an event, which is normal, not an error.
        log.info("relay: a %s event without a usable source ignored", str(kind)[:32])
        return f"ignored: {str(kind)[:32]} without a usable source"
    when = _event_time(raw)
    if kind in ("follow", "join"):
        chat = _chat_for(settings, source, refresh_name=True, when=when)
        applied = _set_reachable(chat, None, when)
        if kind == "join":  # what a push to it costs (cost.py)
            cost.read_member_count(settings, chat, utcnow())
        db.session.commit()
        return f"{kind}: chat {chat.id}" + ("" if applied else STALE)
    if kind in ("unfollow", "leave"):
        chat = _chat_for(settings, source, when=when)
        reason = UNREACHABLE_BLOCKED if kind == "unfollow" else UNREACHABLE_LEFT
        applied = _set_reachable(chat, reason, when)
        db.session.commit()
        return f"{kind}: chat {chat.id} unreachable" + ("" if applied else STALE)
    if kind in ("memberJoined", "memberLeft"):
        chat = _chat_for(settings, source, when=when)
        joined = kind == "memberJoined"
        members = _members(raw.get("joined" if joined else "left"))
        for user_id in members:
            _member(chat, user_id, joined=joined, when=when)
        cost.read_member_count(settings, chat, utcnow())  # the push's price changed
        db.session.commit()
        return f"{kind}: chat {chat.id}, {len(members)}"
    if kind == "unsend":
        return _unsend(settings, source, raw, when)
    return _message(settings, source, raw, raw_message, when)


def _line_id(value: Any) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= MAX_LINE_ID:
        return value
    return None


def _members(field: Any) -> list[str]:
    """The user ids of a memberJoined/memberLeft event's ``joined``/``left`` object."""
    members = field.get("members") if isinstance(field, dict) else None
    if not isinstance(members, list):
        return []
    ids = (_line_id(m.get("userId")) for m in members if isinstance(m, dict))
    return [user_id for user_id in ids if user_id]


def _event_time(raw: dict[str, Any]) -> datetime:
    timestamp = raw.get("timestamp")
    if isinstance(timestamp, int) and timestamp > 0:
        try:
            return datetime.fromtimestamp(timestamp / 1000, UTC)
        except (OverflowError, ValueError, OSError):
            pass
    return utcnow()


def _source_key(source: Any) -> tuple[str, str, str] | None:
    """(LINE id, Notify kind, LINE source type) of an event's raw ``source`` object."""
    if not isinstance(source, dict):
        return None
    source_type = source.get("type")
    if source_type == "user":
        line_id, kind = _line_id(source.get("userId")), ChatKind.USER
    elif source_type == "group":
        line_id, kind = _line_id(source.get("groupId")), ChatKind.GROUP
    elif source_type == "room":
        line_id, kind = _line_id(source.get("roomId")), ChatKind.GROUP
    else:
        return None
    return (line_id, kind, source_type) if line_id else None


def _placeholder_name(line_id: str, source_type: str) -> str:
    label = {"user": "LINE user", "group": "LINE group", "room": "LINE room"}[source_type]
    return f"{label} …{line_id[-6:]}"


def _chat_for(
    settings: ChannelSettings,
    source: tuple[str, str, str],
    *,
    refresh_name: bool = False,
    when: datetime,
) -> RelayChat:
    line_id, kind, source_type = source
    chat = db.session.scalar(select(RelayChat).where(RelayChat.line_id == line_id))
    if chat is None:
        db.session.execute(
            dialect_insert(RelayChat)
            .values(
                kind=kind,
                name=_placeholder_name(line_id, source_type),
                line_id=line_id,
                source_type=source_type,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["line_id"])
        )
        db.session.commit()
        chat = db.session.scalar(select(RelayChat).where(RelayChat.line_id == line_id))
        refresh_name = True
    if refresh_name:
        name = _fetch_name(settings, line_id, source_type)
        if name:
            chat.name = name[:200]
    if chat.last_event_at is None or chat.last_event_at < when:
        chat.last_event_at = when
    return chat


def _fetch_name(settings: ChannelSettings, line_id: str, source_type: str) -> str | None:
    """The user's display name or the group's name from LINE; None when LINE will not say."""
    if source_type == "room":
        return None  # rooms have no name
    try:
        api = messaging_api(settings)
        if source_type == "user":
            return api.get_profile(line_id, _request_timeout=settings.timeout).display_name
        return api.get_group_summary(line_id, _request_timeout=settings.timeout).group_name
    except messaging.ApiException as error:
        log.info("relay: LINE gave no name for a %s (HTTP %s)", source_type, error.status)
    except Exception as error:  # noqa: BLE001 - a name is nice to have, never required
        log.warning("relay: could not read a %s name (%s)", source_type, type(error).__name__)
    return None


def _set_reachable(chat: RelayChat, reason: str | None, when: datetime) -> bool:
    """Record what an event LINE timed ``when`` says of the chat (``reason`` None: reachable),
    unless an event timed later already decided it; True when it did decide.

    LINE does not promise to deliver events in order (it says to order them by
    ``timestamp``), and the after-response step and the worker may handle two events of one
    chat at once, so the latest event by LINE's time wins, not the last one handled: a
    conditional UPDATE on ``reachability_at``. While a chat stays unreachable, the first time
    it became so is kept.
    """
    values: dict[str, Any] = {"reachability_at": when}
    if reason is None:
        values.update(unreachable_at=None, unreachable_reason=None)
    else:
        values.update(
            unreachable_at=func.coalesce(RelayChat.unreachable_at, literal(when, UTCDateTime)),
            unreachable_reason=case(
                (RelayChat.unreachable_at.is_(None), reason), else_=RelayChat.unreachable_reason
            ),
        )
    decided = db.session.execute(
        update(RelayChat)
        .where(
            RelayChat.id == chat.id,
            or_(RelayChat.reachability_at.is_(None), RelayChat.reachability_at <= when),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return decided.rowcount == 1


def _member(chat: RelayChat, user_id: str, *, joined: bool, when: datetime) -> None:
    """Record a member joining or leaving at ``when``, unless the member's last change was
    later by LINE's time (as for reachability: events are ordered by their timestamp)."""
    added = db.session.execute(
        dialect_insert(RelayChatMember)
        .values(
            chat_id=chat.id, line_user_id=user_id, joined_at=when, left_at=None if joined else when
        )
        .on_conflict_do_nothing(index_elements=["chat_id", "line_user_id"])
        .returning(RelayChatMember.line_user_id)
    ).first()
    if added is not None:  # RETURNING, not rowcount: psycopg reads -1 for ON CONFLICT inserts
        return
    last_change = func.coalesce(RelayChatMember.left_at, RelayChatMember.joined_at)
    db.session.execute(
        update(RelayChatMember)
        .where(
            RelayChatMember.chat_id == chat.id,
            RelayChatMember.line_user_id == user_id,
            last_change <= when,
        )
        .values({"joined_at": when, "left_at": None} if joined else {"left_at": when})
        .execution_options(synchronize_session=False)
    )


def _summary(raw_message: dict[str, Any]) -> str:
    kind = raw_message.get("type")
    if kind == "text":
        return str(raw_message.get("text") or "")[:200]
    if kind == "sticker":
        return f"sticker {raw_message.get('packageId')}/{raw_message.get('stickerId')}"[:200]
    if kind == "location":
        title = raw_message.get("title") or raw_message.get("address") or ""
        return f"location {title}".strip()[:200]
    if kind == "file":
        return f"file {raw_message.get('fileName') or ''}".strip()[:200]
    return str(kind)


def _unsent(message_id: Any) -> bool:
    """Whether an ``unsend`` event for this LINE message id is stored."""
    if not isinstance(message_id, str) or not message_id:
        return False
    return (
        db.session.scalar(
            select(RelayLineEvent.id)
            .where(
                RelayLineEvent.line_message_id == message_id,
                RelayLineEvent.event_type == "unsend",
            )
            .limit(1)
        )
        is not None
    )


def _blank_content(raw_message: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in raw_message.items() if k not in CONTENT_FIELDS}
    if "text" in raw_message:
        kept["text"] = ""
    return kept


def _unsend(
    settings: ChannelSettings, source: tuple[str, str, str], raw: dict[str, Any], when: datetime
) -> str:
    """Blank what the relay stored of a message its sender took back."""
    detail = raw.get("unsend") if isinstance(raw.get("unsend"), dict) else {}
    message_id = detail.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        return "ignored: unsend without a message id"
    chat = _chat_for(settings, source, when=when)
    blanked = 0
    rows = db.session.scalars(
        select(RelayLineEvent).where(
            RelayLineEvent.line_message_id == message_id, RelayLineEvent.event_type == "message"
        )
    ).all()
    for row in rows:
        stored = json.loads(row.payload)
        if isinstance(stored.get("message"), dict):
            stored["message"] = _blank_content(stored["message"])
        row.payload = json.dumps(stored, ensure_ascii=False)
        blanked += 1
        if chat.last_message_at is not None and chat.last_message_at == _event_time(stored):
            chat.last_message_type = UNSENT
            chat.last_message_summary = ""
    db.session.commit()
    return f"unsend: chat {chat.id}, {blanked} blanked"


def _message(
    settings: ChannelSettings,
    source: tuple[str, str, str],
    raw: dict[str, Any],
    raw_message: dict[str, Any],
    when: datetime,
) -> str:
    chat = _chat_for(settings, source, when=when)
    sender = raw.get("source", {}).get("userId") if source[2] != "user" else None
    if _line_id(sender):
        # A message in a group or room shows its sender is a member there (LINE sends the
        # sender's id when the member consented): the consent page offers them the group.
        _member(chat, sender, joined=True, when=when)
    message_type = str(raw_message.get("type") or "")[:16]
    if _unsent(raw_message.get("id")):
        # Its unsend came first: keep nothing of it (the stored event is blanked too).
        row = db.session.scalar(
            select(RelayLineEvent).where(
                RelayLineEvent.line_message_id == raw_message.get("id"),
                RelayLineEvent.event_type == "message",
            )
        )
        if row is not None:
            row.payload = json.dumps({**raw, "message": _blank_content(raw_message)})
        raw_message = _blank_content(raw_message)
        message_type = UNSENT
    if chat.last_message_at is None or chat.last_message_at <= when:
        chat.last_message_type = message_type
        chat.last_message_summary = _summary(raw_message) if message_type != UNSENT else ""
        chat.last_message_at = when
    # A message from a chat the relay thought unreachable proves it is reachable again.
    _set_reachable(chat, None, when)
    db.session.commit()
    outcome = f"message {message_type}: chat {chat.id}"
    if raw_message.get("type") != "text":
        return outcome
    code = pairing.normalize_code(str(raw_message.get("text") or ""))
    if code is None:
        return outcome
    matched = pairing.match_code(code, chat, now=utcnow())
    if matched is None:
        return outcome + ", code not pending"
    reply_token = raw.get("replyToken")
    if raw.get("mode") != "standby" and isinstance(reply_token, str) and reply_token:
        if matched.client is not None:
            text = _(
                "This chat can now be connected to %(service)s. Go back to the page and press "
                "“Agree and connect”.",
                service=matched.client.name,
            )
        else:  # My page's pairing: no service yet
            text = _(
                "This chat can now be added to your list. Go back to the page and press "
                "“Add this chat”."
            )
        _reply(settings, reply_token, text)
    return outcome + ", pairing matched"


def _reply(settings: ChannelSettings, reply_token: str, text: str) -> None:
    """Answer in the chat (replies are free); a failure only costs the confirmation."""
    try:
        messaging_api(settings).reply_message(
            messaging.ReplyMessageRequest(
                reply_token=reply_token, messages=[messaging.TextMessage(text=text)]
            ),
            _request_timeout=settings.timeout,
        )
    except messaging.ApiException as error:
        log.warning("relay: LINE refused the reply (HTTP %s)", error.status)
    except Exception as error:  # noqa: BLE001
        log.warning("relay: could not reply in the chat (%s)", type(error).__name__)
