"""A person's webhooks: create, change, pause, give a new secret, delete, read the history.

A webhook belongs to one person and sends to some of their chats. Its URL carries a secret:
``whk_`` and 32 random bytes in URL-safe Base64, of which only the SHA-256 is kept (like an
API key's: long and random, so one unsalted hash is enough). The secret is shown once, when
the webhook is made or given a new one; a page shows it through the same one-time slot as a
new API key (:func:`notify_site.services.api_keys.stash_to_show`).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext
from sqlalchemy import delete, func, select

from notify_site import stored_text
from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.i18n import LANGUAGES
from notify_site.models import (
    Connection,
    User,
    Webhook,
    WebhookDedupe,
    WebhookDelivery,
    WebhookFormat,
    webhook_connections,
)
from notify_site.services import ServiceError, api_keys, plain_text_reason, sending
from notify_site.services.api_keys import UnknownUserError
from notify_site.services.paging import Page, count_rows, page_offset
from notify_site.services.webhooks import compose, templates

SECRET_PREFIX = "whk_"  # noqa: S105 - the prefix every secret starts with, not a secret
SECRET_RANDOM_BYTES = 32
# Longer than any secret we issue; a longer one is not worth hashing.
SECRET_MAX_CHARS = 200
NAME_MAX_CHARS = 64
MAX_CONNECTIONS = 20
DEDUPE_MAX_SECONDS = 24 * 3600
HISTORY_SHOWN = 50


class WebhookError(ServiceError):
    """The webhook cannot be saved as asked; ``fields`` say what is wrong, by field."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in fields.items()))
        self.fields = fields


class WebhookNotFoundError(ServiceError):
    """No such webhook, or not this person's (the same answer for both)."""


@dataclass(frozen=True)
class Settings:
    """What a person chooses for a webhook. ``template`` None: the built-in message."""

    name: str
    connections: Sequence[int | str]
    template: str | None = None
    locale: str = "en"
    dedupe_seconds: int | None = None  # None: the site's default (WEBHOOK_DEDUPE_SECONDS)


@dataclass(frozen=True)
class HistoryEntry:
    """One post, as the webhook's page lists it (its detail in the page's language)."""

    delivery: WebhookDelivery
    notification_ids: list[int]
    detail_text: str | None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_RANDOM_BYTES)


def default_dedupe_seconds() -> int:
    return int(current_app.config["WEBHOOK_DEDUPE_SECONDS"])


# ---------------------------------------------------------------------------- checking


def _check(user: User, format_name: str, settings: Settings) -> tuple[str, list[int], str | None]:
    """The cleaned name, the connection ids and the template; :class:`WebhookError` else."""
    problems: dict[str, str] = {}
    name = (settings.name or "").strip()
    if not name:
        problems["name"] = gettext("Give the webhook a name, e.g. “Grafana”.")
    elif len(name) > NAME_MAX_CHARS:
        problems["name"] = gettext("A name has at most %(max)s characters.", max=NAME_MAX_CHARS)
    elif reason := plain_text_reason(name):
        problems["name"] = reason
    if format_name not in WebhookFormat.ALL:
        problems["format"] = gettext(
            "Choose one of: %(formats)s.", formats=", ".join(WebhookFormat.ALL)
        )
    if settings.locale not in LANGUAGES:
        problems["locale"] = gettext("Choose one of the site's languages.")
    dedupe = settings.dedupe_seconds
    if dedupe is not None and not 0 <= dedupe <= DEDUPE_MAX_SECONDS:
        problems["dedupe_seconds"] = gettext("From 0 to %(max)s seconds.", max=DEDUPE_MAX_SECONDS)
    connection_ids: list[int] = []
    if not settings.connections:
        problems["connections"] = gettext("Choose at least one chat.")
    elif len(settings.connections) > MAX_CONNECTIONS:
        problems["connections"] = gettext(
            "A webhook sends to at most %(max)s chats.", max=MAX_CONNECTIONS
        )
    else:
        try:
            found = sending.find_targets(sending.Sender.person(user), settings.connections)
        except (sending.UnknownConnectionError, sending.InactiveConnectionError) as error:
            problems["connections"] = str(error)
        else:
            connection_ids = [connection.id for connection in found]
    template = settings.template
    if template is not None and not template.strip():
        template = None
    if template is not None and "format" not in problems and "locale" not in problems:
        try:
            compose.check_template(format_name, template.replace("\r\n", "\n"), settings.locale)
        except templates.TemplateError as error:
            problems["template"] = str(error)
    if problems:
        raise WebhookError(problems)
    return name, connection_ids, template.replace("\r\n", "\n") if template else None


def _set_connections(webhook: Webhook, connection_ids: list[int]) -> None:
    webhook.connections = list(
        db.session.scalars(select(Connection).where(Connection.id.in_(connection_ids)))
    )


# ---------------------------------------------------------------------------- changing


def create_webhook(user: User, format_name: str, settings: Settings) -> tuple[Webhook, str]:
    """Make a webhook of ``user``; returns it and its secret (shown once, never kept).

    Raises :class:`WebhookError`.
    """
    webhook, secret = _new_webhook(user, format_name, settings)
    db.session.commit()
    return webhook, secret


def create_webhook_to_show(user: User, format_name: str, settings: Settings) -> tuple[Webhook, str]:
    """:func:`create_webhook`, with the secret kept encrypted for the page that shows it once
    (committed together); returns the webhook and the slot of the secret."""
    webhook, secret = _new_webhook(user, format_name, settings)
    slot = api_keys.stash_to_show(user, secret)
    db.session.commit()
    return webhook, slot


