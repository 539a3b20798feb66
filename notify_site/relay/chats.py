"""Whose chats: each person's private sandbox chats, the LINE chats people paired, and who
may see which (SPEC 6).

* **Sandbox chats** are private: every person has their own 1-on-1 chat
  (``RELAY_SANDBOX_USER``) and groups (``RELAY_SANDBOX_GROUPS``), made the first time the
  person needs them (:func:`ensure_sandbox_chats`) and keyed by the accounts port's person id.
* **LINE chats** (channel mode) are learned from LINE's webhook and belong to nobody until a
  person pairs one with a code (consent page, My page): :func:`pair_chat` links it to them.
  Several members of a group may pair it; each then sees what was delivered there.
* **Who sees what**: a person sees their own sandbox chats and the LINE chats paired to them;
  an admin sees every chat (:func:`visible_chats`, :func:`may_see_chat`).

Functions here do not commit unless they say so; the callers own the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import delete, exists, or_, select
from sqlalchemy.exc import IntegrityError

from notify_site.extensions import db
from notify_site.relay import ledger
from notify_site.relay.accounts import Person
from notify_site.relay.models import (
    ChatKind,
    RelayAccessToken,
    RelayChat,
    RelayChatPerson,
    RelayImage,
    RelayMessage,
    RelayPairing,
)


def sandbox_chat_names(user: str, groups: str | Iterable[str]) -> list[tuple[str, str]]:
    """The sandbox's chats as ``(kind, name)``: the 1-on-1 chat first, then each group once."""
    if isinstance(groups, str):
        groups = groups.split(",")
    wanted = [(ChatKind.USER, user.strip()[:200])]
    for group in groups:
        name = str(group).strip()[:200]
        if name and (ChatKind.GROUP, name) not in wanted:
            wanted.append((ChatKind.GROUP, name))
    return wanted


def ensure_sandbox_chats(person_id: int, user: str, groups: str | Iterable[str]) -> list[RelayChat]:
    """The person's sandbox chats, created on first use (get-or-create by owner, kind and
    name; commits what it creates).

    Two requests creating the same chat at once are settled by the unique index: the loser
    rolls back and reads the winner's row.
    """
    wanted = sandbox_chat_names(user, groups)

    def existing() -> dict[tuple[str, str], RelayChat]:
        rows = db.session.scalars(
            select(RelayChat).where(RelayChat.line_id.is_(None), RelayChat.owner_id == person_id)
        )
        return {(chat.kind, chat.name): chat for chat in rows}

    chats = existing()
    missing = [key for key in wanted if key not in chats]
    for kind, name in missing:
        db.session.add(RelayChat(kind=kind, name=name, owner_id=person_id))
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
    if missing:
        chats = existing()
    return [chats[key] for key in wanted]


def sandbox_chats_for(person: Person, config: Mapping[str, Any]) -> list[RelayChat]:
    """The person's sandbox chats as configured (made now if they are new)."""
    return ensure_sandbox_chats(
        person.id, config["RELAY_SANDBOX_USER"], config["RELAY_SANDBOX_GROUPS"]
    )


def paired_line_chats(person_id: int, *, reachable_only: bool = False) -> list[RelayChat]:
    """The LINE chats paired to the person, in the order they were paired."""
    query = (
        select(RelayChat)
        .join(RelayChatPerson, RelayChatPerson.chat_id == RelayChat.id)
        .where(RelayChatPerson.person_id == person_id)
        .order_by(RelayChatPerson.id)
    )
    if reachable_only:
        query = query.where(RelayChat.unreachable_at.is_(None))
    return list(db.session.scalars(query))


def pair_chat(chat: RelayChat, person_id: int) -> None:
    """Pair a LINE chat to the person (nothing if it already is). No commit."""
    linked = exists().where(
        RelayChatPerson.chat_id == chat.id, RelayChatPerson.person_id == person_id
    )
    if not db.session.scalar(select(linked)):
        db.session.add(RelayChatPerson(chat_id=chat.id, person_id=person_id))


def _own_chats_clause(person_id: int):
    """Chats of the person: their sandbox chats, and LINE chats paired to them."""
    paired = select(RelayChatPerson.chat_id).where(RelayChatPerson.person_id == person_id)
    return or_(
        (RelayChat.line_id.is_(None)) & (RelayChat.owner_id == person_id),
        RelayChat.id.in_(paired),
    )


def visible_chats(person: Person) -> list[RelayChat]:
    """Every chat whose inbox the person may read, in creation order: an admin, all of them."""
    query = select(RelayChat).order_by(RelayChat.id)
    if not person.is_admin:
        query = query.where(_own_chats_clause(person.id))
    return list(db.session.scalars(query))


def may_see_chat(person: Person, chat_id: int) -> bool:
    """Whether the person may read the chat's inbox (an admin may read every one)."""
    if person.is_admin:
        return db.session.get(RelayChat, chat_id) is not None
    return bool(
        db.session.scalar(
            select(exists().where(RelayChat.id == chat_id, _own_chats_clause(person.id)))
        )
    )


def chat_label(chat: RelayChat) -> str:
    """How a chat is named on the consent page, My page and in the inbox."""
    if chat.kind == ChatKind.USER:
        return _("1-on-1 chat with %(name)s", name=chat.name)
    return chat.name


def forget_person(person_id: int) -> None:
    """Everything of a person whose account is gone (no commit): their sandbox chats with what
    was delivered there (uploaded images too), their tokens, their pairings. A LINE chat stays
    (others may have paired it); only the person's link to it goes.

    Called through the site's account-deletion seam: the person id may be given to a new
    account later (SQLite reuses the highest row id), which must find nothing of the old one.
    """
    own = select(RelayChat.id).where(RelayChat.line_id.is_(None), RelayChat.owner_id == person_id)
    images = select(RelayMessage.image_id).where(
        RelayMessage.chat_id.in_(own), RelayMessage.image_id.is_not(None)
    )
    tokens = select(RelayAccessToken.id).where(
        or_(RelayAccessToken.person_id == person_id, RelayAccessToken.chat_id.in_(own))
    )
    ledger.forget_person(person_id, own, tokens)
    for statement in (
        delete(RelayImage).where(RelayImage.id.in_(images)),
        delete(RelayAccessToken).where(RelayAccessToken.person_id == person_id),
        delete(RelayPairing).where(RelayPairing.person_id == person_id),
        delete(RelayChatPerson).where(RelayChatPerson.person_id == person_id),
        delete(RelayChat).where(RelayChat.id.in_(own)),
    ):
        db.session.execute(statement.execution_options(synchronize_session=False))
