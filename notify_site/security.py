"""Response headers that every answer carries (SPEC 4.7, reliability.md "Web hygiene")."""

from __future__ import annotations

from flask import Flask, Response, request

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


def init_app(app: Flask) -> None:
    app.after_request(set_security_headers)


def set_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response