def _new_webhook(user: User, format_name: str, settings: Settings) -> tuple[Webhook, str]:
    name, connection_ids, template = _check(user, format_name, settings)
    secret = new_secret()
    webhook = Webhook(
        owner_id=user.id,
        name=name,
        format=format_name,
        secret_hash=hash_secret(secret),
        template=template,
        locale=settings.locale,
        dedupe_seconds=default_dedupe_seconds()
        if settings.dedupe_seconds is None
        else settings.dedupe_seconds,
    )
    _set_connections(webhook, connection_ids)
    db.session.add(webhook)
    db.session.flush()
    return webhook, secret


def create_webhook_for_username(
    username: str, format_name: str, settings: Settings
) -> tuple[Webhook, str]:
    """:func:`create_webhook` for the account called ``username`` (the command line's)."""
    user = db.session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        raise UnknownUserError(gettext("There is no account called “%(name)s”.", name=username))
    return create_webhook(user, format_name, settings)


def update_webhook(user: User, webhook_id: int, settings: Settings) -> Webhook:
    """Change a webhook's name, chats, template, language and window. Raises
    :class:`WebhookNotFoundError` or :class:`WebhookError`."""
    webhook = get_webhook(user, webhook_id)
    name, connection_ids, template = _check(user, webhook.format, settings)
    webhook.name = name
    webhook.template = template
    webhook.locale = settings.locale
    if settings.dedupe_seconds is not None:
        webhook.dedupe_seconds = settings.dedupe_seconds
    _set_connections(webhook, connection_ids)
    db.session.commit()
    return webhook


def regenerate_secret_to_show(user: User, webhook_id: int) -> tuple[Webhook, str]:
    """Give a webhook a new secret; the old one stops working at once. The new one is kept
    encrypted for the page that shows it once: returns the webhook and the slot."""
    webhook = get_webhook(user, webhook_id)
    secret = new_secret()
    webhook.secret_hash = hash_secret(secret)
    slot = api_keys.stash_to_show(user, secret)
    db.session.commit()
    return webhook, slot


def take_secret_to_show(user: User, slot: str | None) -> str | None:
    """The secret waiting in ``slot``, once (see :func:`api_keys.take_key_to_show`)."""
    return api_keys.take_key_to_show(user, slot)


def set_paused(user: User, webhook_id: int, paused: bool) -> Webhook:
    """Pause a webhook (its posts are answered 409 and queue nothing) or resume it."""
    webhook = get_webhook(user, webhook_id)
    if paused and webhook.paused_at is None:
        webhook.paused_at = utcnow()
    elif not paused:
        webhook.paused_at = None
    db.session.commit()
    return webhook


def delete_webhook(user: User, webhook_id: int) -> None:
    """Delete a webhook with its history; its URL answers 404 from now on."""
    webhook = get_webhook(user, webhook_id)
    delete_rows(select(Webhook.id).where(Webhook.id == webhook.id))
    db.session.commit()


def delete_rows(webhook_ids) -> int:
    """Delete the webhooks ``webhook_ids`` (a query of ids) and what hangs on them (no
    commit; also for deleting an account). Returns how many webhooks went."""
    for statement in (
        delete(WebhookDelivery).where(WebhookDelivery.webhook_id.in_(webhook_ids)),
        delete(WebhookDedupe).where(WebhookDedupe.webhook_id.in_(webhook_ids)),
        delete(webhook_connections).where(webhook_connections.c.webhook_id.in_(webhook_ids)),
    ):
        db.session.execute(statement.execution_options(synchronize_session=False))
    return db.session.execute(
        delete(Webhook)
        .where(Webhook.id.in_(webhook_ids))
        .execution_options(synchronize_session=False)
    ).rowcount


# ---------------------------------------------------------------------------- reading


def get_webhook(user: User, webhook_id: int) -> Webhook:
    """One of ``user``'s webhooks; :class:`WebhookNotFoundError` for anyone else's."""
    webhook = db.session.get(Webhook, webhook_id)
    if webhook is None or webhook.owner_id != user.id:
        raise WebhookNotFoundError(gettext("No webhook %(id)s.", id=webhook_id))
    return webhook


def list_webhooks(user: User) -> list[Webhook]:
    """``user``'s webhooks, newest first."""
    return list(
        db.session.scalars(
            select(Webhook).where(Webhook.owner_id == user.id).order_by(Webhook.id.desc())
        )
    )


def page_webhooks(user: User, *, page: int, per_page: int) -> Page[Webhook]:
    """One page of ``user``'s webhooks, by id."""
    query = select(Webhook).where(Webhook.owner_id == user.id)
    items = db.session.scalars(
        query.order_by(Webhook.id).limit(per_page).offset(page_offset(page, per_page))
    )
    return Page(items=list(items), page=page, per_page=per_page, total=count_rows(query))


def history(webhook: Webhook, limit: int = HISTORY_SHOWN) -> list[HistoryEntry]:
    """The webhook's last posts, newest first."""
    rows = db.session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    return [
        HistoryEntry(
            delivery=row,
            notification_ids=json.loads(row.notification_ids or "[]"),
            detail_text=stored_text.shown_column(row, "detail"),
        )
        for row in rows
    ]


def post_counts(user: User) -> dict[int, int]:
    """How many posts each of ``user``'s webhooks has in its history."""
    rows = db.session.execute(
        select(WebhookDelivery.webhook_id, func.count())
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(Webhook.owner_id == user.id)
        .group_by(WebhookDelivery.webhook_id)
    )
    return {webhook_id: count for webhook_id, count in rows}
