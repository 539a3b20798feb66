"""The site's tables, as typed SQLAlchemy 2.0 models. No business logic lives here.

The relay keeps its own tables in :mod:`notify_site.relay.models`; the site never reads them.
"""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from notify_site.db_types import UTCDateTime, utcnow
from notify_site.extensions import db


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    connections: Mapped[list[Connection]] = relationship(back_populates="owner")

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username!r}>"


class ConnectionStatus:
    """The states a connection can be in."""

    ACTIVE = "active"
    REVOKED = "revoked"
    ERROR = "error"


class Connection(db.Model):
    """One connected LINE chat: an encrypted Notify access token and what we know about it."""

    __tablename__ = "connections"
    __table_args__ = (Index("ix_connections_owner_label", "owner_id", "label"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(64))
    # "<key-id>$<fernet token>" from the key ring; bound to this row's id (see crypto.py).
    # Empty only inside the transaction that creates the row and encrypts the token.
    token_ciphertext: Mapped[str] = mapped_column(Text, default="")
    target_name: Mapped[str | None] = mapped_column(String(200))
    target_type: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=ConnectionStatus.ACTIVE)
    status_detail: Mapped[str | None] = mapped_column(String(300))
    # The last X-RateLimit snapshot the Notify server sent for this token.
    rate_limit: Mapped[int | None]
    rate_remaining: Mapped[int | None]
    rate_image_limit: Mapped[int | None]
    rate_image_remaining: Mapped[int | None]
    rate_reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rate_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Which call produced the snapshot: "status", "notify", ...
    rate_checked_by: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

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
