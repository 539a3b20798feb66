"""A fake LINE Messaging API over real HTTP, for the relay's channel mode.

It serves the endpoints the relay uses (push, reply, profile, group summary, group and room
member profiles, member counts, bot info, quota and consumption, and the v2.1 channel access
token issue / verify / revoke), records every call, and can be
told to answer the next calls to a path with chosen statuses (500, 429, 400...). Pushes follow
LINE's retry-key rule: a key already accepted answers 409 and sends nothing again. It counts
the month's consumption as LINE does (one unit per recipient: a group's members) and, over
``quota``, answers LINE's monthly-limit 429 and sends nothing. (One fake
server, past 400 lines on purpose: its endpoints share the recorded state.)

**Held to LINE's own documents.** Every request the fake receives is checked against the
matching operation of LY's OpenAPI documents (``tests/fakes/line_contract.py``: parameters
such as ``X-Line-Retry-Key``, the Bearer token, the body's schema), and so is every answer the
fake gives, strictly (no field LINE does not document). A request LINE would refuse gets a 400
with LINE's error body, as LINE would answer; either kind of violation is also recorded in
``violations``, and :func:`serve_fake` (like ``tests/fakes/line_live.fake_line_with_alice``)
fails the test at teardown listing them — so a refused request cannot pass unseen even when
the relay retries it or shrugs the 400 off. A test that sends a bad request on purpose reads
and clears ``violations`` itself.

**Adding an operation** (the quota, LINE Login and later work extend this fake): add a branch
to :meth:`FakeLine._route` (or :meth:`FakeLine._oauth` for the token endpoints) that answers
what LINE documents for it, with :meth:`FakeLine._json` and :meth:`FakeLine._error`. Nothing
else is needed: the contract finds the operation in the documents by method and path and
checks both directions. A path LINE does not document is reported as such; an operation from
another LY document (LINE Login) needs that document's file name added to
``line_contract.API_DOCUMENTS`` (and the file in ``shared/line-openapi``).

Also here: helpers to sign webhook bodies and build events, and pytest fixtures
(``serve_fake`` for a module's ``fake_line`` fixture, ``channel_config``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.wrappers import Request, Response

from tests.fakes.line_contract import Exchange, LineContract, line_contract
from tests.servers import LiveServer

CHANNEL_ID = "1234567890"
CHANNEL_SECRET = "fake-channel-secret-0123456789abcdef"
STATIC_TOKEN = "fake-long-lived-channel-token"
BOT_USER_ID = "U" + "b" * 32
#: LINE's 429 message once the channel's month is spent (line-platform.md B5).
MONTHLY_LIMIT_MESSAGE = MONTHLY_LIMIT = "You have reached your monthly limit."


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    #: When the fake received it (time.monotonic(); the quota benchmark's latencies).
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> Any:
        return json.loads(self.body or b"null")

    @property
    def form(self) -> dict[str, str]:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(self.body.decode()))

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class FakeLine:
    """The fake's state; tests read ``calls`` and set profiles, groups, failures, quota."""

    valid_tokens: set[str] = field(default_factory=lambda: {STATIC_TOKEN})
    profiles: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    #: Who is in each group or room (its id → user ids), for the member profile endpoints.
    members: dict[str, set[str]] = field(default_factory=dict)
    #: Members of each group or room (``/members/count``; what a push to it costs). A group
    #: or room not listed has 1 member.
    member_counts: dict[str, int] = field(default_factory=dict)
    quota: int | None = 200
    #: Seconds each push takes to answer (LINE is far away; the quota benchmark sets it).
    push_latency: float = 0.0
    #: Units spent this month, counted as LINE counts them: one per recipient of each push.
    consumption: int = 0
    bot_name: str = "Notify Relay Bot"
    token_expires_in: int = 30 * 24 * 3600
    public_jwk: dict | None = None
    calls: list[Call] = field(default_factory=list)
    accepted_keys: dict[str, dict] = field(default_factory=dict)
    issued: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    assertions: list[str] = field(default_factory=list)
    #: Every rule of LINE's documents a request to the fake, or an answer of it, broke.
    violations: list[str] = field(default_factory=list)
    contract: LineContract = field(default_factory=line_contract, repr=False)
    _failures: dict[str, list[int | tuple[int, dict]]] = field(default_factory=dict)
    _holds: dict[str, threading.Event] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    # --- test controls -------------------------------------------------------------------

    def fail_next(self, path: str, *statuses: int | tuple[int, dict]) -> None:
        """The next calls to ``path`` answer these statuses (with LINE's error body, or the
        body given as ``(status, body)``: a 400 with ``details``, say)."""
        with self._lock:
            self._failures.setdefault(path, []).extend(statuses)

    def hold(self, path: str, release: threading.Event) -> None:
        """Calls to ``path`` are recorded, then wait (at most 15 s) for ``release`` to answer."""
        with self._lock:
            self._holds[path] = release

    def calls_to(self, path: str, method: str | None = None) -> list[Call]:
        with self._lock:
            return [
                c for c in self.calls if c.path == path and (method is None or c.method == method)
            ]

    def assert_contract_kept(self) -> None:
        """Fail, listing them, if any request or answer broke LINE's documents."""
        with self._lock:
            broken = list(self.violations)
        assert not broken, "LINE's OpenAPI documents were not kept:\n" + "\n".join(broken)

    @property
    def pushes(self) -> list[Call]:
        return self.calls_to("/v2/bot/message/push", "POST")

    @property
    def delivered(self) -> list[dict]:
        """Pushes LINE accepted (one per retry key)."""
        with self._lock:
            return list(self.accepted_keys.values())

    # --- the WSGI app --------------------------------------------------------------------

    def __call__(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        call = Call(
            request.method,
            request.path,
            {k.lower(): v for k, v in request.headers.items()},
            body,
        )
        exchange = Exchange(
            method=request.method,
            # As sent (still percent-encoded): what LINE would match its paths against.
            path=(environ.get("RAW_URI") or request.path).split("?", 1)[0],
            query=environ.get("QUERY_STRING", ""),
            headers=call.headers,
            body=body,
        )
        refused = self.contract.check_request(exchange)
        with self._lock:
            self.calls.append(call)
            self.violations.extend(refused)
            pending = self._failures.get(request.path)
            injected = pending.pop(0) if pending and not refused else None
            held = self._holds.get(request.path)
        if held is not None:
            held.wait(15)
        if refused:
            response = self._error(request.path, 400, "The request does not match the API")
        elif isinstance(injected, tuple):
            response = self._json(injected[1], injected[0])
        elif injected is not None:
            response = self._error(request.path, injected, f"injected {injected}")
        else:
            response = self._route(request, call)
        call.status = response.status_code
        response.headers["X-Line-Request-Id"] = str(uuid.uuid4())
        answered = self.contract.check_response(
            exchange, response.status_code, response.mimetype or "", response.get_data()
        )
        if answered:
            with self._lock:
                self.violations.extend(f"the fake's {line}" for line in answered)
        return response(environ, start_response)

    @staticmethod
    def _json(data: Any, status: int = 200) -> Response:
        return Response(json.dumps(data), status=status, mimetype="application/json")

    @classmethod
    def _error(cls, path: str, status: int, message: str, code: str = "invalid_request"):
        """An error answer in the shape of the document ``path`` belongs to."""
        if path.startswith(("/oauth2/", "/v2/oauth/")):
            return cls._json({"error": code, "error_description": message}, status)
        return cls._json({"message": message}, status)

    def _authorized(self, call: Call) -> bool:
        auth = call.header("authorization") or ""
        return auth.startswith("Bearer ") and auth[7:] in self.valid_tokens

    def _route(self, request: Request, call: Call) -> Response:
        path = request.path
        if path.startswith("/oauth2/") or path.startswith("/v2/oauth/"):
            return self._oauth(request, call)
        if not self._authorized(call):
            return self._error(path, 401, "Authentication failed")
        if path == "/v2/bot/message/push" and request.method == "POST":
            return self._push(call)
        if path == "/v2/bot/message/reply" and request.method == "POST":
            sent = [{"id": str(next(self._ids))} for _ in call.json.get("messages", [])]
            return self._json({"sentMessages": sent})
        if path.startswith("/v2/bot/profile/"):
            user_id = path.rsplit("/", 1)[1]
            if user_id not in self.profiles:
                return self._error(path, 404, "Not found")
            return self._json({"userId": user_id, "displayName": self.profiles[user_id]})
        parts = path.split("/")
        if len(parts) == 7 and parts[3] in ("group", "room") and parts[5] == "member":
            chat_id, user_id = parts[4], parts[6]
            if user_id not in self.members.get(chat_id, set()):
                return self._error(path, 404, "Not found")
            name = self.profiles.get(user_id, "LINE member")
            return self._json({"displayName": name, "userId": user_id})
        if path.startswith("/v2/bot/group/") and path.endswith("/summary"):
            group_id = path.split("/")[4]
            if group_id not in self.groups:
                return self._error(path, 404, "Not found")
            return self._json({"groupId": group_id, "groupName": self.groups[group_id]})
        if path == "/v2/bot/info":
            return self._json(
                {
                    "userId": BOT_USER_ID,
                    "basicId": "@fakebot",
                    "displayName": self.bot_name,
                    "chatMode": "bot",
                    "markAsReadMode": "auto",
                }
            )
        if path.endswith("/members/count") and path.startswith(("/v2/bot/group/", "/v2/bot/room/")):
            return self._json({"count": self.member_counts.get(path.split("/")[4], 1)})
        if path == "/v2/bot/message/quota":
            if self.quota is None:
                return self._json({"type": "none"})
            return self._json({"type": "limited", "value": self.quota})
        if path == "/v2/bot/message/quota/consumption":
            return self._json({"totalUsage": self.consumption})
        return self._error(path, 404, "Not found")

    def _push(self, call: Call) -> Response:
        if self.push_latency:
            time.sleep(self.push_latency)
        key = call.header("x-line-retry-key")
        with self._lock:
            if key and key in self.accepted_keys:
                previous = self.accepted_keys[key]
                response = self._json(
                    {
                        "message": "The retry key is already accepted",
                        "sentMessages": previous["sentMessages"],
                    },
                    409,
                )
                response.headers["x-line-accepted-request-id"] = previous["requestId"]
                return response
            # LINE counts one unit per recipient, whatever the number of message objects:
            # a user costs 1, a group or room its members (line-platform.md B5, B8).
            cost = self.cost_of(call.json.get("to", ""))
            if self.quota is not None and self.consumption + cost > self.quota:
                # Over the month's limit LINE sends nothing and says so (B5).
                return self._error(call.path, 429, MONTHLY_LIMIT_MESSAGE)
            sent = [{"id": str(next(self._ids))} for _ in call.json.get("messages", [])]
            record = {"body": call.json, "retryKey": key, "sentMessages": sent}
            record["requestId"] = str(uuid.uuid4())
            self.accepted_keys[key or f"no-key-{len(self.accepted_keys)}"] = record
            self.consumption += cost
        return self._json({"sentMessages": sent})

    def cost_of(self, to: str) -> int:
        """What a push to ``to`` costs: 1 for a user, the member count for a group or room."""
        if to.startswith(("C", "R")):
            return self.member_counts.get(to, 1)
        return 1

    def _oauth(self, request: Request, call: Call) -> Response:
        path = request.path
        form = call.form
        if path == "/oauth2/v2.1/token" and request.method == "POST":
            assertion = form.get("client_assertion", "")
            self.assertions.append(assertion)
            if (
                form.get("grant_type") != "client_credentials"
                or form.get("client_assertion_type")
                != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                or self.public_jwk is None
            ):
                return self._error(path, 400, "invalid request")
            try:
                token = jwt.decode(assertion, RSAKey.import_key(self.public_jwk))
            except Exception:  # noqa: BLE001 - any bad JWT is a 400 at LINE
                return self._error(path, 400, "invalid client", "invalid_client")
            claims = token.claims
            if claims.get("iss") != CHANNEL_ID or claims.get("exp", 0) < time.time():
                return self._error(path, 400, "invalid client", "invalid_client")
            access = f"fake-v21-{uuid.uuid4().hex}"
            with self._lock:
                self.valid_tokens.add(access)
                self.issued.append(access)
            return self._json(
                {
                    "access_token": access,
                    "expires_in": self.token_expires_in,
                    "token_type": "Bearer",
                    "key_id": f"kid-{len(self.issued)}",
                }
            )
        if path == "/oauth2/v2.1/verify":
            access = request.args.get("access_token", "")
            if access not in self.valid_tokens:
                return self._error(path, 400, "invalid request")
            return self._json({"client_id": CHANNEL_ID, "expires_in": 1000, "scope": "profile"})
        if path == "/v2/oauth/verify":
            if form.get("access_token") not in self.valid_tokens:
                return self._error(path, 400, "invalid request")
            return self._json({"client_id": CHANNEL_ID, "expires_in": 0})
        if path == "/oauth2/v2.1/revoke" and request.method == "POST":
            if form.get("client_id") != CHANNEL_ID or form.get("client_secret") != CHANNEL_SECRET:
                return self._error(path, 400, "invalid client", "invalid_client")
            with self._lock:
                self.valid_tokens.discard(form.get("access_token", ""))
                self.revoked.append(form.get("access_token", ""))
            return Response(b"", status=200)
        return self._error(path, 404, "Not found")


class FakeLineServer:
    """The fake served on a free loopback port, in a thread."""

    def __init__(self, state: FakeLine | None = None) -> None:
        self.state = state or FakeLine()
        self._server = LiveServer(self.state).start()
        self.url = self._server.url

    def stop(self) -> None:
        self._server.stop()


# --- Webhook helpers -----------------------------------------------------------------------


def sign(body: bytes, secret: str = CHANNEL_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def webhook_body(*events: dict) -> bytes:
    return json.dumps({"destination": BOT_USER_ID, "events": list(events)}).encode()


_event_ids = itertools.count(1)


def event(
    kind: str,
    *,
    user: str | None = None,
    group: str | None = None,
    room: str | None = None,
    redelivery: bool = False,
    event_id: str | None = None,
    **extra: Any,
) -> dict:
    """A webhook event as LINE sends it (defaults filled in)."""
    if group:
        source = {"type": "group", "groupId": group}
        if user:
            source["userId"] = user
    elif room:
        source = {"type": "room", "roomId": room}
        if user:
            source["userId"] = user
    else:
        source = {"type": "user", "userId": user or "U" + "1" * 32}
    body = {
        "type": kind,
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": source,
        "webhookEventId": event_id or f"01FAKE{next(_event_ids):020d}",
        "deliveryContext": {"isRedelivery": redelivery},
    }
    if kind not in ("unfollow", "leave", "memberLeft"):
        body["replyToken"] = uuid.uuid4().hex
    if kind == "follow":
        body["follow"] = {"isUnblocked": False}
    body.update(extra)
    return body


def text_message(text: str, **kwargs) -> dict:
    return event(
        "message",
        message={"type": "text", "id": str(next(_event_ids)), "text": text, "quoteToken": "q"},
        **kwargs,
    )


# --- Fixtures ------------------------------------------------------------------------------


def serve_fake(state: FakeLine | None = None):
    """For a fixture: ``yield from serve_fake()`` gives a running fake, stopped afterwards.

    At teardown the test fails if any request or answer broke LINE's documents.
    """
    server = FakeLineServer(state)
    try:
        yield server
    finally:
        server.stop()
    server.state.assert_contract_kept()


def channel_config(fake: FakeLineServer, public_base_url: str, **overrides) -> dict:
    """The relay's channel-mode configuration, aimed at the fake (static token by default)."""
    config = {
        "RELAY_LINE_CHANNEL_ID": CHANNEL_ID,
        "RELAY_LINE_CHANNEL_SECRET": CHANNEL_SECRET,
        "RELAY_LINE_CHANNEL_ACCESS_TOKEN": STATIC_TOKEN,
        "RELAY_LINE_API_BASE_URL": fake.url,
        "RELAY_LINE_API_DATA_BASE_URL": fake.url,
        "RELAY_LINE_BOT_BASIC_ID": "@fakebot",
        "RELAY_PUBLIC_BASE_URL": public_base_url,
        "RELAY_LINE_RETRY_BASE": 0,
        "RELAY_LINE_TIMEOUT": 5,
    }
    config.update(overrides)
    return config
