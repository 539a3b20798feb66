"""Queueing notifications: validation, scoping, and the write to the outbox.

A request only validates, writes the notification rows (one per target connection) and
commits; the workers (:mod:`notify_site.worker`) call the Notify API later. Once
:func:`queue_notifications` returns, the rows are on disk: a crash loses nothing.

The rules are LINE Notify's (docs/line-platform.md A3). LINE never said how it counted the
1000 characters of a message ([?]); we count Unicode code points, so a Japanese character or
an emoji is one character, never its bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import (
    ApiKey,
    Connection,
    ConnectionStatus,
    Notification,
    NotificationImage,
    NotificationStatus,
    User,
)
from notify_site.services import ServiceError

MESSAGE_MAX_CHARS = 1000
URL_MAX_CHARS = 2000
IMAGE_MAX_BYTES = 10 * 1024 * 1024
IMAGE_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


class NotificationValidationError(ServiceError):
    """Bad input; ``fields`` maps each field to what is wrong with it."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in fields.items()))
        self.fields = fields


class UnknownConnectionError(ServiceError):
    """A target connection does not exist or is not the caller's."""


class InactiveConnectionError(ServiceError):
    """A target connection is revoked or in error."""


class NotificationNotFoundError(ServiceError):
    pass


@dataclass(frozen=True)
class ImageUpload:
    filename: str
    data: bytes
    content_type: str = ""


@dataclass(frozen=True)
class NotificationContent:
    """What to send, as the caller gave it (validated by :func:`validate_content`)."""

    message: str
    sticker_package_id: int | None = None
    sticker_id: int | None = None
    image_thumbnail_url: str | None = None
    image_fullsize_url: str | None = None
    image_file: ImageUpload | None = None
    notification_disabled: bool = False
    errors: dict[str, str] = field(default_factory=dict, compare=False)


def image_type(data: bytes) -> str | None:
    """``image/png`` or ``image/jpeg`` by the file's magic bytes, else None."""
    for magic, content_type in IMAGE_TYPES.items():
        if data.startswith(magic):
            return content_type
    return None


def _https_url_error(value: str) -> str | None:
    if len(value) > URL_MAX_CHARS:
        return f"at most {URL_MAX_CHARS} characters"
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc:
        return "must be an https:// URL"
    return None


def validate_content(content: NotificationContent) -> dict[str, str]:
    """Every problem with ``content``, by field name (empty when it can be queued)."""
    errors: dict[str, str] = {}
    message = content.message or ""
    if not message.strip():
        errors["message"] = "is required"
    elif len(message) > MESSAGE_MAX_CHARS:
        errors["message"] = f"at most {MESSAGE_MAX_CHARS} characters (this one has {len(message)})"
    if (content.sticker_package_id is None) != (content.sticker_id is None):
        errors["sticker"] = "give both the package id and the sticker id, or neither"
    else:
        for name in ("sticker_package_id", "sticker_id"):
            value = getattr(content, name)
            if value is not None and not 0 < value < 2**31:
                errors["sticker"] = "ids are positive whole numbers"
    if (content.image_thumbnail_url is None) != (content.image_fullsize_url is None):
        errors["image"] = "give both the thumbnail URL and the full-size URL, or neither"
    else:
        for name in ("image_thumbnail_url", "image_fullsize_url"):
            value = getattr(content, name)
            problem = value is not None and _https_url_error(value)
            if problem:
                errors["image"] = f"{name.removeprefix('image_').replace('_', ' ')} {problem}"
    upload = content.image_file
    if upload is not None:
        if content.image_thumbnail_url is not None:
            errors["image_file"] = "send an image file or image URLs, not both"
        elif not upload.data:
            errors["image_file"] = "the file is empty"
        elif len(upload.data) > IMAGE_MAX_BYTES:
            errors["image_file"] = f"at most {IMAGE_MAX_BYTES // (1024 * 1024)} MiB"
        elif image_type(upload.data) is None:
            errors["image_file"] = "must be a PNG or JPEG image"
    return errors


