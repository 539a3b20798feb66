"""The relay's OAuth 2.0 authorization-code flow (line-platform.md A1, A2; RFC 6749, RFC 7636).

Deliberate choices:

* The authorize endpoint never redirects on a bad request. RFC 6749 section 4.1.2.1 redirects
  with ``error=`` once client and redirect URI are known good; the relay is stricter and
  answers every malformed request (bad ``response_type``, ``scope``, ``response_mode``, a
  missing ``state``) with an error page: the user sees what is wrong, and a link crafted to
  bounce people off the relay gets nowhere.
* Codes live ``RELAY_CODE_TTL`` seconds, are stored hashed, are bound to client, redirect URI,
  chat and the person who consented (whose token it becomes), and are spent by a conditional
  UPDATE (``... WHERE used_at IS NULL``), so two concurrent exchanges of one code cannot both
  win.
* Access tokens look like LINE Notify's: 43 characters of ``[A-Za-z0-9]``
  (``secrets_util.new_access_token``), as personal tokens do.
* RFC 6749 section 4.1.2 suggests revoking tokens issued from a code presented twice; the relay
  does not, because a client that retries a timed-out exchange would lose its only token.
* PKCE is S256 only (RFC 9700 section 2.1.1): ``plain`` (also what a challenge without a
  method means, RFC 7636 section 4.3) is refused with an error page, and a code issued with
  anything but S256 is never exchanged. A ``code_challenge`` sent to the authorize endpoint is
  stored, and the token request must then carry the matching ``code_verifier``. PKCE stays
  optional (LINE Notify knew none), but a token request carrying a ``code_verifier`` for a
  code issued without a challenge is refused: that is the downgrade RFC 9700 names, the
  challenge stripped between the client and the relay (the consent form carries it through
  the browser).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask_babel import gettext as _
from sqlalchemy import delete, select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.relay.clients import authenticate_client, find_client
from notify_site.relay.errors import (
    AuthorizeRequestError,
    ChatNotAvailableError,
    TokenRequestError,
)
from notify_site.relay.models import (
    RelayAccessToken,
    RelayAuthorizationCode,
    RelayChat,
)
from notify_site.relay.secrets_util import hash_secret, new_access_token, new_secret

# The parameters of an authorization request, each of which may appear at most once.
AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "response_mode",
    "code_challenge",
    "code_challenge_method",
)
STATE_MAX_CHARS = 1000
# RFC 7636 section 4.1/4.2: 43 to 128 unreserved characters.
_PKCE_VALUE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
PKCE_METHOD = "S256"


@dataclass(frozen=True)
class AuthorizeRequest:
    """A validated authorization request."""

    client_pk: int
    client_id: str
    client_name: str
    redirect_uri: str
    state: str
    #: "query" (a 302 redirect) or "form_post" (an auto-submitting POST form).
    response_mode: str
    code_challenge: str | None
    code_challenge_method: str | None

    def hidden_fields(self) -> dict[str, str]:
        """The request's parameters, to carry through the consent form."""
        fields = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "notify",
            "state": self.state,
            "response_mode": self.response_mode,
        }
        if self.code_challenge:
            fields["code_challenge"] = self.code_challenge
            fields["code_challenge_method"] = PKCE_METHOD
        return fields


def _single(params: Mapping[str, str], name: str) -> str:
    getlist = getattr(params, "getlist", None)
    if getlist is not None and len(getlist(name)) > 1:
        raise AuthorizeRequestError(
            _("The parameter %(name)s was given more than once.", name=name)
        )
    return params.get(name) or ""


def parse_authorize_request(params: Mapping[str, str]) -> AuthorizeRequest:
    """Validate an authorization request's parameters (query string or the consent form).

    Client and redirect URI are checked first: until both are known good, nothing in the
    request may decide where the browser goes.
    """
    values = {name: _single(params, name) for name in AUTHORIZE_PARAMS}
    if not values["client_id"]:
        raise AuthorizeRequestError(_("The request has no client_id."))
    client = find_client(values["client_id"])
    if client is None:
        raise AuthorizeRequestError(_("No service is registered under this client_id."))
    if not values["redirect_uri"]:
        raise AuthorizeRequestError(_("The request has no redirect_uri."))
    if values["redirect_uri"] != client.redirect_uri:
        raise AuthorizeRequestError(
            _("The redirect_uri is not the one registered for this service.")
        )
    if values["response_type"] != "code":
        raise AuthorizeRequestError(_("response_type must be 'code'."))
    if values["scope"] != "notify":
        raise AuthorizeRequestError(_("scope must be 'notify'."))
    if not values["state"]:
        raise AuthorizeRequestError(_("The request has no state (it is required)."))
    if len(values["state"]) > STATE_MAX_CHARS:
        raise AuthorizeRequestError(
            _("state is longer than %(max)s characters.", max=STATE_MAX_CHARS)
        )
    response_mode = values["response_mode"] or "query"
    if response_mode not in ("query", "form_post"):
        raise AuthorizeRequestError(_("response_mode must be 'form_post' or left out."))
    challenge = values["code_challenge"] or None
    method = values["code_challenge_method"] or None
    if challenge is None and method is not None:
        raise AuthorizeRequestError(_("code_challenge_method was given without code_challenge."))
    if challenge is not None:
        if method != PKCE_METHOD:
            # Left out, it means "plain" (RFC 7636 section 4.3), which proves nothing.
            raise AuthorizeRequestError(
                _(
                    "code_challenge_method must be 'S256': this server does not accept "
                    "'plain' or a challenge without a method."
                )
            )
        if not _PKCE_VALUE.fullmatch(challenge):
            raise AuthorizeRequestError(_("code_challenge is not a valid PKCE challenge."))
    return AuthorizeRequest(
        client_pk=client.id,
        client_id=client.client_id,
        client_name=client.name,
        redirect_uri=client.redirect_uri,
        state=values["state"],
        response_mode=response_mode,
        code_challenge=challenge,
        code_challenge_method=method,
    )


