"""Connecting a LINE chat through the Notify OAuth flow (SPEC 4.2, reliability.md "OAuth").

1. :func:`start_connect` has the Notify OAuth client (:mod:`notify_site.notify_oauth`) build
   the authorize URL (``state``, PKCE S256, ``response_mode=form_post``) and records the
   pending flow server-side, keyed by the hash of ``state``. The view also puts that hash
   into the browser's session.
2. :func:`complete_connect` needs both: the state in this browser's session *and* an unexpired,
   unused server-side record owned by the signed-in user. The record is consumed atomically, so
   a state works once even when two callbacks race. Only then is the code exchanged, once.
3. The token is encrypted under the key ring, bound to its connection row, and a status call
   learns the chat's name and type (:mod:`notify_site.services.connections` keeps the
   connection's states from then on).

No database transaction is held open during an HTTP call: the state is consumed and committed
first, the Notify server is called, and the connection is then written in one short transaction.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from flask_babel import gettext
from sqlalchemy import select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.keyring import keyring
from notify_site.models import Connection, ConnectionStatus, OAuthState, User
from notify_site.notify_client import AuthError, NotifyError, TargetStatus
from notify_site.notify_oauth import CodeRefusedError, TokenAnswerError
from notify_site.services import ServiceError, plain_text_reason
from notify_site.services.connections import (
    apply_rate_limit,
    apply_status,
    connection_context,
    mark_revoked,
    mark_unreachable,
)
from notify_site.services.notify_clients import notify_client, oauth_client
from notify_site.stored_text import assign, site_text

log = logging.getLogger(__name__)

# A new connection's status_detail: English (the API returns it), with a code pages translate.
DETAIL_TOKEN_REJECTED = site_text("token_rejected")
DETAIL_NAME_NOT_READ = site_text("name_not_read")


class StateError(ServiceError):
    """The callback's ``state`` is missing, unknown, expired, reused or not this browser's."""


class AccessDeniedError(ServiceError):
    """The person pressed Cancel (or the server refused) on the authorize page."""


class ConnectError(ServiceError):
    """The Notify server could not complete the connection."""


@dataclass(frozen=True)
class PendingConnect:
    """What the view needs to send the browser on its way."""

    authorize_url: str
    state_hash: str


def hash_state(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def verifier_context(state_hash: str) -> str:
    """What a pending connect flow's PKCE verifier is bound to (checked on every decrypt)."""
    return f"oauth-state:{state_hash}"


def label_in_use(user: User, label: str) -> bool:
    return (
        db.session.scalar(
            select(Connection.id).where(
                Connection.owner_id == user.id,
                Connection.label == label,
                Connection.status != ConnectionStatus.REVOKED,
            )
        )
        is not None
    )


def start_connect(user: User, label: str) -> PendingConnect:
    """Record a pending connect flow and return the authorize URL to send the browser to."""
    config = current_app.config
    if not config.get("NOTIFY_CLIENT_ID") or not config.get("NOTIFY_CLIENT_SECRET"):
        raise ConnectError(
            gettext(
                "This site is not registered with a Notify server yet "
                "(NOTIFY_CLIENT_ID / NOTIFY_CLIENT_SECRET). Run 'make run' or see the README."
            )
        )
    reason = plain_text_reason(label)
    if reason:
        raise ConnectError(reason)
    if label_in_use(user, label):
        raise ConnectError(
            gettext(
                "You already have a connection called “%(label)s”. Pick another label.", label=label
            )
        )
    redirect_uri = config["NOTIFY_REDIRECT_URI"]
    authorization = oauth_client().authorization(redirect_uri)
    state_hash = hash_state(authorization.state)
    now = utcnow()
    db.session.add(
        OAuthState(
            state_hash=state_hash,
            user_id=user.id,
            label=label,
            verifier_ciphertext=keyring().encrypt(
                authorization.code_verifier, context=verifier_context(state_hash)
            ),
            redirect_uri=redirect_uri,
            created_at=now,
            expires_at=now + timedelta(seconds=config["OAUTH_STATE_TTL"]),
        )
    )
    db.session.commit()
    return PendingConnect(authorize_url=authorization.url, state_hash=state_hash)


