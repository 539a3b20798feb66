"""Sign in with LINE (issue 19; line-platform.md part C; seed 002's rules for LINE Login).

**The flow.** :func:`start` has the LINE Login client (:mod:`notify_site.line_login`) build
the authorize URL (``state``, ``nonce``, PKCE S256, ``scope=openid profile``, ``bot_prompt``
when configured) and records the flow server-side, keyed by the hash of ``state``, with the
nonce and verifier encrypted under the key ring and bound to that hash; the view puts the hash
into the browser's session too. :func:`complete` needs both — the hash in this browser's
session *and* an unexpired, unused row — and consumes the row atomically before anything
else, so a missing, wrong, reused or expired state is refused **without a token request**.
Only then is the code exchanged (once) and the ID token verified (signature, ``iss``,
``aud``, ``exp``, ``iat``, ``nonce``); the LINE access token is used for the friendship
status, then revoked, never stored. An ``error=`` answer (``access_denied`` or any other)
spends the state too (:func:`cancel`).

**ID linking.** An account holds at most one LINE user id and a LINE user id at most one
account (a unique column). A LINE sign-in whose user id no account holds either makes an
account (:func:`create_account`, when registration is open) or is linked to an existing one
once the person signs in with its password (:func:`link`); a signed-in person links from
Settings (a flow started with their account, which only that account can finish). Unlinking
(:func:`unlink`) is refused for an account without a password: it would lose its only way to
sign in.

**Friendship.** With ``LINE_LOGIN_BOT_PROMPT`` set the channel is linked to the relay's bot:
each sign-in asks ``/friendship/v1/status`` and keeps the answer on the account
(``line_friend``); if that call fails, the callback's ``friendship_status_changed=true`` still
says the person just added the bot.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, url_for
from flask_babel import gettext
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.keyring import keyring
from notify_site.line_login import BOT_PROMPTS, LineLoginClient, LineLoginError
from notify_site.models import AccountAction, LineLoginState, User
from notify_site.services import ServiceError
from notify_site.services.accounts import (
    AccountDisabledError,
    RegistrationClosedError,
    record_event,
)

log = logging.getLogger(__name__)

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


class LineStateError(ServiceError):
    """The callback's state is missing, unknown, expired, reused or not this browser's."""


class LineDeniedError(ServiceError):
    """The person cancelled on LINE's page, or LINE answered with another error."""


class LineSignInError(ServiceError):
    """LINE's answer could not be trusted or used (code refused, ID token invalid...)."""


class LineLinkError(ServiceError):
    """The LINE account cannot be linked or unlinked as asked."""


@dataclass(frozen=True)
class PendingLineLogin:
    authorize_url: str
    state_hash: str


@dataclass(frozen=True)
class LineSignIn:
    """A verified LINE sign-in: who (``user_id``, ``name``), whether they are a friend of the
    bot (None: not known), and the account that started it from Settings (or None)."""

    user_id: str
    name: str
    friend: bool | None
    linking_account_id: int | None


def configured() -> bool:
    config = current_app.config
    return bool(config.get("LINE_LOGIN_CHANNEL_ID") and config.get("LINE_LOGIN_CHANNEL_SECRET"))


def _client() -> LineLoginClient:
    config = current_app.config
    client = current_app.extensions.get("notify_site.line_login")
    if client is None:
        client = LineLoginClient(
            config["LINE_LOGIN_CHANNEL_ID"],
            config["LINE_LOGIN_CHANNEL_SECRET"],
            login_origin=config["LINE_LOGIN_ORIGIN"],
            api_base_url=config["RELAY_LINE_API_BASE_URL"],
            timeout=config["LINE_LOGIN_TIMEOUT"],
        )
        current_app.extensions["notify_site.line_login"] = client
    return client


def callback_url() -> str:
    """The callback URL registered in the LINE console (``LINE_LOGIN_REDIRECT_URI``, else
    this site's own callback route)."""
    return current_app.config.get("LINE_LOGIN_REDIRECT_URI") or url_for(
        "line_login.callback", _external=True
    )


