"""Security headers and cookie flags on every kind of answer; proxies; trusted host names.

SPEC 4.7 and reliability.md "Web hygiene": CSP without inline script, ``object-src 'none'``,
``base-uri 'none'``, ``frame-ancestors 'none'``, nosniff, Referrer-Policy; HSTS only over
HTTPS (also behind a proxy, when the proxy is trusted); session cookies HttpOnly, SameSite=Lax,
and Secure outside local development.
"""

from __future__ import annotations

import re

import pytest
from flask import request, session

from notify_site import create_app
from notify_site.security import SecurityConfigError
from tests.conftest import init_database, make_test_config
from tests.factories import PASSWORD, create_user

# One answer of each kind the site gives: (method, path, expected status, content type).
ANSWERS = {
    "html page": ("/login", 200, "text/html"),
    "json answer": ("/healthz", 200, "application/json"),
    "api json answer": ("/api/v1/connections", 401, "application/json"),
    "error page": ("/no-such-page", 404, "text/html"),
    "relay api answer": ("/relay/api/status", 401, "application/json"),
    # A visitor's relay page (the inbox and My page send visitors to sign in).
    "relay page": ("/relay/oauth/authorize", 400, "text/html"),
    "static file": ("/static/css/site.css", 200, "text/css"),
}
# The JSON API opens no session at all (notify_site/pages_only.py; tests/unit/api/
# test_api_no_browser.py): every other kind of answer carries the session cookie's flags.
SESSION_ANSWERS = {kind: answer for kind, answer in ANSWERS.items() if kind != "api json answer"}
REFERRER_POLICIES = {
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
}


