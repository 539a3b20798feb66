"""A chunked request body is held to ``MAX_CONTENT_LENGTH`` like one with a Content-Length.

Werkzeug checks the limit against the Content-Length header. A body sent with
``Transfer-Encoding: chunked`` has none: werkzeug then cuts its stream at the limit without a
word, so an oversized JSON body read as invalid JSON (400 ``invalid_json``) and an oversized
Notify form as a form without its fields (400 ``message: required``), where the answer is a 413.

:class:`ChunkedBodyLimit` (WSGI middleware) reads such a body before the app sees it, up to one
byte past the limit, into a spooled temporary file (memory up to 1 MiB, disk past it), and
hands it on with a Content-Length: the exact length when it fits; when it does not, the limit
plus one, so that werkzeug raises its 413 at the first read, wherever that happens (CSRF check,
form, JSON), and each part of the site answers it in its own shape, exactly as for a
Content-Length body. The rest of an oversized body is never read.

Only servers that decode chunked framing themselves set ``wsgi.input_terminated`` (werkzeug's
development server, gunicorn); with any other, werkzeug's own safe fallback (an empty body)
stays as it was.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping
from typing import Any

COPY_BLOCK = 64 * 1024
SPOOL_IN_MEMORY = 1024 * 1024


class ChunkedBodyLimit:
    """Wrap a WSGI app; ``config`` is read at each request (tests change the limit)."""

    def __init__(self, app: Callable, config: Mapping[str, Any]) -> None:
        self.app = app
        self.config = config

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        limit = self.config.get("MAX_CONTENT_LENGTH")
        if limit is not None and _is_unframed_chunked(environ):
            body = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
            size = _copy(environ["wsgi.input"], body, limit + 1)
            body.seek(0)
            environ["wsgi.input"] = body
            environ["CONTENT_LENGTH"] = str(size)
            # The body is no longer chunked: it ends at CONTENT_LENGTH, like any other (werkzeug
            # ignores a Content-Length beside "Transfer-Encoding: chunked").
            environ.pop("wsgi.input_terminated", None)
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            result = self.app(environ, start_response)
            return _closing(result, body)
        return self.app(environ, start_response)


def _is_unframed_chunked(environ: Mapping[str, Any]) -> bool:
    return (
        not environ.get("CONTENT_LENGTH")
        and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        and bool(environ.get("wsgi.input_terminated"))
    )


def _copy(source, target, most: int) -> int:
    """Copy at most ``most`` bytes; returns how many were copied."""
    copied = 0
    while copied < most:
        block = source.read(min(COPY_BLOCK, most - copied))
        if not block:
            break
        target.write(block)
        copied += len(block)
    return copied


def _closing(result: Iterable[bytes], body) -> Iterable[bytes]:
    """The app's answer, closing the spooled body once the server is done with it."""
    try:
        yield from result
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
        body.close()
