"""Texts the site stores and shows later: English for the API and the logs, a code for pages.

A notification's last error, a delivery attempt's error and a connection's status detail are
data, written by a worker or a request that has no reader, and read later by the API (which
returns them in English), the logs and the pages (which show them in the reader's language).
Each is kept in three columns named after the text column, e.g. for ``last_error``:

* ``last_error``: the English text, as the API returns it and the logs print it;
* ``last_error_code``: a stable code naming what the site said (a key of :data:`TEMPLATES`),
  or None when the text is someone else's words (a Notify server's message, kept as it came);
* ``last_error_params``: the code's parameters, as JSON: numbers and strings are shown as
  they are (a URL, a server's words), a ``{"code": …, "params": …}`` is a text of the site's
  own, translated in its turn ("gave up after 8 attempts: <could not connect …>").

Pages translate from the code (:func:`shown`, and the ``stored_text`` filter), never from the
English: rewording a template changes what new rows say in English, while every row, old or
new, keeps showing the current translation of its code. A code this version does not know
(a row written by a newer one), or parameters that no longer fit its template, show the
stored English.

Rows written before the codes existed got theirs from migration ``1b68cdc1e014``, which read
the English shapes the site wrote then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext

from notify_site import notify_client


def N_(text: str) -> str:  # noqa: N802 - the conventional name of gettext's no-op marker
    """Mark a template for the catalogue (``pybabel extract -k N_``); it is translated later."""
    return text


#: Every code the site stores, and its English template (the catalogue's msgid).
TEMPLATES: dict[str, str] = {
    # A notification's last error and a delivery attempt's error.
    "connection_revoked": N_("connection revoked"),
    "chat_unreachable": N_("chat unreachable (the bot was blocked or removed from the group)"),
    "cancelled_by_admin": N_("cancelled by an admin"),
    "gave_up": N_("gave up after %(count)s attempts: %(reason)s"),
    "no_answer_recorded": N_("no answer recorded: the worker stopped during the call"),
    # What the Notify server said of a message it accepted as pending (channel-mode relay).
    "refused_monthly_limit": N_("refused: the LINE channel's monthly message limit is reached"),
    "refused_monthly_budget": N_("refused: a monthly LINE message budget at the server is spent"),
    "refused_by_server": N_("refused by the Notify server: %(reason)s"),
    # The Notify client's own failures (notify_client.NotifyError.code).
    notify_client.NO_ANSWER: N_(
        "no answer from the Notify server at %(url)s within %(seconds)s s (%(detail)s)"
    ),
    notify_client.NO_CONNECTION: N_(
        "could not connect to the Notify server at %(url)s (%(detail)s)"
    ),
    notify_client.REQUEST_FAILED: N_("request to the Notify server at %(url)s failed (%(detail)s)"),
    notify_client.UNEXPECTED_ANSWER: N_(
        "the body is not the expected JSON {status: 200, message: ...}"
    ),
    # Written by earlier versions only; kept so that their rows stay translated.
    "server_answered": N_("Notify server answered %(status)s: %(message)s"),
    "status_message": "%(status)s: %(message)s",  # nothing in it to translate
    # A connection's status detail.
    "token_rejected": N_("The Notify server rejected the new token."),
    "name_not_read": N_("Connected; the chat's name could not be read yet."),
    "no_name": N_("The chat's name is not available."),
    "revoked_here": N_("Revoked on this site."),
    "token_invalid": N_("The Notify server says the token is no longer valid."),
    "token_revoked": N_("The Notify server answered 401: the token was revoked."),
}


def register(templates: Mapping[str, str]) -> None:
    """Add the codes another part of the site stores, each with its English template (the
    incoming webhooks register why a post was refused). A code keeps one template."""
    for code, template in templates.items():
        if TEMPLATES.setdefault(code, template) != template:
            raise ValueError(f"stored text code {code!r} is taken")


@dataclass(frozen=True)
class StoredText:
    """One stored text: ``text`` in English, and the ``code`` and ``params`` pages read."""

    text: str
    code: str | None = None
    params: Mapping[str, Any] | None = None

    def as_param(self) -> Any:
        """This text as a parameter of another: its code and parameters, or its words."""
        if self.code is None:
            return self.text
        return {"code": self.code, "params": dict(self.params or {})}


def site_text(code: str, **params: Any) -> StoredText:
    """A text of the site's own: its English, rendered from the code's template, and its code.

    A parameter may itself be a :class:`StoredText` (translated in its turn on pages).
    """
    template = TEMPLATES[code]
    english = {
        name: value.text if isinstance(value, StoredText) else value
        for name, value in params.items()
    }
    stored = {
        name: value.as_param() if isinstance(value, StoredText) else value
        for name, value in params.items()
    }
    return StoredText(template % english if english else template, code, stored or None)


def error_text(error: notify_client.NotifyError) -> StoredText:
    """What to store for a failed Notify call: the client's own words by their code, or the
    server's message as it came."""
    return StoredText(error.message, error.code, error.params)


def columns(column: str, value: StoredText | None) -> dict[str, Any]:
    """The three columns that hold ``value`` (see the module), for an UPDATE or a new row."""
    if value is None:
        return {column: None, f"{column}_code": None, f"{column}_params": None}
    return {
        column: value.text,
        f"{column}_code": value.code,
        f"{column}_params": dict(value.params) if value.params else None,
    }


def assign(row: Any, column: str, value: StoredText | None) -> None:
    """Set the three columns of ``value`` on a model instance."""
    for name, item in columns(column, value).items():
        setattr(row, name, item)


def _render(code: Any, params: Any) -> str | None:
    """``code`` with ``params`` in the page's language; None when either cannot be read."""
    template = TEMPLATES.get(code) if isinstance(code, str) else None
    if template is None or not isinstance(params, Mapping):
        return None
    values: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, Mapping):
            inner = _render(value.get("code"), value.get("params") or {})
            if inner is None:
                return None
            values[name] = inner
        else:
            values[name] = value
    try:
        translated = gettext(template)
        # A template without parameters is used as it is (a literal "%" in it stays one).
        return translated % values if values or "%(" in template else translated
    except (KeyError, TypeError, ValueError):
        return None  # the template changed its parameters since the row was written


def shown(text: str | None, code: str | None, params: Mapping[str, Any] | None) -> str | None:
    """A stored text in the page's language: translated from its code, else as stored.

    The text column decides whether there is anything to show at all (None stays None).
    """
    if not text or code is None:
        return text
    rendered = _render(code, params or {})
    return text if rendered is None else rendered


def shown_column(row: Any, column: str) -> str | None:
    """:func:`shown` for the three columns named after ``column`` on ``row``."""
    return shown(
        getattr(row, column),
        getattr(row, f"{column}_code", None),
        getattr(row, f"{column}_params", None),
    )


def init_app(app) -> None:
    # {{ notification|stored_text("last_error") }}
    app.jinja_env.filters["stored_text"] = lambda row, column: shown_column(row, column) or ""
