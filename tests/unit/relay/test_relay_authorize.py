"""GET/POST /relay/oauth/authorize: validation, the consent page, and both answer modes."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.relay.models import RelayAuthorizationCode, RelayChat
from notify_site.relay.secrets_util import hash_secret
from tests.factories import PASSWORD, add_person, create_user

URL = "/relay/oauth/authorize"


class FormParser(HTMLParser):
    """Collects forms, their inputs and scripts from a page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.scripts: list[dict] = []
        self._in_script = False
        self.inline_script_text = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"attrs": attrs, "inputs": []})
        elif tag in ("input", "button") and self.forms:
            self.forms[-1]["inputs"].append({"tag": tag, **attrs})
        elif tag == "script":
            self.scripts.append(attrs)
            self._in_script = True

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.inline_script_text += data.strip()


def parse(html: str) -> FormParser:
    parser = FormParser()
    parser.feed(html)
    return parser


def code_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(RelayAuthorizationCode))


# --- Requests that must never redirect ------------------------------------------------------


def test_an_unknown_client_gets_an_error_page_and_no_redirect(client, authorize_params):
    response = client.get(URL, query_string=authorize_params(client_id="nobody"))
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.mimetype == "text/html"
    assert "No service is registered under this client_id" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        "https://service.example/callback/",
        "https://service.example/callback?next=https://evil.example",
        "https://SERVICE.example/callback",
        "http://service.example/callback",
    ],
)
def test_a_redirect_uri_that_is_not_exactly_the_registered_one_is_refused(
    client, authorize_params, redirect_uri
):
    response = client.get(URL, query_string=authorize_params(redirect_uri=redirect_uri))
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "not the one registered" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"state": None}, "no state"),
        ({"state": ""}, "no state"),
        ({"response_type": "token"}, "response_type must be"),
        ({"response_type": None}, "response_type must be"),
        ({"scope": "openid"}, "scope must be"),
        ({"response_mode": "fragment"}, "response_mode must be"),
        ({"client_id": None}, "no client_id"),
        ({"redirect_uri": None}, "no redirect_uri"),
        ({"code_challenge": "short", "code_challenge_method": "S256"}, "code_challenge"),
        ({"code_challenge": "a" * 43, "code_challenge_method": "MD5"}, "code_challenge_method"),
    ],
)
def test_other_bad_parameters_also_get_an_error_page_not_a_redirect(
    client, authorize_params, overrides, reason
):
    response = client.get(URL, query_string=authorize_params(**overrides))
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert reason in response.get_data(as_text=True)


def test_a_parameter_given_twice_is_refused(client, authorize_params):
    query = "&".join(f"{k}={v}" for k, v in authorize_params().items()) + "&state=other"
    response = client.get(f"{URL}?{query}")
    assert response.status_code == 400
    assert "state was given more than once" in response.get_data(as_text=True)


# --- The consent page -----------------------------------------------------------------------


def test_the_consent_page_names_the_service_and_offers_the_sandbox_chats(
    client, authorize_params, person
):
    response = client.get(URL, query_string=authorize_params())
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Example Service" in html
    assert "wants to send you notifications" in html
    assert "1-on-1 chat with Sandbox user" in html
    assert "Family" in html
    assert "Team alerts" in html
    page = parse(html)
    consent = next(f for f in page.forms if f["attrs"].get("action") == URL)
    assert consent["attrs"]["method"] == "post"
    radios = [i for i in consent["inputs"] if i.get("type") == "radio"]
    assert len(radios) == 3
    assert sum("checked" in radio for radio in radios) == 1
    buttons = {i.get("value") for i in consent["inputs"] if i.get("type") == "submit"}
    assert buttons == {"Agree and connect", "Cancel"}
    hidden = {i["name"]: i.get("value") for i in consent["inputs"] if i.get("type") == "hidden"}
    assert hidden["state"] == "state-123"
    assert hidden["redirect_uri"] == "https://service.example/callback"
    assert not page.inline_script_text


def test_showing_the_page_twice_creates_the_sandbox_chats_once(
    app, client, authorize_params, person
):
    client.get(URL, query_string=authorize_params())
    client.get(URL, query_string=authorize_params())
    with app.app_context():
        chats = db.session.execute(
            select(RelayChat.kind, RelayChat.name, RelayChat.owner_id).order_by(RelayChat.id)
        )
        assert [tuple(row) for row in chats] == [
            ("USER", "Sandbox user", person.id),
            ("GROUP", "Family", person.id),
            ("GROUP", "Team alerts", person.id),
        ]


