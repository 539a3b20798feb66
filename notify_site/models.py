"""The site's tables, as typed SQLAlchemy 2.0 models. No business logic lives here.

The relay keeps its own tables in :mod:`notify_site.relay.models`; the site never reads them.

Past 400 lines on purpose: declarations only, one table per class; models carry no logic.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from notify_site.db_types import UTCDateTime, utcnow
from notify_site.extensions import db


def new_session_epoch() -> str:
    """A fresh random session epoch (see :attr:`User.session_epoch`)."""
    return secrets.token_urlsafe(16)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    # None for an account made by signing in with LINE: it signs in only with LINE until a
    # password is set (services/line_accounts.py keeps it from losing its last way in).
    password_hash: Mapped[str | None] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The person's language (a code of notify_site.i18n.LANGUAGES) and IANA time zone; None
    # means "from the browser" and "the language's default zone" (notify_site/i18n.py).
    locale: Mapped[str | None] = mapped_column(String(16), default=None)
    timezone: Mapped[str | None] = mapped_column(String(64), default=None)
    # When an admin disabled the account: it cannot sign in and its API keys are refused.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Part of every session's user id ("<id>:<epoch>", see get_id): a new value ends every
    # session signed in before it (sign-out, a password change, disabling). Random rather than
    # a counter, so that a row id SQLite hands out again after a deletion never matches a
    # cookie of the deleted account.
    session_epoch: Mapped[str] = mapped_column(String(32), default=new_session_epoch)
    # The LINE account linked for "Sign in with LINE" (the ID token's ``sub``: one user id per
    # LINE provider), at most one account each; and whether that person was a friend of the
    # bot when last seen signing in (None: never asked).
    line_user_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    line_friend: Mapped[bool | None] = mapped_column(default=None)

    connections: Mapped[list[Connection]] = relationship(back_populates="owner")

    def get_id(self) -> str:
        """What Flask-Login keeps in the session: the row id and the session epoch."""
        return f"{self.id}:{self.session_epoch}"

    @property
    def is_active(self) -> bool:
        """Flask-Login's flag: a disabled account cannot sign in."""
        return self.disabled_at is None

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username!r}>"


class AccountAction:
    """What an :class:`AccountEvent` records."""

    DISABLED = "disabled"
    ENABLED = "enabled"
    MADE_ADMIN = "made_admin"
    ADMIN_REMOVED = "admin_removed"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - an event name, not a password
    PASSWORD_SET = "password_set"  # noqa: S105 - an event name, not a password
    DELETED = "deleted"
    LINE_LINKED = "line_linked"
    LINE_UNLINKED = "line_unlinked"
    #: An account made by signing in with LINE.
    CREATED_WITH_LINE = "created_with_line"


class AccountEvent(db.Model):
    """One change to an account, kept for the admins' audit.

    It outlives the account it names (no foreign key: a deleted account's events stay, with
    the name it had), and holds names and figures, never a secret. ``actor_id`` is None when
    the change came from the command line.
    """

    __tablename__ = "account_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int] = mapped_column()
    username: Mapped[str] = mapped_column(String(64))
    actor_id: Mapped[int | None] = mapped_column()
    actor_username: Mapped[str | None] = mapped_column(String(64))
    # Figures about the change as JSON, e.g. what a deletion removed: {"connections": 2, ...}.
    detail: Mapped[str | None] = mapped_column(String(300))


class ConnectionStatus:
    """The states a connection can be in."""

    ACTIVE = "active"
    REVOKED = "revoked"
    ERROR = "error"
    #: The token is sound but the chat blocked the bot or removed it from the group (the
    #: relay's 401 with ``"reason": "chat_unreachable"``). The token is kept: a successful
    #: status call (Refresh) once the chat is back makes the connection active again.
    UNREACHABLE = "unreachable"


