"""API keys for the JSON API (SPEC 4.3, reliability.md "Secrets at rest").

A key is ``nsk_`` followed by 32 random bytes in URL-safe Base64 (256 bits). Only its SHA-256
is stored, with the first characters (the *prefix*) so people can tell their keys apart; the
key itself is shown once, when it is created. A stolen database therefore holds no usable key,
and since the key is long and random, one unsalted hash is enough: there is nothing to guess.

What a key may reach is its owner's: the owner's connections and notifications, or every
connection when the owner is an admin. A disabled owner's keys are refused.

A key created on the page is shown on the page its creation redirects to (POST-redirect-GET,
so a reload cannot create a second key). Until then it waits in an ``api_key_reveals`` row,
encrypted with the token key ring and bound to that row; the browser's session holds only a
random slot id. The first read deletes the row, and an unread one is useless after
:data:`REVEAL_TTL`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext
from sqlalchemy import bindparam, delete, func, or_, select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.keyring import keyring
from notify_site.models import ApiKey, ApiKeyReveal, Connection, Notification, User
from notify_site.services import ServiceError, plain_text_reason
from notify_site.services.accounts import AccountDisabledError
from notify_site.services.paging import Page, count_rows, page_offset

KEY_PREFIX = "nsk_"
KEY_RANDOM_BYTES = 32
# What the list shows of each key: "nsk_" and the first 8 random characters.
DISPLAY_PREFIX_CHARS = 12
NAME_MAX_CHARS = 64
# Longer than any key we issue; a longer Bearer value is not worth hashing.
KEY_MAX_CHARS = 200
# last_used_at is written at most this often per key, so most requests write nothing.
TOUCH_INTERVAL = timedelta(seconds=60)
# How long a new key waits to be shown; the redirect that shows it takes a moment.
REVEAL_TTL = timedelta(minutes=5)


class ApiKeyError(ServiceError):
    """The key cannot be created as asked (the message says why)."""


class ApiKeyNotFoundError(ServiceError):
    """No such key, or not this user's."""


class UnknownUserError(ServiceError):
    """No account has that name."""


@dataclass(frozen=True)
class ApiKeyUsage:
    """A key as the list shows it: the row, and how many notifications it sent."""

    key: ApiKey
    volume: int


@dataclass(frozen=True)
class KeyOwner:
    """A key's owner as the API needs it: whose data the key reaches, and whether all of it."""

    id: int
    is_admin: bool


@dataclass(frozen=True)
class AuthenticatedKey:
    """An active API key and what a request needs of it and of its owner, read in one query."""

    id: int
    owner: KeyOwner
    last_used_at: datetime | None


def hash_key(plaintext: str) -> str:
    """The SHA-256 of a key, in hex: what the database keeps."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_api_key(user: User, name: str) -> tuple[ApiKey, str]:
    """Create a key for ``user``; returns the row and the plaintext key (shown once, never kept).

    Raises :class:`ApiKeyError` when the name is empty or too long.
    """
    api_key, plaintext = _new_key(user, name)
    db.session.commit()
    return api_key, plaintext


def create_api_key_to_show(user: User, name: str) -> tuple[ApiKey, str]:
    """Create a key for ``user`` and keep it, encrypted, for the page that shows it once.

    Returns the row and the slot id the browser's session keeps for :func:`take_key_to_show`.
    The key and its slot are committed together. Raises :class:`ApiKeyError`.
    """
    api_key, plaintext = _new_key(user, name)
    slot = stash_to_show(user, plaintext)
    db.session.commit()
    return api_key, slot


def stash_to_show(user: User, plaintext: str) -> str:
    """Keep a new secret of ``user`` (a key, a webhook's URL secret) encrypted for the page
    that shows it once, without committing; returns the slot id for :func:`take_key_to_show`.
    """
    now = utcnow()
    _delete_expired_reveals(now)
    slot = secrets.token_urlsafe(32)
    slot_hash = hash_key(slot)
    db.session.add(
        ApiKeyReveal(
            slot_hash=slot_hash,
            user_id=user.id,
            key_ciphertext=keyring().encrypt(plaintext, context=reveal_context(slot_hash)),
            created_at=now,
            expires_at=now + REVEAL_TTL,
        )
    )
    return slot


def take_key_to_show(user: User, slot: str | None) -> str | None:
    """The key waiting in ``slot`` for ``user``, once: the row is deleted as it is read.

    None when there is no such slot, it is another user's, it expired, or it was read already.
    """
    if not slot or len(slot) > KEY_MAX_CHARS:
        return None
    slot_hash = hash_key(slot)
    reveal = db.session.get(ApiKeyReveal, slot_hash)
    if reveal is None or reveal.user_id != user.id:
        db.session.rollback()
        return None
    ciphertext = reveal.key_ciphertext
    now = utcnow()
    # Deleted by a conditional DELETE: of two requests reading the slot at once, one shows it.
    taken = db.session.execute(
        delete(ApiKeyReveal)
        .where(ApiKeyReveal.slot_hash == slot_hash, ApiKeyReveal.expires_at > now)
        .execution_options(synchronize_session=False)
    ).rowcount
    _delete_expired_reveals(now)
    db.session.commit()
    if taken != 1:
        return None
    return keyring().decrypt(ciphertext, context=reveal_context(slot_hash))


def _delete_expired_reveals(now: datetime) -> None:
    """Drop keys nobody came to see (their browser never followed the redirect)."""
    db.session.execute(
        delete(ApiKeyReveal)
        .where(ApiKeyReveal.expires_at <= now)
        .execution_options(synchronize_session=False)
    )


def reveal_context(slot_hash: str) -> str:
    """What a waiting key's ciphertext is bound to."""
    return f"api-key-reveal:{slot_hash}"


def _new_key(user: User, name: str) -> tuple[ApiKey, str]:
    name = (name or "").strip()
    if not name:
        raise ApiKeyError(gettext("Give the key a name, e.g. “CI alerts”."))
    if len(name) > NAME_MAX_CHARS:
        raise ApiKeyError(
            gettext("A key's name has at most %(max)s characters.", max=NAME_MAX_CHARS)
        )
    reason = plain_text_reason(name)
    if reason:
        raise ApiKeyError(reason)
    plaintext = KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)
    api_key = ApiKey(
        owner_id=user.id,
        name=name,
        prefix=plaintext[:DISPLAY_PREFIX_CHARS],
        key_hash=hash_key(plaintext),
    )
    db.session.add(api_key)
    db.session.flush()
    return api_key, plaintext


