"""The API's fast path: the common ``POST /api/v1/notifications`` answered before Flask.

A trivial Flask endpoint costs about 0.46 M instructions a request; Flask's request context,
routing, hooks, marshmallow and the ORM session around an accept cost several times that
(bench/README.md, "Issue 18"). The common accept — JSON, an API key, one ``connection``, a
message with an optional sticker, image URLs and ``notification_disabled``, with or without an
``Idempotency-Key`` — needs none of it. This WSGI middleware sits just inside the site's
proxy and body-limit middleware (so it sees the request as Flask would) and:

1. reads the request: the key from ``Authorization: Bearer``, the body (``Content-Length``
   bytes, JSON), checked by the same rules as the general path — the connection ref by
   :func:`~notify_site.api.schemas.fields.read_connection_ref`, the content by
   :func:`~notify_site.notify_content.check_content`, the idempotency key by
   :func:`~notify_site.services.idempotency.is_usable_key`;
2. counts the request against the key's rate limit (notify_site/ratelimit.py, the same
   counter and headers);
3. queues it with :class:`~notify_site.services.fast_accept.FastAccept` (one read, one
   shared commit) and answers 202 with the general path's exact body and headers.

Whenever any step is not the plain case — another content type or shape, an unknown field,
``connections``, ``send_at``, a bad value, an untrusted host, a body over 64 KiB or chunked,
a limit reached, a key or connection that is not simply valid — the request goes on to Flask
unchanged (its body put back), and the general path answers it, errors and their wording in
the caller's language included. A request is counted against its limit once: the counts go
along in the environ. ``API_FAST_ACCEPT = False`` leaves every request to Flask.
"""

from __future__ import annotations

import io
import json
import threading
from typing import Any

from flask import Flask
from werkzeug.exceptions import SecurityError
from werkzeug.wsgi import get_host

from notify_site import metrics
from notify_site.api.schemas.fields import read_connection_ref
from notify_site.extensions import db
from notify_site.notify_content import ContentError, check_content
from notify_site.ratelimit import (
    COUNTED_ENVIRON_KEY,
    KEY_LIMITS,
    RateLimitUnavailableError,
    rate_limit_headers,
    shown_count,
)
from notify_site.security import SECURITY_HEADERS
from notify_site.services import group_commit, idempotency
from notify_site.services.api_keys import hash_key, may_be_a_key
from notify_site.services.fast_accept import FastAccept

PATH = "/api/v1/notifications"
ENDPOINT = "api.post_notification"
#: The rate limit's scope: the API blueprint's name (notify_site/api/views.py).
LIMIT_SCOPE = "api"
#: Larger bodies go to Flask (a full message, sticker and two URLs take under 20 KiB).
BODY_MAX_BYTES = 64 * 1024
FIELDS = frozenset({"connection", "message", "sticker", "image", "notification_disabled"})
STICKER_FIELDS = frozenset({"package_id", "sticker_id"})
IMAGE_FIELDS = frozenset({"thumbnail_url", "fullsize_url"})
STATUS = "202 ACCEPTED"


def install(app: Flask) -> None:
    """Put the fast path in front of ``app``'s WSGI entry (before the proxy and body-limit
    middleware wrap it), unless ``API_FAST_ACCEPT`` is false."""
    if app.config["API_FAST_ACCEPT"]:
        app.wsgi_app = FastAcceptMiddleware(app, app.wsgi_app)  # type: ignore[method-assign]