class Connection(db.Model):
    """One connected LINE chat: an encrypted Notify access token and what we know about it."""

    __tablename__ = "connections"
    __table_args__ = (
        Index("ix_connections_owner_label", "owner_id", "label"),
        # The admin list: lowest remaining first, unknown (NULL) last, in pages; and the
        # same order within one status (its filter, and counts by status).
        Index("ix_connections_rate_remaining", "rate_remaining", "id"),
        Index("ix_connections_status_remaining", "status", "rate_remaining", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(64))
    # "<key-id>$<fernet token>" from the key ring; bound to this row's id (see crypto.py).
    # Empty only inside the transaction that creates the row and encrypts the token.
    token_ciphertext: Mapped[str] = mapped_column(Text, default="")
    target_name: Mapped[str | None] = mapped_column(String(200))
    target_type: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=ConnectionStatus.ACTIVE)
    # In English, with the code and parameters pages translate from (notify_site/stored_text.py).
    status_detail: Mapped[str | None] = mapped_column(String(300))
    status_detail_code: Mapped[str | None] = mapped_column(String(32))
    status_detail_params: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    # The last X-RateLimit snapshot the Notify server sent for this token.
    rate_limit: Mapped[int | None]
    rate_remaining: Mapped[int | None]
    rate_image_limit: Mapped[int | None]
    rate_image_remaining: Mapped[int | None]
    rate_reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rate_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Which call produced the snapshot: "status", "notify", ...
    rate_checked_by: Mapped[str | None] = mapped_column(String(16))
    # The Notify server's monthly LINE message budget, when it reports one (the built-in
    # relay's X-LineQuota-* extension headers); None from a plain Notify server.
    line_quota_limit: Mapped[int | None]
    line_quota_remaining: Mapped[int | None]
    line_quota_reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A revoked connection its owner removed from the lists: the row stays, so its
    # notifications stay in the history (issue 20).
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The worker delivering this connection's notifications holds this lease: one worker at a
    # time per connection, so its messages go out in order and its quota is never raced for.
    delivery_lease_token: Mapped[str | None] = mapped_column(String(36))
    delivery_lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    owner: Mapped[User] = relationship(back_populates="connections")

    @property
    def is_active(self) -> bool:
        return self.status == ConnectionStatus.ACTIVE

    def __repr__(self) -> str:
        # Never the token, not even encrypted.
        return f"<Connection {self.id} {self.label!r} {self.status}>"