def hash_state(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def secrets_context(state_hash: str) -> str:
    """What a pending flow's nonce and verifier are bound to (checked on every decrypt)."""
    return f"line-login-state:{state_hash}"


def start(user: User | None = None) -> PendingLineLogin:
    """Record a pending flow (``user``: linking from Settings) and return where to go."""
    if not configured():
        raise LineSignInError(gettext("Sign in with LINE is not set up on this site."))
    config = current_app.config
    prompt = config.get("LINE_LOGIN_BOT_PROMPT")
    redirect_uri = callback_url()
    authorization = _client().authorization(
        redirect_uri, bot_prompt=prompt if prompt in BOT_PROMPTS else None
    )
    state_hash = hash_state(authorization.state)
    sealed = json.dumps({"nonce": authorization.nonce, "verifier": authorization.code_verifier})
    now = utcnow()
    # Flows a day past their expiry are of no use even to explain a refusal: they go, so the
    # table stays small (ix_line_login_states_expires_at).
    db.session.execute(
        delete(LineLoginState)
        .where(LineLoginState.expires_at < now - timedelta(days=1))
        .execution_options(synchronize_session=False)
    )
    db.session.add(
        LineLoginState(
            state_hash=state_hash,
            user_id=user.id if user is not None else None,
            secrets_ciphertext=keyring().encrypt(sealed, context=secrets_context(state_hash)),
            redirect_uri=redirect_uri,
            created_at=now,
            expires_at=now + timedelta(seconds=config["OAUTH_STATE_TTL"]),
        )
    )
    db.session.commit()
    return PendingLineLogin(authorize_url=authorization.url, state_hash=state_hash)


def _consume_state(state: str | None, browser_states: list[str]) -> LineLoginState:
    """Claim the pending flow for ``state`` once, or raise :class:`LineStateError`."""
    if not state:
        raise LineStateError(gettext("LINE's answer has no state: it belongs to no sign-in."))
    state_hash = hash_state(state)
    if state_hash not in browser_states:
        raise LineStateError(
            gettext("This answer does not belong to a sign-in started in this browser.")
        )
    now = utcnow()
    claimed = db.session.execute(
        update(LineLoginState)
        .where(
            LineLoginState.state_hash == state_hash,
            LineLoginState.used_at.is_(None),
            LineLoginState.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if claimed != 1:
        raise LineStateError(gettext("This sign-in has expired or was already used. Start again."))
    return db.session.get(LineLoginState, state_hash)


def cancel(state: str | None, browser_states: list[str], error: str) -> None:
    """An ``error=`` answer: spend the state, then say why (always raises)."""
    _consume_state(state, browser_states)
    if error == "access_denied":
        raise LineDeniedError(gettext("You cancelled on LINE's page: nothing was signed in."))
    raise LineDeniedError(
        gettext("LINE could not sign you in (it answered “%(error)s”).", error=error[:60])
    )


def complete(
    state: str | None, code: str | None, browser_states: list[str], friendship_changed: str | None
) -> LineSignIn:
    """Check the state, exchange the code once, verify the ID token: who signed in."""
    pending = _consume_state(state, browser_states)
    if not code:
        raise LineSignInError(gettext("LINE sent no authorization code. Start again."))
    sealed = json.loads(
        keyring().decrypt(pending.secrets_ciphertext, context=secrets_context(pending.state_hash))
    )
    redirect_uri, linking = pending.redirect_uri, pending.user_id
    db.session.commit()  # no transaction held open while LINE is called

    client = _client()
    try:
        identity = client.exchange_code(
            code, redirect_uri=redirect_uri, code_verifier=sealed["verifier"], nonce=sealed["nonce"]
        )
    except LineLoginError as error:
        log.warning("LINE Login refused: %s", error.message)
        raise LineSignInError(
            gettext("LINE's answer could not be verified, so you are not signed in. Start again.")
        ) from None
    friend: bool | None = None
    if current_app.config.get("LINE_LOGIN_BOT_PROMPT") in BOT_PROMPTS:
        try:
            friend = client.friendship(identity.access_token)
        except LineLoginError as error:
            log.info("LINE Login: %s", error.message)
            friend = True if friendship_changed == "true" else None
    try:
        client.revoke(identity.access_token)  # nothing more to ask LINE for this person
    except LineLoginError as error:
        log.info("LINE Login: %s", error.message)
    return LineSignIn(identity.user_id, identity.name[:100], friend, linking)


def account_for(sign_in: LineSignIn) -> User | None:
    """The account linked to this LINE user (its friendship flag refreshed), or None."""
    user = db.session.scalar(select(User).where(User.line_user_id == sign_in.user_id))
    if user is None:
        return None
    if not user.is_active:
        raise AccountDisabledError(gettext("This account is disabled. Ask your admin."))
    if sign_in.friend is not None:
        user.line_friend = sign_in.friend
        db.session.commit()
    return user


def link(user: User, line_user_id: str, friend: bool | None) -> None:
    """Link the LINE user to ``user`` (raises :class:`LineLinkError` when another account
    holds it, or ``user`` holds another)."""
    if user.line_user_id == line_user_id:
        return
    if user.line_user_id is not None:
        raise LineLinkError(gettext("Your account is linked to another LINE account: unlink it."))
    holder = db.session.scalar(select(User.id).where(User.line_user_id == line_user_id))
    if holder is not None:
        raise LineLinkError(gettext("This LINE account is already linked to another account."))
    user.line_user_id = line_user_id
    user.line_friend = friend
    record_event(AccountAction.LINE_LINKED, user, user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise LineLinkError(
            gettext("This LINE account is already linked to another account.")
        ) from None


def unlink(user: User) -> None:
    """Unlink LINE, unless it is the account's only way to sign in."""
    if user.password_hash is None:
        raise LineLinkError(
            gettext("Set a password first: LINE is the only way you can sign in now.")
        )
    if user.line_user_id is None:
        return
    user.line_user_id = None
    user.line_friend = None
    record_event(AccountAction.LINE_UNLINKED, user, user)
    db.session.commit()


def _free_username(name: str) -> str:
    base = _NAME_CHARS.sub("-", name).strip("-.")[:40] or "line-user"
    if len(base) < 3:
        base = f"line-{base}"
    candidate, n = base, 2
    while db.session.scalar(select(User.id).where(User.username == candidate)) is not None:
        candidate = f"{base}-{n}"
        n += 1
    return candidate


def create_account(line_user_id: str, name: str, friend: bool | None) -> User:
    """A new account signed in with LINE only (no password), when registration is open."""
    if not current_app.config["REGISTRATION_OPEN"]:
        raise RegistrationClosedError(gettext("Registration is closed on this site."))
    if db.session.scalar(select(User.id).where(User.line_user_id == line_user_id)):
        raise LineLinkError(gettext("This LINE account is already linked to another account."))
    is_first = db.session.scalar(select(func.count()).select_from(User)) == 0
    user = User(
        username=_free_username(name),
        password_hash=None,
        is_admin=is_first,
        line_user_id=line_user_id,
        line_friend=friend,
    )
    db.session.add(user)
    try:
        db.session.flush()  # the id, for the audit entry
        record_event(AccountAction.CREATED_WITH_LINE, user, user)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise LineLinkError(
            gettext("This LINE account is already linked to another account.")
        ) from None
    return user