class FastAcceptMiddleware:
    """WSGI: answers the plain accept itself, leaves everything else to ``wsgi_app``."""

    def __init__(self, app: Flask, wsgi_app: Any) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self._accept: FastAccept | None = None
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Any) -> Any:
        if environ.get("PATH_INFO") == PATH and environ.get("REQUEST_METHOD") == "POST":
            answer = self._answer(environ)
            if answer is not None:
                headers, body = answer
                start_response(STATUS, headers)
                return [body]
        return self.wsgi_app(environ, start_response)

    @property
    def accept(self) -> FastAccept:
        """The app's :class:`FastAccept`, made on first use (the engine exists by then)."""
        if self._accept is None:
            with self._lock:  # one per app, however many threads ask first
                if self._accept is None:
                    self._accept = self._make_accept()
        return self._accept

    def _make_accept(self) -> FastAccept:
        app = self.app
        with app.app_context():
            engine = db.engine
        if not app.config["GROUP_COMMIT"]:
            return FastAccept(engine, None)
        window = app.config["GROUP_COMMIT_WINDOW_MS"] / 1000

        def committer() -> group_commit.GroupCommitter:
            return group_commit.committer(app.extensions, engine, window)

        return FastAccept(engine, committer)

    def _answer(self, environ: dict) -> tuple[list[tuple[str, str]], bytes] | None:
        """The 202's headers and body, or None to leave the request to Flask."""
        scheme, _, credentials = environ.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not may_be_a_key(credentials):
            return None
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        if mimetype != "application/json" or "HTTP_TRANSFER_ENCODING" in environ:
            return None
        idempotency_key = environ.get("HTTP_IDEMPOTENCY_KEY")
        if idempotency_key is not None and not idempotency.is_usable_key(idempotency_key):
            return None
        trusted_hosts = self.app.config.get("TRUSTED_HOSTS")
        if trusted_hosts:
            try:
                get_host(environ, trusted_hosts)
            except SecurityError:
                return None
        body = _read_body(environ)
        if body is None:
            return None
        request = _read_request(body)
        if request is None:
            return None
        ref, content = request

        key_hash = hash_key(credentials)
        limit_headers: list[tuple[str, str]] = []
        key_limits = self.app.extensions.get(KEY_LIMITS)
        if key_limits is not None:
            try:
                counts = key_limits.hit(LIMIT_SCOPE, "key:" + key_hash)
            except RateLimitUnavailableError:
                return None  # Flask counts again, and answers 503 if it still cannot
            environ[COUNTED_ENVIRON_KEY] = counts
            shown = shown_count(counts)
            if shown.breached:
                return None  # Flask answers the 429, in the caller's language
            limit_headers = rate_limit_headers(shown)

        queued = self.accept.accept(key_hash, ref, content, idempotency_key)
        if queued is None:
            return None
        item = {
            "id": queued.id,
            "connection": {"id": queued.connection.id, "label": queued.connection.label},
            "status": queued.status,
            "url": f"{environ.get('SCRIPT_NAME', '')}{PATH}/{queued.id}",
        }
        answer = (
            json.dumps({"notifications": [item]}, ensure_ascii=False, separators=(",", ":")) + "\n"
        ).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(answer))),
            *limit_headers,
            *SECURITY_HEADERS,
        ]
        if environ.get("wsgi.url_scheme") == "https":
            headers.append(("Strict-Transport-Security", self.app.extensions["notify_site.hsts"]))
        metrics.count_api_answer("POST", ENDPOINT, 202)
        return headers, answer


def _read_body(environ: dict) -> bytes | None:
    """The request's body, put back for Flask to read again; None when it is not one to read
    here (no length, too long, or shorter than announced)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if not 0 < length <= BODY_MAX_BYTES:
        return None
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body if len(body) == length else None


def _read_request(body: bytes) -> tuple[int | str, Any] | None:
    """The connection ref and checked content of a plain accept's JSON body, else None."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if type(data) is not dict or "connection" not in data or not data.keys() <= FIELDS:
        return None
    ref = read_connection_ref(data["connection"])
    message = data.get("message")
    silent = data.get("notification_disabled", False)
    if ref is None or type(message) is not str or type(silent) is not bool:
        return None
    sticker = data.get("sticker", {})
    image = data.get("image", {})
    if "sticker" in data and not _plain_object(sticker, STICKER_FIELDS, int):
        return None
    if "image" in data and not _plain_object(image, IMAGE_FIELDS, str):
        return None
    try:
        content = check_content(
            message=message,
            sticker_package_id=sticker.get("package_id"),
            sticker_id=sticker.get("sticker_id"),
            image_thumbnail_url=image.get("thumbnail_url"),
            image_fullsize_url=image.get("fullsize_url"),
            notification_disabled=silent,
        )
    except ContentError:
        return None
    return ref, content


def _plain_object(value: Any, fields: frozenset[str], kind: type) -> bool:
    """Whether ``value`` is a JSON object of exactly ``fields``, each of type ``kind``."""
    return (
        type(value) is dict
        and value.keys() == fields
        and all(type(field) is kind for field in value.values())
    )