class OAuthState(db.Model):
    """A pending connect flow, keyed by the hash of its OAuth ``state``.

    The browser holds the state in its session too; the callback needs both. The row is
    consumed atomically, so a state works once, and it expires after ``OAUTH_STATE_TTL``.
    """

    __tablename__ = "oauth_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(64))
    # The PKCE verifier, encrypted with the key ring and bound to this state.
    verifier_ciphertext: Mapped[str] = mapped_column(Text)
    redirect_uri: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LineLoginState(db.Model):
    """A pending "Sign in with LINE" flow, keyed by the hash of its ``state``.

    As :class:`OAuthState`: the browser's session holds the hash too, the callback needs both,
    the row is consumed atomically (a state works once) and expires after
    ``OAUTH_STATE_TTL``. ``user_id`` is set when a signed-in person links LINE from Settings.
    The nonce and the PKCE verifier are encrypted together, bound to the state.
    """

    __tablename__ = "line_login_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    secrets_ciphertext: Mapped[str] = mapped_column(Text)
    redirect_uri: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiKey(db.Model):
    """A key for the JSON API. Only the SHA-256 of the key is kept; the key is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    # The first characters of the key ("nsk_AbCd…"), so people can tell their keys apart.
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Updated at most once a minute (a write per request would slow the API down); the
    # volume a key sent is counted from notifications.api_key_id.
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    owner: Mapped[User] = relationship()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def __repr__(self) -> str:
        return f"<ApiKey {self.id} {self.prefix}…>"


class ApiKeyReveal(db.Model):
    """A new API key waiting to be shown once, on the page its creation redirects to.

    The key is encrypted with the key ring, bound to this row; the browser's session holds only
    the random slot id whose SHA-256 is ``slot_hash``. The first read deletes the row, and an
    unread one is useless after ``expires_at`` (services/api_keys.py).
    """

    __tablename__ = "api_key_reveals"

    slot_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_ciphertext: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class NotificationStatus:
    #: Sent later: waits for ``next_attempt_at`` (its send time) and may still be cancelled.
    #: Once due it is claimed like a queued row; a claimed row is no longer cancellable.
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"
    #: A scheduled notification its owner cancelled before a worker took it.
    CANCELLED = "cancelled"
    #: The Notify server accepted it but has not delivered it yet (its 200 said
    #: ``"delivery": "pending"``, an extension of this site's relay): the worker follows it by
    #: ``remote_message_id`` until it is delivered or refused (services/remote_pending.py).
    AT_SERVER = "at_server"

    PENDING = (SCHEDULED, QUEUED, SENDING)
    TERMINAL = (DELIVERED, FAILED, CANCELLED)
    ALL = (*PENDING, AT_SERVER, *TERMINAL)


class NotificationImage(db.Model):
    """An uploaded image, shared by the notifications of one send to several chats."""

    __tablename__ = "notification_images"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notification(db.Model):
    """One message to one connection: a row of the transactional outbox (SPEC 4.4).

    A worker claims it by writing a fresh ``lease_token`` and ``lease_expires_at``; it may
    finish the row only while that token is still the row's (the fencing token), so a worker
    presumed dead cannot overwrite a newer attempt.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_due", "status", "next_attempt_at"),
        Index("ix_notifications_connection_status", "connection_id", "status"),
        # A user's notifications by time; with the status in the index, the dashboard's
        # hourly counts are read from the index alone.
        Index("ix_notifications_owner_created", "owner_id", "created_at", "status"),
        # The admin's recent failures and its hourly chart of deliveries and failures.
        Index("ix_notifications_status_finished", "status", "finished_at"),
        # A person's scheduled notifications by send time (the Scheduled page, the dashboard).
        Index("ix_notifications_owner_status_due", "owner_id", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    api_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), index=True
    )
    message: Mapped[str] = mapped_column(Text)
    sticker_package_id: Mapped[int | None]
    sticker_id: Mapped[int | None]
    image_thumbnail_url: Mapped[str | None] = mapped_column(String(2000))
    image_fullsize_url: Mapped[str | None] = mapped_column(String(2000))
    image_id: Mapped[int | None] = mapped_column(
        ForeignKey("notification_images.id", ondelete="SET NULL"), index=True
    )
    notification_disabled: Mapped[bool] = mapped_column(default=False)

    status: Mapped[str] = mapped_column(String(16), default=NotificationStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    # In English, with the code and parameters pages translate from (notify_site/stored_text.py).
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_error_code: Mapped[str | None] = mapped_column(String(32))
    last_error_params: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    last_status_code: Mapped[int | None]
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_token: Mapped[str | None] = mapped_column(String(36))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When it was asked to go: a send-later time, or the schedule occurrence it was queued
    # for; None for "now". Unlike next_attempt_at it does not move with retries.
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The occurrence of a recurring schedule that queued it (services/schedules).
    occurrence_id: Mapped[int | None] = mapped_column(
        ForeignKey("schedule_occurrences.id", ondelete="SET NULL"), index=True
    )
    # The Notify server's id for it, when the server answered "pending" (status at_server).
    remote_message_id: Mapped[str | None] = mapped_column(String(64))

    connection: Mapped[Connection] = relationship()
    image: Mapped[NotificationImage | None] = relationship()

    def __repr__(self) -> str:
        return f"<Notification {self.id} → {self.connection_id} {self.status}>"


class DeliveryAttempt(db.Model):
    """One call to the Notify API for one notification, kept for the record.

    Written *before* the call, in a commit of its own, with ``outcome`` NULL; finished after
    it (notify_site/services/attempts.py). So a worker killed during the call still leaves its
    attempt behind: the next claim of the row marks it ``interrupted`` (no answer recorded).
    """

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    # An OutcomeKind, or "interrupted"; NULL while the call is in flight.
    outcome: Mapped[str | None] = mapped_column(String(16))
    status_code: Mapped[int | None]
    # As Notification.last_error: English, code and parameters.
    error: Mapped[str | None] = mapped_column(String(500))
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_params: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    worker: Mapped[str | None] = mapped_column(String(64))
    # The fencing token of the claim that made the call: while the notification still carries
    # it under a live lease, an unfinished attempt is in flight rather than interrupted.
    lease_token: Mapped[str | None] = mapped_column(String(36))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # NULL while in flight, and for an interrupted attempt (nobody saw it end).
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotencyRecord(db.Model):
    """The first answer to a POST with an ``Idempotency-Key``, replayed for repeats."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("api_key_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


# ---------------------------------------------------------------------------- webhooks


class WebhookFormat:
    """What an incoming webhook reads (notify_site/services/webhooks/formats.py)."""

    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"
    UPTIME_KUMA = "uptime-kuma"
    GENERIC = "generic"
    TEXT = "text"

    ALL = (ALERTMANAGER, GRAFANA, UPTIME_KUMA, GENERIC, TEXT)


webhook_connections = db.Table(
    "webhook_connections",
    db.Column("webhook_id", ForeignKey("webhooks.id", ondelete="CASCADE"), primary_key=True),
    db.Column(
        "connection_id",
        ForeignKey("connections.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)


class Webhook(db.Model):
    """An incoming webhook: a URL other tools post their alerts to, and where they go.

    The URL's secret is kept only as its SHA-256 (like an API key's); it is shown once.
    ``template`` is the person's own Jinja2 template, None for the format's built-in message.
    """

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64))
    template: Mapped[str | None] = mapped_column(Text)
    # The language of the built-in messages' words ("FIRING", "and 3 more"): a code of
    # notify_site.i18n.LANGUAGES.
    locale: Mapped[str] = mapped_column(String(16), default="en")
    # Repeats of one alert group in one state within this many seconds queue once; 0: never.
    dedupe_seconds: Mapped[int] = mapped_column(default=300)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    connections: Mapped[list[Connection]] = relationship(
        secondary=webhook_connections, order_by="Connection.label"
    )

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None

    def __repr__(self) -> str:
        return f"<Webhook {self.id} {self.name!r} {self.format}>"


class WebhookOutcome:
    """What became of one post to a webhook."""

    QUEUED = "queued"
    DUPLICATE = "duplicate"  # the same group in the same state within the window
    INVALID = "invalid"  # the format could not read it (400)
    REFUSED = "refused"  # paused, or no chat could receive it (409)

    ALL = (QUEUED, DUPLICATE, INVALID, REFUSED)


class WebhookDelivery(db.Model):
    """One post a webhook received, for its history: what it became and the text it sent."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # A webhook's history, newest first (and the pruning of its oldest rows).
        Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16))
    # The rendered message (queued and duplicate posts).
    text: Mapped[str | None] = mapped_column(Text)
    # Why it was refused or not read, or a note (the person's template failed on this post):
    # in English, with the code and parameters pages translate from (notify_site/stored_text.py).
    detail: Mapped[str | None] = mapped_column(String(500))
    detail_code: Mapped[str | None] = mapped_column(String(32))
    detail_params: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    # The notifications it queued, as a JSON list of ids (a duplicate: the first post's).
    notification_ids: Mapped[str | None] = mapped_column(String(500))
    # A duplicate: the delivery that queued the group's state first.
    duplicate_of: Mapped[int | None]
    # A post made by "Send test" on the webhook's page, with the format's sample.
    test: Mapped[bool] = mapped_column(default=False)