def create_api_key_for_username(username: str, name: str) -> tuple[ApiKey, str]:
    """:func:`create_api_key` for the account called ``username`` (the CLI's way in)."""
    user = db.session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        raise UnknownUserError(gettext("There is no account called “%(name)s”.", name=username))
    return create_api_key(user, name)


_api_keys = ApiKey.__table__
_users = User.__table__
# One Core query for the whole check, built once: the key, its state and its owner's role.
# Loading the ApiKey and then its owner through the ORM cost two queries and most of a request.
#: What a key's check reads: the key, its state and its owner's role (services/sending.py's
#: fast path reads the same, with the connection beside it).
KEY_CHECK_COLUMNS = (
    _api_keys.c.id,
    _api_keys.c.key_hash,
    _api_keys.c.revoked_at,
    _api_keys.c.last_used_at,
    _api_keys.c.owner_id,
    _users.c.is_admin,
    _users.c.disabled_at,
)
_KEY_BY_HASH = (
    select(*KEY_CHECK_COLUMNS)
    .join(_users, _users.c.id == _api_keys.c.owner_id)
    .where(_api_keys.c.key_hash == bindparam("key_hash"))
)


def may_be_a_key(plaintext: str | None) -> bool:
    """Whether ``plaintext`` looks like a key at all (worth hashing and looking up)."""
    return bool(plaintext) and plaintext.startswith(KEY_PREFIX) and len(plaintext) <= KEY_MAX_CHARS


def authenticate(plaintext: str | None, digest: str | None = None) -> AuthenticatedKey | None:
    """The active key whose plaintext is ``plaintext``, with its owner, else None.

    The row is found by the hash (an index lookup: its timing tells nothing about the key, only
    about a SHA-256 of it), then the hashes are compared in constant time. A revoked key is
    refused at once: nothing about keys is cached. A key of a disabled account raises
    :class:`~notify_site.services.accounts.AccountDisabledError` (the API answers 403).
    ``digest`` is :func:`hash_key` of ``plaintext`` when the caller has it already (the rate
    limit hashed the same key to count it).
    """
    if not may_be_a_key(plaintext):
        return None
    if digest is None:
        digest = hash_key(plaintext)
    row = db.session.execute(_KEY_BY_HASH, {"key_hash": digest}).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        return None
    if row.revoked_at is not None:
        return None
    if row.disabled_at is not None:
        raise AccountDisabledError(
            gettext("The account this key belongs to is disabled. Ask your admin.")
        )
    return AuthenticatedKey(
        id=row.id,
        owner=KeyOwner(id=row.owner_id, is_admin=row.is_admin),
        last_used_at=row.last_used_at,
    )


def touch(api_key: ApiKey | AuthenticatedKey) -> None:
    """Record that ``api_key`` was used, at most once per :data:`TOUCH_INTERVAL`.

    Most requests return without writing. When the time has come, a conditional UPDATE sets
    the time only if no other request did so meanwhile, so a burst of requests writes once.
    """
    now = utcnow()
    last = api_key.last_used_at
    if last is not None and now - last < TOUCH_INTERVAL:
        return
    db.session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == api_key.id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - TOUCH_INTERVAL),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def key_owner(api_key: AuthenticatedKey) -> User:
    """The user a key acts for, loaded (for the services that take a :class:`User`)."""
    return db.session.get_one(User, api_key.owner.id)


def list_api_keys(user: User) -> list[ApiKeyUsage]:
    """The user's keys with the number of notifications each sent: active first, newest first."""
    volume = (
        select(func.count(Notification.id))
        .where(Notification.api_key_id == ApiKey.id)
        .correlate(ApiKey)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(ApiKey, volume)
        .where(ApiKey.owner_id == user.id)
        .order_by(ApiKey.revoked_at.is_not(None), ApiKey.id.desc())
    )
    return [ApiKeyUsage(key=key, volume=count) for key, count in rows]


def revoke_api_key(user: User, key_id: int) -> ApiKey:
    """Revoke one of the user's keys; it stops working at once. Revoking twice is harmless.

    Raises :class:`ApiKeyNotFoundError` for an unknown key or another user's.
    """
    api_key = db.session.get(ApiKey, key_id)
    if api_key is None or api_key.owner_id != user.id:
        raise ApiKeyNotFoundError(gettext("No such API key."))
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        db.session.commit()
    return api_key


def visible_connections(user: User, *, page: int, per_page: int) -> Page[Connection]:
    """One page of the connections a key of ``user`` can see: the user's own, or all for admins.

    Ordered by id, so pages do not shift when a connection's status changes.
    """
    query = select(Connection)
    if not user.is_admin:
        query = query.where(Connection.owner_id == user.id)
    items = db.session.scalars(
        query.order_by(Connection.id).limit(per_page).offset(page_offset(page, per_page))
    )
    return Page(items=list(items), page=page, per_page=per_page, total=count_rows(query))