def find_connections(user: User, refs: list[int | str]) -> list[Connection]:
    """The caller's connections named by id or label, in the order given, without repeats.

    An admin may name any connection by id; labels are looked up among the caller's own.
    """
    found: list[Connection] = []
    for ref in refs:
        connection = _find_connection(user, ref)
        if connection is None:
            raise UnknownConnectionError(f"no connection {ref!r}")
        if connection.status != ConnectionStatus.ACTIVE:
            raise InactiveConnectionError(
                f"connection {connection.label!r} is {connection.status}; connect it again"
            )
        if connection not in found:
            found.append(connection)
    return found


def _find_connection(user: User, ref: int | str) -> Connection | None:
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        connection = db.session.get(Connection, int(ref))
        if connection is not None and (user.is_admin or connection.owner_id == user.id):
            return connection
        if not isinstance(ref, str):
            return None
    return db.session.scalar(
        select(Connection)
        .where(Connection.owner_id == user.id, Connection.label == str(ref))
        .order_by((Connection.status == ConnectionStatus.ACTIVE).desc(), Connection.id.desc())
        .limit(1)
    )


def add_notifications(
    user: User,
    connections: list[Connection],
    content: NotificationContent,
    *,
    api_key: ApiKey | None = None,
) -> list[Notification]:
    """Add one queued row per connection to the session, without committing.

    The caller commits (see :func:`queue_notifications`), so that other writes, such as an
    idempotency record, can share the transaction.
    """
    errors = validate_content(content)
    if errors:
        raise NotificationValidationError(errors)
    if not connections:
        raise NotificationValidationError({"connections": "choose at least one connection"})
    image = None
    if content.image_file is not None:
        image = NotificationImage(
            filename=content.image_file.filename[:200] or "image",
            content_type=image_type(content.image_file.data),
            data=content.image_file.data,
        )
        db.session.add(image)
    rows = [
        Notification(
            owner_id=connection.owner_id,
            connection_id=connection.id,
            api_key_id=api_key.id if api_key else None,
            message=content.message,
            sticker_package_id=content.sticker_package_id,
            sticker_id=content.sticker_id,
            image_thumbnail_url=content.image_thumbnail_url,
            image_fullsize_url=content.image_fullsize_url,
            image=image,
            notification_disabled=content.notification_disabled,
            status=NotificationStatus.QUEUED,
        )
        for connection in connections
    ]
    db.session.add_all(rows)
    db.session.flush()
    return rows


def queue_notifications(
    user: User,
    connections: list[Connection],
    content: NotificationContent,
    *,
    api_key: ApiKey | None = None,
) -> list[Notification]:
    """Validate and durably queue one notification per connection (commits)."""
    try:
        rows = add_notifications(user, connections, content, api_key=api_key)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return rows


def get_notification(user: User, notification_id: int) -> Notification:
    notification = db.session.get(Notification, notification_id)
    if notification is None or (notification.owner_id != user.id and not user.is_admin):
        raise NotificationNotFoundError(f"no notification {notification_id}")
    return notification


def get_notifications(user: User, ids: list[int]) -> list[Notification]:
    """Several of the user's notifications at once (unknown ids are left out)."""
    query = select(Notification).where(Notification.id.in_(ids))
    if not user.is_admin:
        query = query.where(Notification.owner_id == user.id)
    return list(db.session.scalars(query.order_by(Notification.id)))


def active_connections(user: User) -> list[Connection]:
    return list(
        db.session.scalars(
            select(Connection)
            .where(
                Connection.owner_id == user.id,
                Connection.status == ConnectionStatus.ACTIVE,
            )
            .order_by(Connection.label)
        )
    )


def fail_pending_notifications(connection_id: int, reason: str) -> int:
    """Fail every queued or in-flight notification of a connection (no commit).

    Used when the connection dies (revoked here, or a 401 from the Notify server): its backlog
    can never be delivered, and saying so at once is better than retrying for a day.
    """
    now = utcnow()
    result = db.session.execute(
        update(Notification)
        .where(
            Notification.connection_id == connection_id,
            Notification.status.in_(NotificationStatus.PENDING),
        )
        .values(
            status=NotificationStatus.FAILED,
            last_error=reason,
            finished_at=now,
            updated_at=now,
            lease_token=None,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
