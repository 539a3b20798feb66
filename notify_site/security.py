"""Web hygiene that every answer shares (SPEC 4.7, reliability.md "Web hygiene").

* Security headers on every response: CSP, nosniff, Referrer-Policy, frame denial, and HSTS
  on requests that arrived over HTTPS.
* werkzeug's ProxyFix, trusting exactly as many proxies as configured (none by default), so
  that behind a TLS-terminating proxy the site knows the request was HTTPS and who sent it.
* A plain 400 for a Host header outside ``TRUSTED_HOSTS`` (Flask checks the header itself).
* :func:`safe_local_path`: whether a ``next`` parameter may be followed (the site's sign-in
  and language switcher; the relay may use it too, as it is plumbing of neither house).
* :func:`external_url`: absolute URLs built from configuration, never from the request's
  Host header (which, with ``TRUSTED_HOSTS`` unset, is whatever the client sent); and no
  URL-map redirect that would build one (merging ``//`` in a path).
* ``MAX_CONTENT_LENGTH`` for chunked bodies too (:mod:`notify_site.request_body`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, request, url_for
from werkzeug.exceptions import HTTPException, SecurityError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Map, RoutingException

from notify_site.plain_text import ID_MAX
from notify_site.request_body import ChunkedBodyLimit

# No inline script anywhere: pages load their behaviour from /static/js. Images may come from
# any HTTPS URL because the relay's inbox shows the images people send by URL.
# No form-action: the relay's authorize page posts its answer to the client's redirect_uri,
# which is another origin for every client but this site.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' https: data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)

# config key -> ProxyFix argument
PROXY_FIX_KEYS = {
    "PROXY_FIX_X_FOR": "x_for",
    "PROXY_FIX_X_PROTO": "x_proto",
    "PROXY_FIX_X_HOST": "x_host",
    "PROXY_FIX_X_PORT": "x_port",
    "PROXY_FIX_X_PREFIX": "x_prefix",
}


class SecurityConfigError(RuntimeError):
    """A security setting has a value that cannot work; the message names the key."""


class RowIdConverter(IntegerConverter):
    """``<int:…>`` in the app's routes: a non-negative whole number no larger than a database
    ``INTEGER`` column holds (``<int(max=…):…>`` still sets a smaller bound)."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", ID_MAX)
        super().__init__(map, *args, **kwargs)


def init_app(app: Flask) -> None:
    """Install the headers, the proxy settings and the untrusted-host answer on ``app``."""
    app.extensions["notify_site.hsts"] = hsts_value(app)
    install_proxy_fix(app)
    app.wsgi_app = ChunkedBodyLimit(app.wsgi_app, app.config)  # type: ignore[method-assign]
    app.after_request(set_security_headers)
    app.register_error_handler(SecurityError, untrusted_host)
    # werkzeug answers a path with "//" by a 308 to the merged path as an absolute URL built
    # from the Host header. A "//" path is none of ours: let it be a 404.
    app.url_map.merge_slashes = False
    app.jinja_env.globals["external_url"] = external_url


def hsts_value(app: Flask) -> str:
    max_age = app.config.get("HSTS_MAX_AGE", 31536000)
    if not isinstance(max_age, int) or isinstance(max_age, bool) or max_age < 0:
        raise SecurityConfigError("HSTS_MAX_AGE must be a whole number of seconds, 0 or more")
    value = f"max-age={max_age}"
    if app.config.get("HSTS_INCLUDE_SUBDOMAINS"):
        value += "; includeSubDomains"
    return value


def install_proxy_fix(app: Flask) -> None:
    """Wrap the WSGI app in ProxyFix when any ``PROXY_FIX_*`` count is above 0.

    Each count is how many proxies set that header; ProxyFix then reads that many values from
    the right of the header and ignores anything a client put before them.
    """
    counts = {}
    for key, argument in PROXY_FIX_KEYS.items():
        value = app.config.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SecurityConfigError(f"{key} must be a whole number of proxies, 0 or more")
        counts[argument] = value
    if any(counts.values()):
        app.wsgi_app = ProxyFix(app.wsgi_app, **counts)  # type: ignore[method-assign]


# The headers every answer gets, unless a view set its own value: built once, added in one
# pass over the answer's headers (four setdefault calls scanned them four times).
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)
_SECURITY_HEADER_NAMES = frozenset(name.lower() for name, _ in SECURITY_HEADERS)


def set_security_headers(response: Response) -> Response:
    headers = response.headers
    present = {name.lower() for name, _ in headers} & _SECURITY_HEADER_NAMES
    if not present:
        headers.extend(SECURITY_HEADERS)
    else:
        headers.extend(pair for pair in SECURITY_HEADERS if pair[0].lower() not in present)
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", current_app.extensions["notify_site.hsts"])
    return response


def untrusted_host(error: SecurityError) -> Response:
    """A Host header outside ``TRUSTED_HOSTS``.

    Answered in plain text because the site's error page builds links with ``url_for``, which
    has no URL adapter for a request whose host was refused.
    """
    return Response(
        "Bad Request: this site does not answer to that host name.\n",
        status=400,
        mimetype="text/plain",
    )


# Longer than any path of ours with its query string; a longer `next` is not one of them.
SAFE_PATH_MAX_CHARS = 2000


def safe_local_path(target: str | None) -> str | None:
    """``target`` if it is a plain path (and query) of one of this app's GET routes, else None.

    For redirects to a page named by the request (``next``): only what this returns may be
    redirected to. Refused: anything with a scheme or host (``https://x``, ``//x``); a
    backslash, whitespace or a control character (browsers drop tabs and newlines from URLs,
    so slash, tab, slash would become ``//``); a fragment; and any path the URL map does not
    answer with a GET as it is: unknown paths, and those it would first redirect. (A
    ``/static//x`` is "merged" into ``/static/x`` by a 308 to an absolute URL built from the
    Host header, which also made the browser send the sign-in form there again.)

    Never raises: the URL map's redirect exceptions are caught here.
    """
    if not isinstance(target, str) or not target or len(target) > SAFE_PATH_MAX_CHARS:
        return None
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in target):
        return None
    try:
        parts = urlsplit(target)
    except ValueError:
        return None
    if parts.scheme or parts.netloc or parts.fragment or "#" in target:
        return None
    adapter = current_app.url_map.bind("localhost")
    try:
        adapter.match(parts.path, method="GET")
    except (HTTPException, RoutingException):
        # NotFound, MethodNotAllowed, and RequestRedirect (a slash to add, slashes to merge)
        return None
    return target


def public_origin(config: Mapping[str, Any]) -> str:
    """The site's public ``scheme://host[:port]``, as configured: the origin of
    ``NOTIFY_REDIRECT_URI``, the callback URL registered with the Notify server, which is this
    site's by definition (its ``https`` already decides the session cookie's Secure flag)."""
    parts = urlsplit(str(config["NOTIFY_REDIRECT_URI"]))
    return f"{parts.scheme}://{parts.netloc}"


def external_url(endpoint: str, **values: Any) -> str:
    """An absolute URL of one of this app's routes, for text people copy or programs follow
    (a curl example, an image in JSON): :func:`public_origin` and the route's path. Use it
    wherever ``url_for(..., _external=True)`` would take the host from the request."""
    return public_origin(current_app.config) + url_for(endpoint, **values)