class WebhookDedupe(db.Model):
    """The last state queued for one alert group of a webhook, and until when a repeat of it
    queues nothing (notify_site/services/webhooks/receive.py).

    The primary key decides between concurrent repeats: each post inserts or conditionally
    updates this row before it writes anything else.
    """

    __tablename__ = "webhook_dedupe"

    webhook_id: Mapped[int] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), primary_key=True
    )
    # SHA-256 of the format's group key (Alertmanager's groupKey, a monitor id...).
    group_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # SHA-256 of the group's state (status and each alert's fingerprint and status).
    state_hash: Mapped[str] = mapped_column(String(64))
    delivery_id: Mapped[int]
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ScheduleStatus:
    ACTIVE = "active"
    PAUSED = "paused"
    #: The rule has no occurrence left (its end, or its COUNT, was reached).
    FINISHED = "finished"


#: The chats a schedule sends to. A deleted connection leaves its schedules (they send to
#: the chats they still have).
schedule_connections = Table(
    "schedule_connections",
    db.metadata,
    Column("schedule_id", ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "connection_id",
        ForeignKey("connections.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)


class Schedule(db.Model):
    """A recurring send: a message, the chats it goes to, and an RFC 5545 RRULE in a time zone.

    The rule is expanded in the zone's wall time from ``starts_local`` (a naive wall time in
    ``timezone``), so a daily 09:00 stays 09:00 across daylight-saving changes
    (notify_site/services/schedules/recurrence.py). ``next_run_at`` is the next occurrence not
    yet handled, in UTC; the worker's scheduler job claims due schedules with a lease (the
    shared outbox machinery) and records every occurrence once in :class:`ScheduleOccurrence`.
    """

    __tablename__ = "schedules"
    __table_args__ = (
        # The scheduler job: active schedules whose next occurrence is due.
        Index("ix_schedules_due", "status", "next_run_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # The RRULE's value without DTSTART, e.g. "FREQ=WEEKLY;BYDAY=MO,FR;BYHOUR=9;BYMINUTE=0".
    rrule: Mapped[str] = mapped_column(String(500))
    timezone: Mapped[str] = mapped_column(String(64))
    # Wall times in ``timezone`` (naive on purpose: "09:00 in Tokyo", not an instant).
    starts_local: Mapped[datetime] = mapped_column(DateTime)
    ends_local: Mapped[datetime | None] = mapped_column(DateTime)
    message: Mapped[str] = mapped_column(Text)
    sticker_package_id: Mapped[int | None]
    sticker_id: Mapped[int | None]
    image_thumbnail_url: Mapped[str | None] = mapped_column(String(2000))
    image_fullsize_url: Mapped[str | None] = mapped_column(String(2000))
    notification_disabled: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default=ScheduleStatus.ACTIVE)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_token: Mapped[str | None] = mapped_column(String(36))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    connections: Mapped[list[Connection]] = relationship(
        secondary=schedule_connections, order_by="Connection.label"
    )

    def __repr__(self) -> str:
        return f"<Schedule {self.id} {self.name!r} {self.status}>"


class OccurrenceStatus:
    #: Its notifications were queued.
    QUEUED = "queued"
    #: Missed while nothing ran, and older than the catch-up age when a worker came back.
    SKIPPED = "skipped"
    #: Due, but none of the schedule's chats could receive it.
    NOT_SENT = "not_sent"


class ScheduleOccurrence(db.Model):
    """One occurrence of a schedule, handled: its unique key (schedule, time) is what makes
    every occurrence queue once, however many workers run and however often they restart."""

    __tablename__ = "schedule_occurrences"
    __table_args__ = (UniqueConstraint("schedule_id", "occurs_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    occurs_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    handled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