def csp_directives(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, "no Content-Security-Policy"
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def assert_security_headers(response, *, hsts: bool) -> None:
    csp = csp_directives(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]  # no 'unsafe-inline', no nonce, no other origin
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in REFERRER_POLICIES
    assert response.headers["X-Frame-Options"] == "DENY"
    if hsts:
        value = response.headers.get("Strict-Transport-Security", "")
        assert re.fullmatch(r"max-age=31536000; includeSubDomains", value), value
    else:
        assert "Strict-Transport-Security" not in response.headers


def get(client, path: str, **kwargs):
    response = client.get(path, **kwargs)
    response.close()  # static files are streamed
    return response


@pytest.mark.parametrize("kind", ANSWERS)
def test_every_kind_of_answer_carries_the_security_headers(client, kind):
    path, status, mimetype = ANSWERS[kind]
    response = get(client, path)
    assert response.status_code == status
    assert response.mimetype == mimetype
    assert_security_headers(response, hsts=False)


@pytest.mark.parametrize("path", ["/login", "/register", "/no-such-page", "/relay/oauth/authorize"])
def test_html_pages_hold_no_inline_script_the_csp_would_block(client, path):
    html = client.get(path).get_data(as_text=True)
    scripts = re.findall(r"<script\b[^>]*>", html, flags=re.IGNORECASE)
    assert all("src=" in tag for tag in scripts), scripts
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", html, flags=re.IGNORECASE)
    assert "javascript:" not in html.lower()


def test_hsts_is_sent_on_a_direct_https_request(client):
    response = get(client, "/login", base_url="https://localhost")
    assert_security_headers(response, hsts=True)


def test_a_forwarded_proto_header_is_ignored_unless_a_proxy_is_trusted(client):
    # PROXY_FIX_X_PROTO defaults to 0: a client cannot claim HTTPS by sending the header.
    response = get(client, "/login", headers={"X-Forwarded-Proto": "https"})
    assert_security_headers(response, hsts=False)


@pytest.fixture
def proxied_app(tmp_path):
    app = create_app(make_test_config(tmp_path, PROXY_FIX_X_FOR=1, PROXY_FIX_X_PROTO=1))
    init_database(app)

    @app.get("/_probe")
    def probe():
        return {"scheme": request.scheme, "address": request.remote_addr}

    return app


@pytest.mark.parametrize("kind", ANSWERS)
def test_behind_a_trusted_proxy_https_answers_carry_hsts(proxied_app, kind):
    client = proxied_app.test_client()
    path, status, _ = ANSWERS[kind]
    response = get(client, path, headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == status
    assert_security_headers(response, hsts=True)
    # The same proxy forwarding a plain HTTP request: no HSTS.
    assert_security_headers(get(client, path, headers={"X-Forwarded-Proto": "http"}), hsts=False)


def test_proxy_fix_trusts_exactly_the_configured_number_of_hops(proxied_app, client):
    headers = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7", "X-Forwarded-Proto": "https"}
    seen = proxied_app.test_client().get("/_probe", headers=headers).get_json()
    # One trusted proxy: the address it saw connect to it, not what the client wrote before it.
    assert seen == {"scheme": "https", "address": "198.51.100.7"}


def test_without_proxy_fix_forwarded_headers_change_nothing(app):
    @app.get("/_probe")
    def probe():
        return {"scheme": request.scheme, "address": request.remote_addr}

    headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    seen = app.test_client().get("/_probe", headers=headers).get_json()
    assert seen == {"scheme": "http", "address": "127.0.0.1"}


@pytest.mark.parametrize("value", [-1, "1", True, 1.5])
def test_a_bad_proxy_count_stops_the_app_from_starting(tmp_path, value):
    with pytest.raises(SecurityConfigError, match="PROXY_FIX_X_FOR"):
        create_app(make_test_config(tmp_path, PROXY_FIX_X_FOR=value))


def test_hsts_max_age_and_subdomains_are_configurable(tmp_path):
    app = create_app(make_test_config(tmp_path, HSTS_MAX_AGE=600, HSTS_INCLUDE_SUBDOMAINS=False))
    response = get(app.test_client(), "/healthz", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"] == "max-age=600"


# ---------------------------------------------------------------------------- cookies


def cookie_app(tmp_path, **overrides):
    """An app whose every answer writes to the session, so each kind sets a cookie."""
    app = create_app(make_test_config(tmp_path, **overrides))
    init_database(app)

    @app.before_request
    def touch_session():
        session["seen"] = session.get("seen", 0) + 1

    return app


def session_cookie(response) -> str:
    cookies = response.headers.getlist("Set-Cookie")
    [cookie] = [value for value in cookies if value.startswith("session=")]
    return cookie


def flags(cookie: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}


@pytest.mark.parametrize("kind", SESSION_ANSWERS)
def test_session_cookie_is_httponly_and_lax_in_local_development(tmp_path, kind):
    app = cookie_app(tmp_path)  # NOTIFY_REDIRECT_URI is http://127.0.0.1:5000/callback
    path, status, _ = ANSWERS[kind]
    response = get(app.test_client(), path)
    assert response.status_code == status
    cookie = session_cookie(response)
    assert {"httponly", "samesite"} <= flags(cookie)
    assert "SameSite=Lax" in cookie
    assert "secure" not in flags(cookie)  # http://127.0.0.1 would drop a Secure cookie


@pytest.mark.parametrize("kind", SESSION_ANSWERS)
def test_session_cookie_is_secure_when_the_site_is_https(tmp_path, kind):
    app = cookie_app(tmp_path, NOTIFY_REDIRECT_URI="https://notify.example/callback")
    path, status, _ = ANSWERS[kind]
    response = get(app.test_client(), path, base_url="https://notify.example")
    assert response.status_code == status
    cookie = session_cookie(response)
    assert {"httponly", "samesite", "secure"} <= flags(cookie)
    assert "SameSite=Lax" in cookie


def test_signing_in_sets_a_cookie_with_the_same_flags(tmp_path):
    app = cookie_app(tmp_path, NOTIFY_REDIRECT_URI="https://notify.example/callback")
    with app.app_context():
        create_user("alice")
    answer = app.test_client().post(
        "/login",
        data={"username": "alice", "password": PASSWORD},
        base_url="https://notify.example",
    )
    assert answer.status_code == 302
    cookie = session_cookie(answer)
    assert {"httponly", "samesite", "secure"} <= flags(cookie)
    assert "remember_token" not in " ".join(answer.headers.getlist("Set-Cookie"))


def test_the_json_api_sets_no_cookie(client):
    response = client.get("/api/v1/connections", headers={"Authorization": "Bearer nsk_wrong"})
    assert response.status_code == 401
    assert "Set-Cookie" not in response.headers


# ---------------------------------------------------------------------------- host names


def test_hosts_are_not_restricted_by_default(client):
    assert client.get("/healthz", headers={"Host": "anything.example"}).status_code == 200


@pytest.fixture
def host_app(tmp_path):
    app = create_app(make_test_config(tmp_path, TRUSTED_HOSTS=["notify.example", ".relay.test"]))
    init_database(app)
    return app


@pytest.mark.parametrize("host", ["notify.example", "notify.example:8443", "a.relay.test"])
def test_trusted_hosts_are_answered(host_app, host):
    response = host_app.test_client().get("/login", headers={"Host": host})
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/login", "/api/v1/connections", "/relay/api/status"])
def test_an_untrusted_host_is_a_plain_400_with_the_headers(host_app, path):
    response = host_app.test_client().get(path, headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert "does not answer to that host name" in response.get_data(as_text=True)
    assert_security_headers(response, hsts=False)


def test_trusted_hosts_from_the_environment_is_a_comma_separated_list(tmp_path, monkeypatch):
    monkeypatch.setenv("NOTIFY_SITE_TRUSTED_HOSTS", "notify.example, .relay.test")
    app = create_app(make_test_config(tmp_path))
    assert app.config["TRUSTED_HOSTS"] == ["notify.example", ".relay.test"]


def test_max_content_length_is_set(app):
    assert 0 < app.config["MAX_CONTENT_LENGTH"] <= 64 * 1024 * 1024
