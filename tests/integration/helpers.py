"""Drive the site and the relay over HTTP with a cookie-keeping session, like a browser."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

from tests.factories import PASSWORD
from tests.htmlforms import form_with


def submit(session: requests.Session, page: requests.Response, values: dict, **find):
    form = form_with(page.text, page.url, **find)
    return session.post(form.action, data={**form.fields, **values}, allow_redirects=False)


def register(session: requests.Session, site: str, username: str = "alice") -> None:
    page = session.get(f"{site}/register")
    answer = submit(
        session,
        page,
        {"username": username, "password": PASSWORD, "confirm": PASSWORD},
        field="confirm",
    )
    assert answer.status_code == 302, answer.text
    assert answer.headers["Location"] == "/connections"
    session.username = username  # to sign in again at the relay's host (open_consent)


def person_session(app, url: str, username: str = "mika") -> requests.Session:
    """A new person's account (never the first, an admin) signed in through the form on the
    app served at ``url`` (an app with CSRF off, as tests/conftest.py makes them)."""
    from sqlalchemy import func, select

    from notify_site.extensions import db
    from notify_site.models import User
    from tests.factories import create_user

    with app.app_context():
        if not db.session.scalar(select(func.count()).select_from(User)):
            create_user("first-admin")
        create_user(username)
    session = requests.Session()
    answer = session.post(
        f"{url}/login",
        data={"username": username, "password": PASSWORD},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302, answer.text
    return session


def relay_reader(live, username: str = "alice") -> requests.Session:
    """A session signed in at the relay's host, to read the person's inbox there (the inbox is
    private: a visitor gets a 401)."""
    session = requests.Session()
    origin = live.relay.removesuffix(live.app.config["RELAY_URL_PREFIX"])
    page = session.get(f"{origin}/login")
    answer = submit(session, page, {"username": username, "password": PASSWORD}, field="username")
    assert answer.status_code == 302, answer.text
    return session


def open_consent(session: requests.Session, authorize_url: str) -> requests.Response:
    """The relay's consent page. The relay asks a visitor to sign in first (it keeps the
    person's chats); on its own host (``localhost`` in :class:`tests.conftest.Live`) the site's
    session cookie is not sent, so the person signs in there, as they signed in to LINE."""
    page = session.get(authorize_url)
    if urlsplit(page.url).path == "/login":
        username = getattr(session, "username", "alice")
        page = submit(session, page, {"username": username, "password": PASSWORD}, field="username")
        assert page.status_code == 302, page.text
        page = session.get(urljoin(authorize_url, page.headers["Location"]))
    return page


def start_connect(session: requests.Session, site: str, label: str) -> str:
    """Submit the connect form; returns the authorize URL the site redirects to."""
    page = session.get(f"{site}/connections")
    answer = submit(session, page, {"label": label}, field="label")
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def without_form_post(url: str) -> str:
    """The same authorize URL asking for the query-string answer instead of form_post."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "response_mode"]
    return urlunsplit(parts._replace(query=urlencode(query)))


def answer_authorize(session: requests.Session, authorize_url: str, *, chat: str, agree=True):
    """On the relay's page, pick the chat whose label contains ``chat`` and press a button."""
    page = open_consent(session, authorize_url)
    assert page.status_code == 200, page.text
    form = form_with(page.text, page.url, button="agree")
    values = dict(form.fields)
    choice = next(
        (value for value, _ in form.radios["chat"] if chat_label(page.text, value, chat)), None
    )
    assert choice is not None, f"no chat like {chat!r} on the authorize page"
    values["chat"] = choice
    button = "agree" if agree else "cancel"
    values[button] = dict(form.buttons)[button]
    return session.post(form.action, data=values, allow_redirects=False)


def chat_label(html: str, value: str, wanted: str) -> bool:
    """Whether the radio with ``value`` is labelled with text containing ``wanted``."""
    marker = f'value="{value}"'
    index = html.find(marker)
    return index >= 0 and wanted in html[index : index + 400]


def finish_form_post(session: requests.Session, relay_answer: requests.Response, site: str):
    """Deliver the relay's auto-submitting form as a browser would across sites.

    The browser sends no SameSite=Lax cookie on the cross-site POST, so the site answers with
    its bounce page; the bounce page's same-site POST then carries the session cookie.
    """
    form = form_with(relay_answer.text, relay_answer.url or site, field="state")
    assert form.action == f"{site}/callback"
    assert "data-autosubmit" in form.attrs
    cross_site = requests.post(form.action, data=form.fields, allow_redirects=False, timeout=10)
    assert cross_site.status_code == 200, cross_site.text
    assert "Set-Cookie" not in cross_site.headers
    bounce = form_with(cross_site.text, form.action, field="bounced")
    return session.post(bounce.action, data=bounce.fields, allow_redirects=False)


def connect_chat(session: requests.Session, site: str, label: str, chat: str) -> None:
    """Connect a sandbox chat through the real OAuth flow (query-string answer)."""
    authorize_url = without_form_post(start_connect(session, site, label))
    callback = answer_authorize(session, authorize_url, chat=chat).headers["Location"]
    done = session.get(callback, allow_redirects=False)
    assert done.status_code == 302, done.text
