"""A person's own LINE chats, known through their linked LINE account — no code to type
(issue 19 item 4): what LINE Notify's consent page listed after *Log in with LINE*.

The accounts port (``relay/accounts.py``) says which LINE user signed in with LINE
(:attr:`Person.line_user_id`: the ID token's ``sub``, the same id the Messaging API uses when
the LINE Login channel and the bot are under one provider) and whether LINE said they were a
friend of the bot then (:attr:`Person.line_friend`). From that:

* **"1-on-1 chat with you"**: the bot's chat with that user. It is offered when the person is
  a friend of the bot: what the webhook last said of the chat (``follow`` / ``unfollow``,
  ordered by LINE's time) when it said anything, else what LINE Login said at sign-in. Made
  here (named after the person) when the webhook has not told of it yet.
* **Groups and rooms**: those the bot is in (reachable) where the webhook saw this user as a
  member (``memberJoined``, or a message they sent there) and not leave since
  (``memberLeft``) — never another member's groups, never a group the bot left.

Picking a group asks LINE first (:func:`still_member`: the group or room member profile
endpoint), so a ``memberLeft`` the webhook missed cannot hand a group to someone who left
it; when LINE cannot be asked, the webhook's record stands. Picking one pairs it to the person
(:func:`keep`), so it is theirs from then on as if paired with a code; pairing by code stays
for accounts without LINE and for other chats.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import exists, select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.on_conflict import dialect_insert
from notify_site.relay import chats
from notify_site.relay.accounts import Person
from notify_site.relay.line.channel import ChannelSettings, messaging_api
from notify_site.relay.models import ChatKind, RelayChat, RelayChatMember, RelayChatPerson

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkedChats:
    """What a person linked to LINE may pick: their 1-on-1 chat (None while they are not a
    friend of the bot) and the groups they share with the bot."""

    own: RelayChat | None
    friend: bool
    groups: list[RelayChat] = field(default_factory=list)

    @property
    def offered(self) -> list[RelayChat]:
        return ([self.own] if self.own is not None else []) + self.groups


def _own_chat(line_user_id: str) -> RelayChat | None:
    return db.session.scalar(select(RelayChat).where(RelayChat.line_id == line_user_id))


def _is_friend(person: Person, chat: RelayChat | None) -> bool:
    if chat is not None and chat.reachability_at is not None:
        return chat.unreachable_at is None  # the webhook's latest word
    return person.line_friend is True


def linked_chats(person: Person) -> LinkedChats | None:
    """The person's own LINE chats, or None when their account is not linked to LINE."""
    line_user_id = person.line_user_id
    if not line_user_id:
        return None
    chat = _own_chat(line_user_id)
    friend = _is_friend(person, chat)
    if friend and chat is None:
        db.session.execute(
            dialect_insert(RelayChat)
            .values(
                kind=ChatKind.USER,
                name=person.display_name[:200],
                line_id=line_user_id,
                source_type="user",
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["line_id"])
        )
        db.session.commit()
        chat = _own_chat(line_user_id)
    groups = list(
        db.session.scalars(
            select(RelayChat)
            .join(RelayChatMember, RelayChatMember.chat_id == RelayChat.id)
            .where(
                RelayChatMember.line_user_id == line_user_id,
                RelayChatMember.left_at.is_(None),
                RelayChat.kind == ChatKind.GROUP,
                RelayChat.unreachable_at.is_(None),
            )
            .order_by(RelayChat.id)
        )
    )
    return LinkedChats(own=chat if friend else None, friend=friend, groups=groups)


def offered_chats(person: Person) -> tuple[list[RelayChat], RelayChat | None]:
    """Every LINE chat the person may pick (their linked chats first, then those paired to
    them with a code, each once) and their own 1-on-1 chat among them (or None)."""
    linked = linked_chats(person)
    offered = list(linked.offered) if linked else []
    seen = {chat.id for chat in offered}
    for chat in chats.paired_line_chats(person.id, reachable_only=True):
        if chat.id not in seen:
            offered.append(chat)
            seen.add(chat.id)
    return offered, linked.own if linked else None


def keep(chat: RelayChat, person_id: int) -> None:
    """The picked chat is the person's from now on (paired, as by a code). No commit."""
    chats.pair_chat(chat, person_id)


def still_member(settings: ChannelSettings, chat: RelayChat, person: Person) -> bool:
    """Whether the person may pick ``chat`` as one of their groups: paired to them already,
    or LINE's member profile endpoint knows them there. A 404 records that they left."""
    if chat.kind != ChatKind.GROUP or not person.line_user_id:
        return True
    paired = exists().where(
        RelayChatPerson.chat_id == chat.id, RelayChatPerson.person_id == person.id
    )
    if db.session.scalar(select(paired)):
        return True
    from linebot.v3 import messaging  # loaded only in channel mode (channel.py)

    try:
        api = messaging_api(settings)
        if chat.source_type == "room":
            api.get_room_member_profile(
                chat.line_id, person.line_user_id, _request_timeout=settings.timeout
            )
        else:
            api.get_group_member_profile(
                chat.line_id, person.line_user_id, _request_timeout=settings.timeout
            )
    except messaging.ApiException as error:
        if error.status != 404:
            log.info("relay: LINE did not confirm a member (HTTP %s)", error.status)
            return True
        db.session.execute(
            update(RelayChatMember)
            .where(
                RelayChatMember.chat_id == chat.id,
                RelayChatMember.line_user_id == person.line_user_id,
                RelayChatMember.left_at.is_(None),
            )
            .values(left_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        return False
    except Exception as error:  # noqa: BLE001 - unreachable LINE: the webhook's record stands
        log.warning("relay: could not ask LINE about a member (%s)", type(error).__name__)
    return True
