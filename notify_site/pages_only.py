"""The browser's machinery is for pages: the JSON API (``/api/…``) runs without it.

A page needs the session cookie (who is signed in, flashed messages), Flask-Login's
remember-me cookie and the CSRF check on its forms. An API request authenticates with the key
in ``Authorization`` alone (notify_site/api/views.py) and never reads any of them, so on
``/api/`` paths:

* **no session**: :class:`PageSessionInterface` opens none (Flask then uses its read-only
  null session, which reads as empty) and writes none back, so an API answer carries no
  ``Set-Cookie`` and no ``Vary: Cookie`` — a session cookie a browser sends along is ignored,
  not renewed;
* **no remember-cookie hook and no CSRF hook**: :func:`install` wraps those two app-wide
  hooks so that they return at once on the API. (CSRF would pass anyway: the API's blueprint
  is exempt, since a key in a header cannot be forged by a cross-site form.)

Installed by ``create_app`` after the extensions, so that both hooks exist to be wrapped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface

API_PREFIX = "/api/"
#: Pages that live under /api/ for people to find them there: the API's documentation
#: (notify_site/views/api_docs.py) is a page like any other, with the signed-in navigation.
PAGES_UNDER_API = ("/api/v1/docs",)


def is_api_path(path: str) -> bool:
    """Whether ``path`` is one of the JSON API's (``/api/…``, not a page kept there)."""
    return path.startswith(API_PREFIX) and not path.startswith(PAGES_UNDER_API)


def is_api_request() -> bool:
    """Whether the current request is one of the JSON API's."""
    return is_api_path(request.path)


class PageSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, opened for pages only.

    Returning None makes Flask use its null session for the request: reading it gives
    nothing, writing to it raises, and nothing is saved or varied on.
    """

    def open_session(self, app: Flask, request):  # noqa: ANN001 - Flask's signature
        if is_api_path(request.path):
            return None
        return super().open_session(app, request)


def install(app: Flask, *, remember_hook: Callable[..., Any]) -> None:
    """Open sessions for pages only, and skip the CSRF and remember-cookie hooks on the API.

    ``remember_hook`` is Flask-Login's ``after_request`` function (the login manager's bound
    ``_update_remember_cookie``); the CSRF hook is found by its name, ``csrf_protect``.
    """
    app.session_interface = PageSessionInterface()
    before = app.before_request_funcs.setdefault(None, [])
    after = app.after_request_funcs.setdefault(None, [])
    wrapped = 0
    for index, hook in enumerate(before):
        if getattr(hook, "__name__", "") == "csrf_protect":
            before[index] = _pages_only_before(hook)
            wrapped += 1
    for index, hook in enumerate(after):
        if hook == remember_hook:
            after[index] = _pages_only_after(hook)
            wrapped += 1
    if wrapped != 2:  # an upgrade renamed a hook: fail at start-up, not silently
        raise RuntimeError("pages_only.install: the CSRF or remember-cookie hook was not found")


def _pages_only_before(hook: Callable[[], Any]) -> Callable[[], Any]:
    @functools.wraps(hook)
    def before_request() -> Any:
        if is_api_request():
            return None
        return hook()

    return before_request


def _pages_only_after(hook: Callable[[Any], Any]) -> Callable[[Any], Any]:
    @functools.wraps(hook)
    def after_request(response: Any) -> Any:
        if is_api_request():
            return response
        return hook(response)

    return after_request
