"""Error texts and the error seam both houses use.

:data:`GENERIC_MESSAGES` and :func:`describe` give people a translated text for an HTTP error
raised without a message of its own (Werkzeug's descriptions are English only).
:func:`answer_elsewhere` lets another house answer an error raised on its paths before any
blueprint is known (a 404 or 405 at routing): the relay answers those on its API as LINE
Notify did (``notify_site/seams.py``, ``ERROR_ANSWERERS``).
"""

from __future__ import annotations

from flask import current_app
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

from notify_site import seams

# The JSON ``code`` of an error stays Werkzeug's English name; these are what people read.
GENERIC_MESSAGES = {
    400: _l("The request could not be understood. Check it and try again."),
    401: _l("Sign in to see this page."),
    403: _l("You are not allowed to see this page."),
    404: _l("There is no such page. Check the address, or start again from the home page."),
    405: _l("This address does not accept that kind of request."),
    413: _l("What you sent is too large."),
    429: _l("Too many requests. Wait a moment and try again."),
    500: _l("Something went wrong on our side. Try again in a moment."),
    503: _l("The site is briefly unavailable. Try again in a moment."),
}
# A program reading JSON has no home page to go back to (issue 20).
JSON_MESSAGES = {
    404: _l("Nothing is at this address. The API's paths are listed in /api/v1/openapi.json."),
}


def describe(error: HTTPException, *, json: bool = False) -> str:
    """The error's own message (the views pass translated ones), else a translated generic one
    (``json``: worded for a program, not for a person in a browser)."""
    status = error.code or 500
    default = type(error).description
    if error.description and error.description != default:
        return error.description
    generic = (JSON_MESSAGES if json else {}).get(status) or GENERIC_MESSAGES.get(status)
    return str(generic) if generic is not None else (error.description or error.name)


def answer_elsewhere(error: HTTPException) -> ResponseReturnValue | None:
    """The answer of the first registered error answerer that takes ``error``, else None."""
    for answerer in seams.items(current_app, seams.ERROR_ANSWERERS):
        answer = answerer(error)
        if answer is not None:
            return answer
    return None
