"""The relay's tables, as typed SQLAlchemy 2.0 models. No business logic lives here.

Every table name starts with ``relay_``: the relay is a second house on the lot and shares the
database, never the site's tables. Secrets (client secrets, authorization codes, access tokens)
are stored only as SHA-256 hex digests.

Rows that belong to a person (a private sandbox chat, a LINE chat someone paired, a token, a
pairing) keep the accounts port's person id (``relay/accounts.py``) in a plain integer column,
with no foreign key into the site's tables: the relay reads no account table.

Past 400 lines on purpose: one idea, the relay's tables (declarations only; the quota's
tables already live in quota_models.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from notify_site.db_types import UTCDateTime, utcnow
from notify_site.extensions import db


class ChatKind:
    """What a chat is, as LINE Notify's ``targetType`` names it."""

    USER = "USER"
    GROUP = "GROUP"


class RelayClient(db.Model):
    """A service registered with the relay (an OAuth client)."""

    __tablename__ = "relay_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    # Compared exactly, character for character, with the redirect_uri of every request.
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<RelayClient {self.client_id} {self.name!r}>"


class RelayChat(db.Model):
    """A chat messages can be delivered to: a 1-on-1 chat (USER) or a group (GROUP).

    Sandbox chats have no ``line_id``: each person has their own (``owner_id``), unique by
    owner, kind and name. Chats learned from a LINE channel (Messaging API mode) carry their
    LINE user/group id and no owner: the people who paired them are in ``relay_chat_people``.
    """

    __tablename__ = "relay_chats"
    __table_args__ = (
        # Also the index of "this person's sandbox chats" (owner_id leads).
        Index(
            "uq_relay_chats_sandbox_owner_kind_name",
            "owner_id",
            "kind",
            "name",
            unique=True,
            sqlite_where=text("line_id IS NULL"),
            postgresql_where=text("line_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(200))
    line_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # A sandbox chat's person (the accounts port's id). None on LINE chats, and on sandbox
    # chats made before chats were private when the site had no admin to give them to.
    owner_id: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Channel mode: "user", "group" or "room" (LINE's source types; a room is a GROUP to Notify).
    source_type: Mapped[str | None] = mapped_column(String(8))
    # Set when the user blocked the bot or the bot left the group; cleared when it comes back.
    unreachable_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unreachable_reason: Mapped[str | None] = mapped_column(String(200))
    # LINE's time of the event that last decided reachability (follow, join, a message: yes;
    # unfollow, leave: no). An older event handled later changes nothing: LINE does not
    # promise order, and the webhook's after-response step and the worker may handle events
    # of one chat at once (relay/line/events.py).
    reachability_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the chat last sent the bot (any message type), for the relay's admin page.
    last_message_type: Mapped[str | None] = mapped_column(String(16))
    last_message_summary: Mapped[str | None] = mapped_column(String(200))
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A group's or room's member count from LINE (what a push to it costs), and when it was
    # read; None until read, and after memberJoined/memberLeft/join (relay/line/cost.py).
    member_count: Mapped[int | None]
    member_count_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def reachable(self) -> bool:
        return self.unreachable_at is None

    def __repr__(self) -> str:
        return f"<RelayChat {self.id} {self.kind} {self.name!r}>"


class RelayChatPerson(db.Model):
    """A person who paired a LINE chat (channel mode): they may connect it and read its inbox.

    A group can be paired by several of its members; each sees what was delivered there, as
    each of them would in LINE.
    """

    __tablename__ = "relay_chat_people"
    __table_args__ = (UniqueConstraint("chat_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("relay_chats.id", ondelete="CASCADE"))
    # "This person's LINE chats" (My page, the consent page, the inbox).
    person_id: Mapped[int] = mapped_column(index=True)
    paired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<RelayChatPerson chat={self.chat_id} person={self.person_id}>"


class RelayAuthorizationCode(db.Model):
    """A single-use authorization code, bound to a client, a redirect URI and a chat."""

    __tablename__ = "relay_authorization_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_pk: Mapped[int] = mapped_column(
        ForeignKey("relay_clients.id", ondelete="CASCADE"), index=True
    )
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    chat_id: Mapped[int] = mapped_column(ForeignKey("relay_chats.id", ondelete="CASCADE"))
    # Who consented: the token exchanged for this code is theirs.
    person_id: Mapped[int | None]
    # PKCE (RFC 7636), when the client sent a challenge.
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(8))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set exactly once, by a conditional UPDATE: the first exchange wins.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[RelayClient] = relationship()
    chat: Mapped[RelayChat] = relationship()

    def __repr__(self) -> str:
        return f"<RelayAuthorizationCode {self.id} client={self.client_pk}>"


class RelayAccessToken(db.Model):
    """An access token (no expiry, as LINE's) and its rate-limit window.

    Issued to a service through OAuth (``client_pk``), or a **personal access token** a person
    generated on My page (no client; ``name`` is what its messages are prefixed with, as the
    service's name is for the others). ``person_id`` is whose token it is: who consented, or
    who generated it.

    The window columns are updated only by conditional UPDATEs (see ``ratelimit.py``), so that
    several processes sharing the database never admit more calls than the limit.
    """

    __tablename__ = "relay_access_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_pk: Mapped[int | None] = mapped_column(
        ForeignKey("relay_clients.id", ondelete="CASCADE"), index=True
    )
    # A personal token's name (None for a service's token: the service's name is used).
    name: Mapped[str | None] = mapped_column(String(100))
    chat_id: Mapped[int] = mapped_column(ForeignKey("relay_chats.id", ondelete="CASCADE"))
    # The accounts port's person id; None only for tokens issued before tokens had owners
    # on a site with no admin to give them to. Indexed for My page's list.
    person_id: Mapped[int | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by the same UPDATE that spends a call (ratelimit.spend_call): no extra write.
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The current rate-limit window: None until the first counted call.
    window_reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    calls_used: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    images_used: Mapped[int] = mapped_column(default=0, server_default=text("0"))

    client: Mapped[RelayClient | None] = relationship()
    chat: Mapped[RelayChat] = relationship()

    def __repr__(self) -> str:
        # Never the token, not even its hash.
        return f"<RelayAccessToken {self.id} client={self.client_pk} chat={self.chat_id}>"


class RelayImage(db.Model):
    """An image uploaded with ``imageFile``, served back at ``/relay/images/<public_id>``.

    The URL carries a random ``public_id``, never the row id, so image URLs cannot be counted
    through; who may fetch one is decided in ``relay/inbox.py``.
    """

    __tablename__ = "relay_images"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<RelayImage {self.id} {self.content_type} {self.size}B>"


class RelayMessage(db.Model):
    """One notification delivered into the sandbox inbox."""

    __tablename__ = "relay_messages"
    __table_args__ = (Index("ix_relay_messages_chat_id_id", "chat_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("relay_chats.id", ondelete="CASCADE"))
    client_pk: Mapped[int | None] = mapped_column(
        ForeignKey("relay_clients.id", ondelete="SET NULL")
    )
    # The sending service's name as it was when the message arrived.
    client_name: Mapped[str] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text)
    sticker_package_id: Mapped[int | None]
    sticker_id: Mapped[int | None]
    image_thumbnail_url: Mapped[str | None] = mapped_column(String(2000))
    image_fullsize_url: Mapped[str | None] = mapped_column(String(2000))
    image_id: Mapped[int | None] = mapped_column(ForeignKey("relay_images.id", ondelete="SET NULL"))
    notification_disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    chat: Mapped[RelayChat] = relationship()
    image: Mapped[RelayImage | None] = relationship()

    def __repr__(self) -> str:
        return f"<RelayMessage {self.id} chat={self.chat_id}>"


class RelayChatMember(db.Model):
    """A member of a LINE group or room, as ``memberJoined`` / ``memberLeft`` told the relay."""

    __tablename__ = "relay_chat_members"
    __table_args__ = (
        UniqueConstraint("chat_id", "line_user_id"),
        # A person linked to LINE: the groups they are in (relay/line/linked.py).
        Index("ix_relay_chat_members_line_user_id", "line_user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("relay_chats.id", ondelete="CASCADE"))
    line_user_id: Mapped[str] = mapped_column(String(64))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<RelayChatMember chat={self.chat_id} left={self.left_at is not None}>"


class RelayLineEvent(db.Model):
    """One webhook event as LINE sent it, stored before it is processed.

    ``webhook_event_id`` is unique: a redelivered event (or a duplicate) finds its row and is
    only counted. Processing claims a row with a conditional UPDATE on ``claimed_until``, so
    the after-response step and the worker never both handle one event.
    """

    __tablename__ = "relay_line_events"
    __table_args__ = (Index("ix_relay_line_events_pending", "processed_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_event_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(32))
    source_type: Mapped[str | None] = mapped_column(String(8))
    source_id: Mapped[str | None] = mapped_column(String(64))
    # LINE's event time in milliseconds (unchanged on redelivery).
    event_timestamp: Mapped[int | None] = mapped_column(BigInteger)
    is_redelivery: Mapped[bool] = mapped_column(default=False)
    # How many more times the same event arrived after the first.
    duplicates: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(200))
    # A message event's ``message.id``: what a later ``unsend`` event names (events.py).
    line_message_id: Mapped[str | None] = mapped_column(String(64), index=True)

    def __repr__(self) -> str:
        return f"<RelayLineEvent {self.id} {self.event_type}>"


class RelayPairing(db.Model):
    """A one-time code on a consent page, waiting to be sent to the bot from a chat.

    The code (short, typed by a person) and the page's polling secret are stored hashed.
    """

    __tablename__ = "relay_pairings"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    poll_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The consent page's service; None for a pairing started on My page.
    client_pk: Mapped[int | None] = mapped_column(
        ForeignKey("relay_clients.id", ondelete="CASCADE"), index=True
    )
    # Who started it: the chat is paired to this person when they confirm.
    person_id: Mapped[int | None]
    chat_id: Mapped[int | None] = mapped_column(ForeignKey("relay_chats.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    matched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    client: Mapped[RelayClient | None] = relationship()
    chat: Mapped[RelayChat | None] = relationship()

    def __repr__(self) -> str:
        return f"<RelayPairing {self.id} chat={self.chat_id}>"


class PushStatus:
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    #: Rides in another push's request (``packed_into_id``); finished with it.
    PACKED = "packed"


class RelayPush(db.Model):
    """One Messaging API push for one accepted notification: the relay's outbox row.

    ``retry_key`` is generated with the row, before the first attempt, and sent on every
    attempt, so LINE executes the push at most once (a repeat answers 409). A worker claims it
    with a lease and a fencing token, as the site's notifications are
    (notify_site/relay/line/push.py).
    """

    __tablename__ = "relay_pushes"
    __table_args__ = (Index("ix_relay_pushes_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("relay_messages.id", ondelete="CASCADE"), unique=True
    )
    chat_id: Mapped[int] = mapped_column(ForeignKey("relay_chats.id", ondelete="CASCADE"))
    to_id: Mapped[str] = mapped_column(String(64))
    retry_key: Mapped[str] = mapped_column(String(36), unique=True)
    status: Mapped[str] = mapped_column(String(12), default=PushStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The claim that holds the push (a fencing token: only it may write the outcome) and until
    # when (notify_site/outbox.py).
    lease_token: Mapped[str | None] = mapped_column(String(36))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    # X-Line-Request-Id of the last attempt; on a 409, x-line-accepted-request-id.
    line_request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The id the Notify API's answer names the message by (``messageId``, an extension) and
    # the token's holder reads its outcome with (``GET /relay/api/messages/<id>``).
    public_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    # When the give-up clock started, if not at ``created_at``: the end of a monthly-limit
    # pause (LINE refused the push, so it sent nothing under its retry key).
    retry_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when LINE refused the push for its image: the text (and sticker) then go without it,
    # under a fresh retry key (the refusal sent nothing), and this says why.
    image_error: Mapped[str | None] = mapped_column(String(500))

    # Packing (issue 15): a push that rides in another push's request points at it, fixed
    # before that request's first attempt; it is never claimed alone (status "packed").
    packed_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("relay_pushes.id", ondelete="SET NULL"), index=True
    )

    message: Mapped[RelayMessage] = relationship()
    chat: Mapped[RelayChat] = relationship()

    def __repr__(self) -> str:
        return f"<RelayPush {self.id} {self.status} attempts={self.attempts}>"


class RelayLineToken(db.Model):
    """A v2.1 channel access token the relay issued, encrypted with the site's key ring."""

    __tablename__ = "relay_line_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    # LINE's key_id for the token (used to list and revoke), not a secret.
    key_id: Mapped[str | None] = mapped_column(String(64))
    token_ciphertext: Mapped[str] = mapped_column(Text, default="")
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<RelayLineToken {self.id} expires={self.expires_at:%Y-%m-%d}>"


class RelayLineChannel(db.Model):
    """One row per LINE channel: which process is issuing its v2.1 token now (a lease).

    Processes that find the token due race for this row with a conditional UPDATE; the one
    that wins issues, the others wait for its token (``channel.access_token``).
    """

    __tablename__ = "relay_line_channels"

    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    issuing_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A random id of the process holding the lease: only it may release the lease.
    issuing_by: Mapped[str | None] = mapped_column(String(32))
    # The monthly-limit pause (relay/line/monthly_limit.py): since when LINE refuses pushes for
    # the month's limit (None: not paused), when the quota is read again, how many re-checks
    # and refused pushes the pause has cost so far.
    monthly_limit_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    monthly_limit_recheck_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    monthly_limit_checks: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    monthly_limit_refusals: Mapped[int] = mapped_column(default=0, server_default=text("0"))

    # LINE's monthly quota as last read (relay/quota.py): its limit (None: no limit), the
    # month-to-date consumption, and when; quota_checked_at None asks for a fresh read.
    quota_limit: Mapped[int | None]
    quota_used: Mapped[int | None]
    quota_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<RelayLineChannel {self.channel_id} issuing_until={self.issuing_until}>"


# The quota's tables (ledger, budgets, notices) live in their own module; importing it here
# registers them wherever the relay's models are imported.
from notify_site.relay import quota_models  # noqa: E402, F401