def test_a_visitor_signs_in_first_and_comes_back_to_the_same_request(app, authorize_params):
    visitor = app.test_client()
    query = authorize_params(code_challenge=CHALLENGE, code_challenge_method="S256")
    answer = visitor.get(URL, query_string=query)
    assert answer.status_code == 302
    assert answer.headers["Cache-Control"] == "no-store"
    sign_in = urlsplit(answer.headers["Location"])
    assert sign_in.path == "/login"
    back = urlsplit(parse_qs(sign_in.query)["next"][0])
    assert back.path == URL
    assert {k: v[0] for k, v in parse_qs(back.query).items()} == {
        **query,
        "response_mode": "query",
    }
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RelayChat)) == 0
    # Signed in through the real form, the person lands on the consent page.
    with app.app_context():
        create_user("first-admin")
        create_user("hana")
    signed_in = visitor.post(
        answer.headers["Location"], data={"username": "hana", "password": PASSWORD}
    )
    assert signed_in.status_code == 302
    assert urlsplit(signed_in.headers["Location"]).path == URL
    page = visitor.get(signed_in.headers["Location"])
    assert page.status_code == 200
    assert "1-on-1 chat with Sandbox user" in page.get_data(as_text=True)


def test_a_visitors_consent_post_issues_nothing(app, authorize_params, chat_id):
    family = chat_id("GROUP", "Family")
    answer = app.test_client().post(URL, data={**authorize_params(), "chat": family, "agree": "1"})
    assert answer.status_code == 302
    assert urlsplit(answer.headers["Location"]).path == "/login"
    assert code_count(app) == 0


def test_each_person_is_offered_only_their_own_chats(app, client, authorize_params, chat_id):
    mine = chat_id("GROUP", "Family")
    other = app.test_client()
    add_person(app, other, "hana")
    html = other.get(URL, query_string=authorize_params()).get_data(as_text=True)
    assert f'value="{mine}"' not in html
    refused = other.post(URL, data={**authorize_params(), "chat": mine, "agree": "1"})
    assert refused.status_code == 400
    assert "Choose one of the chats listed" in refused.get_data(as_text=True)
    assert code_count(app) == 0


# --- Answers --------------------------------------------------------------------------------


def test_agree_redirects_to_the_redirect_uri_with_a_code_bound_to_the_chosen_chat(
    app, client, authorize_params, chat_id
):
    family = chat_id("GROUP", "Family")
    response = client.post(URL, data={**authorize_params(), "chat": family, "agree": "1"})
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        "https://service.example/callback"
    )
    query = parse_qs(location.query)
    assert query["state"] == ["state-123"]
    assert set(query) == {"code", "state"}
    code = query["code"][0]
    assert len(code) >= 43
    with app.app_context():
        row = db.session.scalar(select(RelayAuthorizationCode))
        assert row.code_hash == hash_secret(code)
        assert row.chat_id == family
        assert row.redirect_uri == "https://service.example/callback"
        assert row.used_at is None
        lifetime = (row.expires_at - row.created_at).total_seconds()
        assert 599 <= lifetime <= 601


def test_a_registered_redirect_uri_keeps_its_own_query(client, register, authorize_params, chat_id):
    reg = register(name="Query", redirect_uri="https://q.example/cb?tenant=7")
    response = client.post(URL, data={**authorize_params(reg=reg), "chat": chat_id(), "agree": "1"})
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["tenant"] == ["7"]
    assert "code" in query


def test_agree_with_form_post_answers_with_an_auto_submitting_form(
    client, authorize_params, chat_id
):
    response = client.post(
        URL,
        data={**authorize_params(response_mode="form_post"), "chat": chat_id(), "agree": "1"},
    )
    assert response.status_code == 200
    assert "Location" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    page = parse(html)
    (answer,) = [f for f in page.forms if "data-autosubmit" in f["attrs"]]
    assert answer["attrs"]["method"] == "post"
    assert answer["attrs"]["action"] == "https://service.example/callback"
    hidden = {i["name"]: i["value"] for i in answer["inputs"] if i.get("type") == "hidden"}
    assert set(hidden) == {"code", "state"}
    assert hidden["state"] == "state-123"
    assert len(hidden["code"]) >= 43
    assert any(i["tag"] == "button" for i in answer["inputs"])
    assert "Continue" in html
    # The CSP allows no inline script: every script is a file, the auto-submit one included.
    assert page.scripts
    assert all(script.get("src") for script in page.scripts)
    assert not page.inline_script_text
    assert any(s["src"].endswith("/static/js/autosubmit.js") for s in page.scripts)
    assert not re.search(r"\son[a-z]+=", html)


