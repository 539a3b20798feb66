"""English texts the site stores, shown in the page's language.

A notification's ``last_error`` and a connection's ``status_detail`` are data: they are written
in English (the API returns them as they are, and a worker has no reader's language), so a
page translates them when it shows them (the ``stored_text`` filter, and the ``*_text`` fields
of the pages' own JSON).

Two kinds of text are translated:

* fixed texts, marked with :func:`N_` where they are defined (``CONNECTION_REVOKED``...);
* texts built around someone else's words (``gave up after 5 attempts: <server message>``,
  ``500: <server message>``): the site's part is translated, the server's words are left as
  they are (they are the Notify server's, in its own language).

Anything else (a server's message stored on its own) is shown unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from flask_babel import gettext

# The fixed texts, as marked; only these are looked up in the catalogue.
_FIXED: set[str] = set()


def N_(text: str) -> str:  # noqa: N802 - the conventional name of gettext's no-op marker
    """Mark an English text that is stored and shown translated later (see the module)."""
    _FIXED.add(text)
    return text


def _gave_up(match: re.Match[str]) -> str:
    return gettext(
        "gave up after %(count)s attempts: %(reason)s",
        count=match["count"],
        reason=translate(match["reason"]),
    )


def _server_answered(match: re.Match[str]) -> str:
    return gettext(
        "Notify server answered %(status)s: %(message)s",
        status=match["status"],
        message=translate(match["message"]),
    )


def _status_prefix(match: re.Match[str]) -> str:
    return f"{match['status']}: {translate(match['message'])}"


def _no_answer(match: re.Match[str]) -> str:
    return gettext(
        "no answer from the Notify server at %(url)s within %(seconds)s s (%(detail)s)",
        url=match["url"],
        seconds=match["seconds"],
        detail=match["detail"],
    )


def _no_connection(match: re.Match[str]) -> str:
    return gettext(
        "could not connect to the Notify server at %(url)s (%(detail)s)",
        url=match["url"],
        detail=match["detail"],
    )


def _request_failed(match: re.Match[str]) -> str:
    return gettext(
        "request to the Notify server at %(url)s failed (%(detail)s)",
        url=match["url"],
        detail=match["detail"],
    )


# The shapes of the texts built in notify_site.services.retry and notify_site.notify_client.
_PATTERNS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"gave up after (?P<count>\d+) attempts: (?P<reason>.*)", re.S), _gave_up),
    (
        re.compile(r"Notify server answered (?P<status>\d{3}): (?P<message>.*)", re.S),
        _server_answered,
    ),
    (re.compile(r"(?P<status>\d{3}): (?P<message>.*)", re.S), _status_prefix),
    (
        re.compile(
            r"no answer from the Notify server at (?P<url>\S+) within (?P<seconds>[\d.]+) s"
            r" \((?P<detail>.*)\)",
            re.S,
        ),
        _no_answer,
    ),
    (
        re.compile(
            r"could not connect to the Notify server at (?P<url>\S+) \((?P<detail>.*)\)", re.S
        ),
        _no_connection,
    ),
    (
        re.compile(r"request to the Notify server at (?P<url>\S+) failed \((?P<detail>.*)\)", re.S),
        _request_failed,
    ),
]


def translate(text: str | None) -> str | None:
    """``text`` in the page's language when the site wrote it, else unchanged (None too)."""
    if not text:
        return text
    if text in _FIXED:
        return gettext(text)
    for pattern, render in _PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return render(match)
    return text


def _load_marked_texts() -> None:
    """Import the modules that mark stored texts, so the filter knows them in any process."""
    from notify_site import notify_client  # noqa: F401
    from notify_site.services import admin, connections, delivery, retry  # noqa: F401


def init_app(app) -> None:
    app.jinja_env.filters["stored_text"] = lambda text: translate(text) or ""
    _load_marked_texts()