def issue_code(
    request: AuthorizeRequest,
    chat_id: int | None,
    offered: Iterable[RelayChat],
    *,
    person_id: int,
    ttl: int,
) -> str:
    """Create a single-use authorization code for the chosen chat, one of ``offered`` (the
    person's own); the token it is exchanged for is the person's. Returns it and commits."""
    chat = next((chat for chat in offered if chat.id == chat_id), None)
    if chat is None:
        raise ChatNotAvailableError(_("Choose one of the chats listed."))
    now = utcnow()
    # Codes are useless once expired; those a day past expiry go, so the table stays small.
    db.session.execute(
        delete(RelayAuthorizationCode)
        .where(RelayAuthorizationCode.expires_at < now - timedelta(days=1))
        .execution_options(synchronize_session=False)
    )
    code = new_secret()
    db.session.add(
        RelayAuthorizationCode(
            code_hash=hash_secret(code),
            client_pk=request.client_pk,
            redirect_uri=request.redirect_uri,
            chat_id=chat.id,
            person_id=person_id,
            code_challenge=request.code_challenge,
            code_challenge_method=request.code_challenge_method,
            expires_at=now + timedelta(seconds=ttl),
        )
    )
    db.session.commit()
    return code


def redirect_target(redirect_uri: str, params: Mapping[str, str]) -> str:
    """``redirect_uri`` with ``params`` added to its query string (keeping any it had)."""
    parts = urlsplit(redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _pkce_matches(challenge: str, verifier: str) -> bool:
    """Whether ``verifier`` hashes to ``challenge`` by S256 (the only method accepted)."""
    if not _PKCE_VALUE.fullmatch(verifier):
        return False
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return hmac.compare_digest(computed, challenge)


def exchange_code(form: Mapping[str, str], *, now: datetime) -> str:
    """Exchange an authorization code for a new access token; returns the token and commits.

    Raises :class:`TokenRequestError` (answered with 400) for anything wrong: a missing field,
    unknown client or wrong secret, or a code that is unknown, another client's, issued for
    another redirect URI, expired or already used.
    """
    if form.get("grant_type") != "authorization_code":
        raise TokenRequestError("grant_type: must be authorization_code")
    for field in ("code", "redirect_uri", "client_id", "client_secret"):
        if not form.get(field):
            raise TokenRequestError(f"{field}: required")
    client = authenticate_client(form["client_id"], form["client_secret"])
    if client is None:
        raise TokenRequestError("client_id or client_secret: invalid client credentials")

    code = db.session.scalar(
        select(RelayAuthorizationCode).where(
            RelayAuthorizationCode.code_hash == hash_secret(form["code"])
        )
    )
    if code is None or code.client_pk != client.id:
        raise TokenRequestError("code: invalid authorization code")
    if code.redirect_uri != form["redirect_uri"]:
        raise TokenRequestError("redirect_uri: does not match the authorization request")
    if code.used_at is not None:
        raise TokenRequestError("code: already used")
    if code.expires_at <= now:
        raise TokenRequestError("code: expired")
    verifier = form.get("code_verifier") or ""
    if code.code_challenge:
        if code.code_challenge_method != PKCE_METHOD:
            # A code issued before plain was refused: never exchanged.
            raise TokenRequestError("code: issued for a code_challenge_method other than S256")
        if not verifier:
            raise TokenRequestError("code_verifier: required (the request had a code_challenge)")
        if not _pkce_matches(code.code_challenge, verifier):
            raise TokenRequestError("code_verifier: does not match the code_challenge")
    elif verifier:
        raise TokenRequestError(
            "code_verifier: the authorization request had no code_challenge (PKCE downgrade)"
        )

    spent = db.session.execute(
        update(RelayAuthorizationCode)
        .where(
            RelayAuthorizationCode.id == code.id,
            RelayAuthorizationCode.used_at.is_(None),
            RelayAuthorizationCode.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:
        db.session.rollback()
        raise TokenRequestError("code: already used")

    token = new_access_token()
    db.session.add(
        RelayAccessToken(
            token_hash=hash_secret(token),
            client_pk=client.id,
            chat_id=code.chat_id,
            person_id=code.person_id,
        )
    )
    db.session.commit()
    return token