def test_cancel_redirects_with_access_denied(app, client, authorize_params, chat_id):
    response = client.post(URL, data={**authorize_params(), "chat": chat_id(), "cancel": "1"})
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["state-123"]
    assert query["error_description"][0]
    assert "code" not in query
    assert code_count(app) == 0


def test_cancel_with_form_post_posts_access_denied(client, authorize_params, person):
    response = client.post(URL, data={**authorize_params(response_mode="form_post"), "cancel": "1"})
    page = parse(response.get_data(as_text=True))
    (answer,) = [f for f in page.forms if "data-autosubmit" in f["attrs"]]
    hidden = {i["name"]: i["value"] for i in answer["inputs"] if i.get("type") == "hidden"}
    assert hidden["error"] == "access_denied"
    assert hidden["state"] == "state-123"
    assert "code" not in hidden


def test_a_chat_that_is_not_offered_is_refused_and_no_code_issued(
    app, client, authorize_params, person
):
    response = client.post(URL, data={**authorize_params(), "chat": "9999", "agree": "1"})
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "Choose one of the chats listed" in response.get_data(as_text=True)
    assert code_count(app) == 0


def test_a_post_without_either_button_issues_nothing(app, client, authorize_params, chat_id):
    response = client.post(URL, data={**authorize_params(), "chat": chat_id()})
    assert response.status_code == 400
    assert "Choose “Agree and connect” or “Cancel”." in response.get_data(as_text=True)
    assert "Location" not in response.headers
    assert code_count(app) == 0


def test_parameters_tampered_with_in_the_form_are_checked_again(
    app, client, authorize_params, chat_id
):
    data = {
        **authorize_params(redirect_uri="https://evil.example/steal"),
        "chat": chat_id(),
        "agree": "1",
    }
    response = client.post(URL, data=data)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert code_count(app) == 0


def test_issuing_a_code_clears_codes_long_expired(app, client, get_code):
    first = get_code()
    with app.app_context():
        code = RelayAuthorizationCode
        row = db.session.scalar(select(code).where(code.code_hash == hash_secret(first)))
        row.expires_at = row.expires_at - timedelta(days=2)
        db.session.commit()
    second = get_code()
    with app.app_context():
        hashes = db.session.scalars(select(RelayAuthorizationCode.code_hash)).all()
    assert hashes == [hash_secret(second)]


# --- PKCE: S256 only (RFC 9700 section 2.1.1) -------------------------------------------------

CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def _codes(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(RelayAuthorizationCode))


@pytest.mark.parametrize(
    "method", ["plain", None, "", "s256", "S256 "], ids=["plain", "none", "empty", "lower", "sp"]
)
def test_a_challenge_other_than_s256_gets_an_error_page(client, authorize_params, method):
    query = authorize_params(code_challenge=CHALLENGE, code_challenge_method=method)
    response = client.get(URL, query_string=query)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "code_challenge_method must be &#39;S256&#39;" in html
    assert "client.example" not in html  # no link back to the (unchecked) redirect URI


def test_the_consent_form_cannot_downgrade_s256_to_plain(app, client, authorize_params, chat_id):
    query = authorize_params(code_challenge=CHALLENGE, code_challenge_method="S256")
    assert client.get(URL, query_string=query).status_code == 200
    # The person consenting edits the hidden field before pressing Agree.
    tampered = {**query, "code_challenge_method": "plain", "chat": str(chat_id()), "agree": "1"}
    response = client.post(URL, data=tampered)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert _codes(app) == 0


def test_s256_carries_through_the_consent_form(client, authorize_params, person):
    query = authorize_params(code_challenge=CHALLENGE, code_challenge_method="S256")
    page = parse(client.get(URL, query_string=query).get_data(as_text=True))
    consent = next(f for f in page.forms if f["attrs"].get("action") == URL)
    hidden = {i["name"]: i.get("value") for i in consent["inputs"] if i.get("type") == "hidden"}
    assert hidden["code_challenge"] == CHALLENGE
    assert hidden["code_challenge_method"] == "S256"
