"""A fake LINE Login v2.1 (OpenID Connect) over real HTTP, beside the fake Messaging API.

What it serves (line-platform.md part C, as LINE documents it):

* ``GET /oauth2/v2.1/authorize`` checks the request as LINE does (``response_type=code``,
  the channel id, the registered callback URL, ``state``, ``scope`` with ``openid``, PKCE
  S256 when a challenge is given) and shows a consent page: which LINE account signs in,
  *Add the bot as a friend* when ``bot_prompt`` is given, **Allow** and **Cancel**. A request
  it refuses gets an error page and no redirect, as LINE's own. ``POST`` of that page answers
  the callback: ``code``, ``state`` (and ``friendship_status_changed`` with ``bot_prompt``),
  or ``error=access_denied``.
* ``POST /oauth2/v2.1/token`` exchanges a code once (client secret, callback URL and the PKCE
  verifier checked) for an access token and an ID token **signed HS256 with the channel
  secret**, claims ``iss``, ``sub``, ``aud``, ``exp``, ``iat``, ``nonce``, ``amr``, ``name``.
* ``POST /oauth2/v2.1/verify`` (an ID token), ``GET /v2/profile``,
  ``GET /friendship/v1/status`` and ``POST /oauth2/v2.1/revoke`` for its access tokens.

LINE serves Login's token endpoints on ``api.line.me`` beside the Messaging API (the same
``/oauth2/v2.1/token`` path issues channel tokens, told apart by ``grant_type``), so
:meth:`FakeLineLogin.wrap` puts both fakes behind one port: Login's requests come here, every
other goes to the fake Messaging API (``tests/fakes/line_api.py``), which holds the requests
it receives to LY's OpenAPI documents (there is no such document for LINE Login).

Tests can change what the next ID tokens say (``id_token_changes``, ``id_token_key``) to see
the site refuse them, and count the token requests (``token_requests``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin

import requests
from joserfc import jwt
from joserfc.jwk import OctKey
from werkzeug.wrappers import Request, Response

from tests.fakes.line_api import FakeLine
from tests.servers import LiveServer

LOGIN_CHANNEL_ID = "2001234567"
LOGIN_CHANNEL_SECRET = "fake-login-channel-secret-0123456789ab"
ISSUER = "https://access.line.me"
ALICE = "U" + "a11ce" + "0" * 27
BOB = "U" + "b0b" + "0" * 29
CODE_TTL = 600
ACCESS_TOKEN_TTL = 30 * 24 * 3600
ID_TOKEN_TTL = 3600


@dataclass
class Grant:
    """An authorization code's facts, until it is exchanged (once)."""

    user_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    expires: float


