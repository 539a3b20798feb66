"""One-time pairing codes: how a person shows the relay which LINE chat to connect.

The consent page (or My page) shows a short code to a signed-in person; they send it to the
bot from the chat they want (1-on-1, or a group the bot is in). The webhook sees the code in a
message event and binds the pairing to that chat; the page, polling with its own secret, then
names the chat and the person confirms: the chat is then paired to them
(:func:`notify_site.relay.chats.pair_chat`) and stays on their list for later tokens. The
code is eight characters from an alphabet without look-alikes (about 40 bits), lives
``RELAY_LINE_PAIRING_TTL`` seconds, binds at most one chat and is used at most once; code and
polling secret are stored only as SHA-256 digests.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from notify_site.extensions import db
from notify_site.relay.chats import pair_chat
from notify_site.relay.models import RelayChat, RelayPairing
from notify_site.relay.secrets_util import hash_secret, new_secret, secret_matches

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
_SEPARATORS = re.compile(r"[\s\-‐‑–—ー－]+")
_CODE = re.compile(f"[{CODE_ALPHABET}]{{{CODE_LENGTH}}}")


class PairingStatus:
    WAITING = "waiting"
    MATCHED = "matched"
    EXPIRED = "expired"
    USED = "used"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class NewPairing:
    code: str
    poll_token: str
    expires_at: datetime

    @property
    def display_code(self) -> str:
        half = CODE_LENGTH // 2
        return f"{self.code[:half]}-{self.code[half:]}"


@dataclass(frozen=True)
class PairingState:
    status: str
    chat_id: int | None = None
    chat_name: str | None = None
    chat_kind: str | None = None
    reachable: bool = True

    def as_json(self) -> dict:
        chat = None
        if self.chat_id is not None:
            chat = {"name": self.chat_name, "type": self.chat_kind, "reachable": self.reachable}
        return {"status": self.status, "chat": chat}


def normalize_code(text: str) -> str | None:
    """The code in a message that is only a code (any case, spaces and dashes ignored)."""
    if len(text) > 40:
        return None
    candidate = _SEPARATORS.sub("", text).upper()
    return candidate if _CODE.fullmatch(candidate) else None


def create_pairing(client_pk: int | None, *, person_id: int, ttl: int, now: datetime) -> NewPairing:
    """A fresh code and polling secret for one page of the person (a consent page for the
    service ``client_pk``, or My page with None); commits."""
    db.session.execute(
        delete(RelayPairing)
        .where(RelayPairing.expires_at < now - timedelta(days=1))
        .execution_options(synchronize_session=False)
    )
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    poll_token = new_secret()
    expires_at = now + timedelta(seconds=ttl)
    db.session.add(
        RelayPairing(
            code_hash=hash_secret(code),
            poll_hash=hash_secret(poll_token),
            client_pk=client_pk,
            person_id=person_id,
            created_at=now,
            expires_at=expires_at,
        )
    )
    db.session.commit()
    return NewPairing(code, poll_token, expires_at)


def _find(poll_token: str) -> RelayPairing | None:
    if not poll_token or len(poll_token) > 100:
        return None
    return db.session.scalar(
        select(RelayPairing).where(RelayPairing.poll_hash == hash_secret(poll_token))
    )


def pairing_state(
    poll_token: str, *, client_pk: int | None, now: datetime, any_client: bool = False
) -> PairingState:
    """Where the page's pairing stands: a pairing of ``client_pk`` (None: My page's), or of
    any page with ``any_client`` (the poll, which holds only the page's secret)."""
    pairing = _find(poll_token)
    if pairing is None or (not any_client and pairing.client_pk != client_pk):
        return PairingState(PairingStatus.UNKNOWN)
    if pairing.used_at is not None:
        return PairingState(PairingStatus.USED)
    chat = pairing.chat
    if pairing.matched_at is not None and chat is not None:
        return PairingState(
            PairingStatus.MATCHED, chat.id, chat.name, chat.kind, reachable=chat.reachable
        )
    if pairing.expires_at <= now:
        return PairingState(PairingStatus.EXPIRED)
    return PairingState(PairingStatus.WAITING)


def code_belongs(code: str, poll_token: str) -> bool:
    """Whether ``code`` is the code of the pairing polled with ``poll_token``."""
    found = _find(poll_token)
    return found is not None and secret_matches(code, found.code_hash)


def match_code(code: str, chat: RelayChat, *, now: datetime) -> RelayPairing | None:
    """Bind the waiting pairing with ``code`` to ``chat``; None if no such code waits. Commits.

    A conditional UPDATE: the first chat to send a code wins, later senders get nothing.
    """
    result = db.session.execute(
        update(RelayPairing)
        .where(
            RelayPairing.code_hash == hash_secret(code),
            RelayPairing.matched_at.is_(None),
            RelayPairing.used_at.is_(None),
            RelayPairing.expires_at > now,
        )
        .values(chat_id=chat.id, matched_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.rollback()
        return None
    db.session.commit()
    return db.session.scalar(
        select(RelayPairing).where(RelayPairing.code_hash == hash_secret(code))
    )


def take_pairing(
    poll_token: str, *, client_pk: int | None, person_id: int, now: datetime
) -> RelayChat | None:
    """The matched chat of a pairing, spending the pairing and pairing the chat to the person
    (in the caller's transaction).

    None when the pairing is unknown, another page's (another client's, or another person's),
    not matched yet, used, or its chat cannot be reached. A matched pairing outlives its TTL
    by the TTL again, so a person who took their time reading still gets to agree.
    """
    pairing = _find(poll_token)
    if (
        pairing is None
        or pairing.client_pk != client_pk
        or pairing.person_id != person_id
        or pairing.matched_at is None
    ):
        return None
    chat = pairing.chat
    if chat is None or not chat.reachable:
        return None
    spent = db.session.execute(
        update(RelayPairing)
        .where(
            RelayPairing.id == pairing.id,
            RelayPairing.used_at.is_(None),
            RelayPairing.matched_at > now - 2 * (pairing.expires_at - pairing.created_at),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:
        db.session.rollback()
        return None
    pair_chat(chat, person_id)
    return chat