def _consume_state(user: User, state: str | None, browser_states: list[str]) -> OAuthState:
    """Claim the pending flow for ``state`` once, or raise :class:`StateError`."""
    if not state:
        raise StateError(
            gettext("The answer has no state, so it belongs to no connect flow of yours.")
        )
    state_hash = hash_state(state)
    if state_hash not in browser_states:
        raise StateError(
            gettext("This answer does not belong to a connect flow started in this browser.")
        )
    now = utcnow()
    claimed = db.session.execute(
        update(OAuthState)
        .where(
            OAuthState.state_hash == state_hash,
            OAuthState.user_id == user.id,
            OAuthState.used_at.is_(None),
            OAuthState.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if claimed != 1:
        raise StateError(gettext("This connect flow has expired or was already used. Start again."))
    return db.session.get(OAuthState, state_hash)


def cancel_connect(user: User, state: str | None, browser_states: list[str], error: str) -> None:
    """Handle an ``error=`` answer: spend the state, and say why nothing was connected."""
    _consume_state(user, state, browser_states)
    if error == "access_denied":
        raise AccessDeniedError(gettext("Not connected: you cancelled on the authorization page."))
    raise AccessDeniedError(
        gettext("Not connected: the Notify server answered “%(error)s”.", error=error[:80])
    )


def complete_connect(
    user: User, state: str | None, code: str | None, browser_states: list[str]
) -> Connection:
    """Finish the flow: check the state, exchange the code once, store the encrypted token."""
    pending = _consume_state(user, state, browser_states)
    if not code:
        raise ConnectError(gettext("The Notify server sent no authorization code. Start again."))
    verifier = keyring().decrypt(
        pending.verifier_ciphertext, context=verifier_context(pending.state_hash)
    )
    label, redirect_uri = pending.label, pending.redirect_uri
    db.session.commit()  # end the read transaction before talking to the server

    token = _exchange_code(code, redirect_uri, verifier)
    try:
        status: TargetStatus | None = notify_client().status(token)
        status_error = None
    except NotifyError as error:
        status, status_error = None, error
        log.warning("status call after connecting failed: %s", error)

    connection = Connection(owner_id=user.id, label=_free_label(user, label))
    db.session.add(connection)
    db.session.flush()  # the id is part of what the ciphertext is bound to
    connection.token_ciphertext = keyring().encrypt(
        token, context=connection_context(connection.id)
    )
    if status is not None:
        apply_status(connection, status)
    elif isinstance(status_error, AuthError) and status_error.chat_unreachable:
        mark_unreachable(connection)
    elif isinstance(status_error, AuthError):
        mark_revoked(connection, DETAIL_TOKEN_REJECTED)
    else:
        assign(connection, "status_detail", DETAIL_NAME_NOT_READ)
        if status_error is not None and status_error.rate_limit is not None:
            apply_rate_limit(connection, status_error.rate_limit, "status")
    db.session.commit()
    return connection


def _exchange_code(code: str, redirect_uri: str, verifier: str) -> str:
    try:
        return oauth_client().exchange_code(code, redirect_uri, verifier)
    except CodeRefusedError as error:
        raise ConnectError(
            gettext(
                "The Notify server refused the authorization code (%(reason)s). Start again.",
                reason=error.message,
            )
        ) from None
    except TokenAnswerError as error:
        raise ConnectError(
            gettext("The Notify server answered without an access token. Start again.")
            if error.without_token
            else gettext("The Notify server's token answer was not understood.")
        ) from None
    except NotifyError:  # nothing answered, or a 5xx
        raise ConnectError(
            gettext(
                "The Notify server did not answer the code exchange. Start the connection again."
            )
        ) from None


def _free_label(user: User, label: str) -> str:
    """``label``, or ``label (2)``… when another flow took the label meanwhile."""
    candidate, n = label, 2
    while label_in_use(user, candidate):
        candidate = f"{label[:58]} ({n})"
        n += 1
    return candidate