@dataclass
class FakeLineLogin:
    """The fake's state: its accounts, who is a friend of the linked bot, what was issued."""

    channel_id: str = LOGIN_CHANNEL_ID
    channel_secret: str = LOGIN_CHANNEL_SECRET
    #: Callback URLs registered in the "console"; a request naming another one is refused.
    redirect_uris: set[str] = field(default_factory=set)
    #: LINE accounts that can sign in here: user id → display name.
    accounts: dict[str, str] = field(default_factory=lambda: {ALICE: "Alice", BOB: "Bob"})
    #: Users who are friends of the bot linked to the channel.
    friends: set[str] = field(default_factory=set)
    #: Claims the next ID tokens carry instead (None removes the claim).
    id_token_changes: dict[str, Any] = field(default_factory=dict)
    #: The key the next ID tokens are signed with instead of the channel secret.
    id_token_key: str | None = None
    #: When true the friendship endpoint answers 500, as a LINE outage would.
    friendship_down: bool = False
    #: The form of every ``authorization_code`` request to the token endpoint.
    token_requests: list[dict[str, str]] = field(default_factory=list)
    #: The query of every authorize request.
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    codes: dict[str, Grant] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- test helpers --------------------------------------------------------------------

    def id_token(self, user_id: str, *, nonce: str | None, now: float | None = None) -> str:
        """An ID token as LINE signs it for a web login (HS256, the channel secret)."""
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": user_id,
            "aud": self.channel_id,
            "exp": issued + ID_TOKEN_TTL,
            "iat": issued,
            "amr": ["linesso"],
            "name": self.accounts.get(user_id, "LINE user"),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        for name, value in self.id_token_changes.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        key = OctKey.import_key((self.id_token_key or self.channel_secret).encode())
        return jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, key)

    def approve(
        self,
        base_url: str,
        authorize_url: str,
        *,
        user_id: str = ALICE,
        add_friend: bool = False,
        cancel: bool = False,
        session: requests.Session | None = None,
    ) -> str:
        """Go through the consent page over HTTP as a person would; the callback URL LINE
        sends the browser back to (with the code, or the error)."""
        http = session or requests.Session()
        page = http.get(authorize_url, timeout=10, allow_redirects=False)
        assert page.status_code == 200, page.text
        query = authorize_url.split("?", 1)[1]
        form = {"query": query, "user": user_id, "decision": "cancel" if cancel else "allow"}
        if add_friend:
            form["add_friend"] = "on"
        answer = http.post(
            base_url + "/oauth2/v2.1/authorize", data=form, timeout=10, allow_redirects=False
        )
        assert answer.status_code == 302, answer.text
        return answer.headers["Location"]

    # --- routing -------------------------------------------------------------------------

    def wrap(self, other) -> Any:
        """One WSGI app: LINE Login's requests here, every other one to ``other``."""

        def app(environ, start_response):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            if self._is_login_request(environ, body):
                return self(environ, start_response)
            return other(environ, start_response)

        return app

    def _is_login_request(self, environ, body: bytes) -> bool:
        path, method = environ.get("PATH_INFO", ""), environ["REQUEST_METHOD"]
        if path in ("/oauth2/v2.1/authorize", "/v2/profile", "/friendship/v1/status"):
            return True
        if path == "/favicon.ico":
            return True  # a browser on the consent page asks; a 404 here, not a broken contract
        if method != "POST":
            return False
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        if path == "/oauth2/v2.1/token":
            return form.get("grant_type") in ("authorization_code", "refresh_token")
        if path == "/oauth2/v2.1/verify":
            return "id_token" in form
        if path == "/oauth2/v2.1/revoke":
            return form.get("client_id") == self.channel_id
        return False

    def __call__(self, environ, start_response):
        request = Request(environ)
        path = request.path
        if path == "/oauth2/v2.1/authorize":
            response = self._authorize(request)
        elif path == "/oauth2/v2.1/token":
            response = self._token(request)
        elif path == "/oauth2/v2.1/verify":
            response = self._verify(request)
        elif path == "/oauth2/v2.1/revoke":
            response = self._revoke(request)
        elif path == "/v2/profile":
            response = self._profile(request)
        else:
            response = self._friendship(request)
        response.headers["Cache-Control"] = "no-store"
        return response(environ, start_response)

    # --- authorize -----------------------------------------------------------------------

    def _refusal(self, params: dict[str, str]) -> str | None:
        """Why LINE would refuse this authorize request with its own error page, or None."""
        if params.get("client_id") != self.channel_id:
            return "invalid client_id"
        if params.get("redirect_uri") not in self.redirect_uris:
            return "redirect_uri does not match the registered callback URL"
        if params.get("response_type") != "code":
            return "unsupported response_type"
        if not params.get("state"):
            return "state is required"
        if "openid" not in params.get("scope", "").split():
            return "scope must include openid"
        if params.get("code_challenge") and params.get("code_challenge_method") != "S256":
            return "code_challenge_method must be S256"
        if params.get("bot_prompt") not in (None, "normal", "aggressive"):
            return "invalid bot_prompt"
        return None

    def _authorize(self, request: Request) -> Response:
        if request.method == "GET":
            params = dict(request.args)
            with self._lock:
                self.authorize_requests.append(params)
            refusal = self._refusal(params)
            if refusal:
                return _page("Error", f"<p>{escape(refusal)}</p>", 400)
            return self._consent_page(params, request.query_string.decode())
        query = request.form.get("query", "")
        params = dict(parse_qsl(query))
        refusal = self._refusal(params)
        if refusal:
            return _page("Error", f"<p>{escape(refusal)}</p>", 400)
        back: dict[str, str] = {}
        if request.form.get("decision") != "allow":
            back = {"error": "access_denied", "error_description": "The user has denied."}
        else:
            user_id = request.form.get("user", "")
            if user_id not in self.accounts:
                return _page("Error", "<p>unknown account</p>", 400)
            code = secrets.token_urlsafe(16)
            with self._lock:
                self.codes[code] = Grant(
                    user_id=user_id,
                    redirect_uri=params["redirect_uri"],
                    scope=params["scope"],
                    nonce=params.get("nonce"),
                    code_challenge=params.get("code_challenge"),
                    expires=time.time() + CODE_TTL,
                )
                changed = "add_friend" in request.form and user_id not in self.friends
                if changed:
                    self.friends.add(user_id)
            back = {"code": code}
            if params.get("bot_prompt"):
                back["friendship_status_changed"] = "true" if changed else "false"
        back["state"] = params["state"]
        target = params["redirect_uri"]
        target += ("&" if "?" in target else "?") + urlencode(back)
        return Response(status=302, headers={"Location": target})

    def _consent_page(self, params: dict[str, str], query: str) -> Response:
        options = "".join(
            f'<label><input type="radio" name="user" value="{escape(uid)}"'
            f"{' checked' if index == 0 else ''}> {escape(name)}</label><br>"
            for index, (uid, name) in enumerate(self.accounts.items())
        )
        friend = ""
        if params.get("bot_prompt"):
            checked = " checked" if params["bot_prompt"] == "aggressive" else ""
            friend = (
                f'<p><label><input type="checkbox" name="add_friend"{checked}> '
                "Add the bot as a friend</label></p>"
            )
        body = (
            '<form method="post" action="/oauth2/v2.1/authorize">'
            f'<input type="hidden" name="query" value="{escape(query)}">'
            f"<fieldset><legend>Log in as</legend>{options}</fieldset>{friend}"
            '<button type="submit" name="decision" value="allow">Allow</button> '
            '<button type="submit" name="decision" value="cancel">Cancel</button></form>'
        )
        return _page("LINE Login", body)

    # --- token endpoints -----------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        form = dict(request.form)
        with self._lock:
            self.token_requests.append(form)
            grant = self.codes.pop(form.get("code", ""), None)
        if form.get("client_id") != self.channel_id or form.get("client_secret") != (
            self.channel_secret
        ):
            return _error("invalid_client", "Invalid client")
        if grant is None or grant.expires < time.time():
            return _error("invalid_grant", "Invalid authorization code.")
        if form.get("redirect_uri") != grant.redirect_uri:
            return _error("invalid_grant", "redirect_uri does not match.")
        if grant.code_challenge is not None:
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if challenge != grant.code_challenge:
                return _error("invalid_grant", "code_verifier does not match.")
        access = "fake-login-" + secrets.token_urlsafe(24)
        with self._lock:
            self.access_tokens[access] = grant.user_id
        answer = {
            "access_token": access,
            "expires_in": ACCESS_TOKEN_TTL,
            "refresh_token": secrets.token_urlsafe(16),
            "scope": grant.scope,
            "token_type": "Bearer",
        }
        if "openid" in grant.scope.split():
            answer["id_token"] = self.id_token(grant.user_id, nonce=grant.nonce)
        return _json(answer)

    def _verify(self, request: Request) -> Response:
        form = request.form
        if form.get("client_id") != self.channel_id:
            return _error("invalid_request", "Invalid client_id.")
        try:
            token = jwt.decode(form.get("id_token", ""), OctKey.import_key(self.channel_secret))
        except Exception:  # noqa: BLE001 - LINE answers every bad token alike
            return _error("invalid_request", "Invalid IdToken.")
        claims = token.claims
        if claims.get("aud") != self.channel_id or claims.get("iss") != ISSUER:
            return _error("invalid_request", "Invalid IdToken Audience.")
        if claims.get("exp", 0) < time.time():
            return _error("invalid_request", "IdToken expired.")
        if "nonce" in form and claims.get("nonce") != form["nonce"]:
            return _error("invalid_request", "Invalid IdToken Nonce.")
        return _json(claims)

    def _revoke(self, request: Request) -> Response:
        form = request.form
        if form.get("client_secret") != self.channel_secret:
            return _error("invalid_client", "Invalid client")
        with self._lock:
            self.access_tokens.pop(form.get("access_token", ""), None)
            self.revoked.append(form.get("access_token", ""))
        return Response(b"", status=200)

    def _bearer_user(self, request: Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        with self._lock:
            return self.access_tokens.get(auth[7:]) if auth.startswith("Bearer ") else None

    def _profile(self, request: Request) -> Response:
        user_id = self._bearer_user(request)
        if user_id is None:
            return _json({"message": "invalid token"}, 401)
        return _json({"userId": user_id, "displayName": self.accounts.get(user_id, "")})

    def _friendship(self, request: Request) -> Response:
        user_id = self._bearer_user(request)
        if request.path != "/friendship/v1/status":
            return _json({"message": "Not found"}, 404)
        if user_id is None:
            return _json({"message": "invalid token"}, 401)
        if self.friendship_down:
            return _json({"message": "Internal server error"}, 500)
        with self._lock:
            return _json({"friendFlag": user_id in self.friends})


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


def _error(code: str, description: str, status: int = 400) -> Response:
    return _json({"error": code, "error_description": description}, status)


def _page(title: str, body: str, status: int = 200) -> Response:
    html = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"</head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return Response(html, status=status, mimetype="text/html")


class FakeLineLoginServer:
    """LINE Login and the Messaging API, both fakes, on one free loopback port."""

    def __init__(
        self, login: FakeLineLogin | None = None, messaging: FakeLine | None = None
    ) -> None:
        self.login = login or FakeLineLogin()
        self.messaging = messaging or FakeLine()
        self._server = LiveServer(self.login.wrap(self.messaging)).start()
        self.url = self._server.url

    def approve(self, authorize_url: str, **kwargs) -> str:
        """:meth:`FakeLineLogin.approve` on this server; a relative callback made absolute."""
        return urljoin(authorize_url, self.login.approve(self.url, authorize_url, **kwargs))

    def stop(self) -> None:
        self._server.stop()


def serve_fakes(login: FakeLineLogin | None = None, messaging: FakeLine | None = None):
    """For a fixture: ``yield from serve_fakes()`` gives both fakes running, stopped after;
    the Messaging API's requests are held to LINE's documents (``serve_fake``)."""
    server = FakeLineLoginServer(login, messaging)
    try:
        yield server
    finally:
        server.stop()
    server.messaging.assert_contract_kept()


def login_config(server: FakeLineLoginServer, callback_url: str, **overrides) -> dict:
    """The site's LINE Login configuration aimed at the fakes (the callback registered)."""
    server.login.redirect_uris.add(callback_url)
    config = {
        "LINE_LOGIN_CHANNEL_ID": server.login.channel_id,
        "LINE_LOGIN_CHANNEL_SECRET": server.login.channel_secret,
        "LINE_LOGIN_ORIGIN": server.url,
        "RELAY_LINE_API_BASE_URL": server.url,
        "LINE_LOGIN_TIMEOUT": 5,
    }
    config.update(overrides)
    return config
