"""Client for LINE Login v2.1 (OpenID Connect), line-platform.md part C.

* :meth:`LineLoginClient.authorization` builds the authorize URL (``response_type=code``,
  ``scope=openid profile``, ``state``, ``nonce``, PKCE S256, optionally ``bot_prompt``) with
  Authlib's protocol pieces, as :mod:`notify_site.notify_oauth` does for Notify;
* :meth:`LineLoginClient.exchange_code` exchanges the code once and **verifies the ID token
  before anything in it is trusted**: signature (HS256 with the channel secret, as LINE signs
  a web login's token), ``iss`` = ``https://access.line.me``, ``aud`` = the channel id,
  ``exp`` and ``iat`` (a minute's leeway for clocks), ``sub`` present, and ``nonce`` equal to
  the one this flow sent. The JOSE work is joserfc's (the library Authlib's own ``jose``
  package now defers to; ``authlib.jose`` is deprecated). The access token comes back to the
  caller only to ask the friendship status, then revoked (:meth:`LineLoginClient.revoke`)
  and dropped, never stored;
* :meth:`LineLoginClient.friendship` asks whether the person is a friend of the bot linked to
  the channel (``GET /friendship/v1/status``).

Like the Notify client: no Flask and no database, one ``requests.Session``, a timeout on every
call, redirects never followed, and the client secret, the code, the verifier and the tokens
never in an error's message. Every failure is a :class:`LineLoginError`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import requests
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

__all__ = ["ISSUER", "Authorization", "LineIdentity", "LineLoginClient", "LineLoginError"]

#: The ``iss`` of every LINE ID token.
ISSUER = "https://access.line.me"
SCOPE = "openid profile"
BOT_PROMPTS = ("normal", "aggressive")
#: Seconds of clock difference allowed on ``exp`` and ``iat``.
LEEWAY = 60


class LineLoginError(Exception):
    """LINE Login failed; ``message`` is safe to log (it holds no secret)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Authorization:
    """Where to send the browser, and what the callback is checked against."""

    url: str
    state: str
    nonce: str
    code_verifier: str = field(repr=False)


@dataclass(frozen=True)
class LineIdentity:
    """Who signed in, from a verified ID token; ``access_token`` only for the friendship
    call that follows (the caller drops it)."""

    user_id: str
    name: str
    access_token: str = field(repr=False)


class LineLoginClient:
    """One LINE Login channel: its authorize origin, the API base and its credentials."""

    def __init__(
        self,
        channel_id: str,
        channel_secret: str,
        *,
        login_origin: str = "https://access.line.me",
        api_base_url: str = "https://api.line.me",
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self.channel_id = str(channel_id)
        self._secret = str(channel_secret)
        self.login_origin = login_origin.rstrip("/")
        self.api_base_url = api_base_url.rstrip("/")
        self.timeout = timeout
        self.session = session if session is not None else requests.Session()

    def __repr__(self) -> str:
        return f"LineLoginClient(channel_id={self.channel_id!r})"

    def authorization(self, redirect_uri: str, *, bot_prompt: str | None = None) -> Authorization:
        """A fresh authorize URL with its own state, nonce and PKCE verifier (no call made)."""
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(48)
        extra: dict[str, str] = {}
        if bot_prompt in BOT_PROMPTS:
            extra["bot_prompt"] = bot_prompt
        url = prepare_grant_uri(
            self.login_origin + "/oauth2/v2.1/authorize",
            client_id=self.channel_id,
            response_type="code",
            redirect_uri=redirect_uri,
            scope=SCOPE,
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
            **extra,
        )
        return Authorization(url=url, state=state, nonce=nonce, code_verifier=verifier)

    def exchange_code(
        self, code: str, *, redirect_uri: str, code_verifier: str, nonce: str
    ) -> LineIdentity:
        """Exchange ``code`` (once) and verify the ID token; the person it names."""
        secrets = (self._secret, code, code_verifier)
        response = self._call(
            "POST",
            "/oauth2/v2.1/token",
            secrets,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": self.channel_id,
                "client_secret": self._secret,
                "code_verifier": code_verifier,
            },
        )
        body = _json_object(response)
        if response.status_code != 200 or body is None:
            reason = (body or {}).get("error") or f"HTTP {response.status_code}"
            raise LineLoginError(f"LINE refused the code ({_safe(str(reason), *secrets)})")
        id_token, access_token = body.get("id_token"), body.get("access_token")
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise LineLoginError("LINE's token answer holds no ID token")
        claims = self.verify_id_token(id_token, nonce=nonce)
        name = claims.get("name")
        return LineIdentity(
            user_id=claims["sub"],
            name=name if isinstance(name, str) else "",
            access_token=access_token,
        )

    def verify_id_token(self, id_token: str, *, nonce: str, now: int | None = None) -> dict:
        """The claims of ``id_token`` once its signature and claims are checked."""
        try:
            token = jwt.decode(id_token, OctKey.import_key(self._secret), algorithms=["HS256"])
        except (JoseError, ValueError) as error:
            raise LineLoginError(f"the ID token's signature does not verify ({error})") from None
        registry = jwt.JWTClaimsRegistry(
            now=now if now is not None else int(time.time()),
            leeway=LEEWAY,
            iss={"essential": True, "value": ISSUER},
            aud={"essential": True, "value": self.channel_id},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(token.claims)
        except JoseError as error:
            raise LineLoginError(f"the ID token is not valid here ({error})") from None
        return dict(token.claims)

    def friendship(self, access_token: str) -> bool:
        """Whether the person is a friend of the bot linked to the channel."""
        response = self._call(
            "GET",
            "/friendship/v1/status",
            (access_token,),
            headers={"Authorization": f"Bearer {access_token}"},
        )
        body = _json_object(response)
        if response.status_code != 200 or body is None or "friendFlag" not in body:
            raise LineLoginError(f"LINE gave no friendship status (HTTP {response.status_code})")
        return body["friendFlag"] is True

    def revoke(self, access_token: str) -> None:
        """Revoke a LINE access token this site has no further use for."""
        response = self._call(
            "POST",
            "/oauth2/v2.1/revoke",
            (self._secret, access_token),
            data={
                "access_token": access_token,
                "client_id": self.channel_id,
                "client_secret": self._secret,
            },
        )
        if response.status_code != 200:
            raise LineLoginError(f"LINE did not revoke the token (HTTP {response.status_code})")

    def _call(
        self, method: str, path: str, secrets: tuple[str, ...], **kwargs: Any
    ) -> requests.Response:
        url = self.api_base_url + path
        try:
            return self.session.request(
                method, url, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except requests.RequestException as error:
            what = _safe(type(error).__name__, *secrets)
            raise LineLoginError(f"no answer from LINE at {url} ({what})") from None


def _safe(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[secret]")
    return text[:120]


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
