"""Fixtures for the relay's unit tests: a registered client, codes and tokens made through
the relay's own endpoints (with the Flask test client, CSRF off as in tests/conftest.py).

The consent page, My page and the inbox are a signed-in person's: :func:`person` signs
``keiko`` in on ``client`` (not an admin: the site's first account, ``first-admin``, is one), and
the chats, codes and tokens below are hers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.relay.clients import register_client
from notify_site.relay.models import RelayChat
from notify_site.relay.quota_models import RelayLineTotal, RelayLineUsage, UsageState
from tests.factories import SignedIn, add_person
from tests.fakes.line_api import serve_fake

REDIRECT_URI = "https://service.example/callback"
SERVICE_NAME = "Example Service"


@pytest.fixture(autouse=True)
def ledger_totals_agree(request):
    """After every relay test that has an app: the ledger's running totals equal the sums of
    its rows, month by month and subject by subject (relay/ledger.py keeps them in step)."""
    app = request.getfixturevalue("app") if "app" in request.fixturenames else None
    yield
    if app is None:
        return
    with app.app_context():
        kept = {(month, subject): units for month, subject, units in ledger_totals_rows()}
        summed = {key: units for key, units in ledger_sums().items() if units}
        db.session.remove()
    assert {key: units for key, units in kept.items() if units} == summed


def ledger_totals_rows():
    return db.session.execute(
        select(RelayLineTotal.month, RelayLineTotal.subject, RelayLineTotal.units)
    ).all()


def ledger_sums() -> dict[tuple[str, str], int]:
    """The totals as the ledger's rows give them (the rule of ledger.subjects_of, in SQL)."""
    usage = RelayLineUsage
    counted = usage.state.in_(UsageState.COUNTED)
    sums: dict[tuple[str, str], int] = {}
    for name, column, where in (
        ("channel", None, counted),
        ("channel:reserved", None, usage.state == UsageState.RESERVED),
        ("person", usage.person_id, counted),
        ("token", usage.token_pk, counted),
    ):
        keys = [usage.month] + ([column] if column is not None else [])
        query = select(*keys, func.sum(usage.units)).where(where).group_by(*keys)
        if column is not None:
            query = query.where(column.is_not(None))
        for row in db.session.execute(query):
            subject = name if column is None else f"{name}:{row[1]}"
            sums[(row[0], subject)] = int(row[-1])
    return sums


@pytest.fixture
def fake_line():
    """The fake Messaging API over real HTTP (channel mode's tests aim the relay at it)."""
    yield from serve_fake()


@pytest.fixture
def person(app, client) -> SignedIn:
    """``keiko``, signed in on ``client``."""
    return add_person(app, client, "keiko")


@dataclass(frozen=True)
class Registered:
    client_id: str
    client_secret: str
    redirect_uri: str
    name: str


def _register(app, name: str = SERVICE_NAME, redirect_uri: str = REDIRECT_URI) -> Registered:
    with app.app_context():
        client_id, client_secret = register_client(name, redirect_uri)
    return Registered(client_id, client_secret, redirect_uri, name)


@pytest.fixture
def registered(app) -> Registered:
    """A service registered with the relay."""
    return _register(app)


@pytest.fixture
def register(app) -> Callable[..., Registered]:
    """Register another service: ``register(name=..., redirect_uri=...)``."""
    return lambda **kwargs: _register(app, **kwargs)


def _authorize_params(registered: Registered, **overrides) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": registered.client_id,
        "redirect_uri": registered.redirect_uri,
        "scope": "notify",
        "state": "state-123",
    }
    params.update(overrides)
    return {key: value for key, value in params.items() if value is not None}


@pytest.fixture
def authorize_params(registered) -> Callable[..., dict[str, str]]:
    """The parameters of a good authorization request; keyword arguments override (None drops).

    ``authorize_params(reg=other)`` builds them for another registered client.
    """

    def build(reg: Registered | None = None, **overrides) -> dict[str, str]:
        return _authorize_params(reg or registered, **overrides)

    return build


@pytest.fixture
def chat_id(app, client, registered, person) -> Callable[[str, str], int]:
    """The id of one of the signed-in person's sandbox chats (created by showing the consent
    page once)."""

    def find(kind: str = "USER", name: str = "Sandbox user") -> int:
        page = client.get("/relay/oauth/authorize", query_string=_authorize_params(registered))
        assert page.status_code == 200
        with app.app_context():
            return db.session.scalar(
                select(RelayChat.id).where(
                    RelayChat.kind == kind,
                    RelayChat.name == name,
                    RelayChat.owner_id == person.id,
                )
            )

    return find


@pytest.fixture
def get_code(client, registered, chat_id) -> Callable[..., str]:
    """Run the consent form (Agree) and return the authorization code from the redirect."""

    def get(reg: Registered | None = None, kind: str = "USER", name: str = "Sandbox user", **kw):
        reg = reg or registered
        data = {**_authorize_params(reg, **kw), "chat": str(chat_id(kind, name)), "agree": "1"}
        response = client.post("/relay/oauth/authorize", data=data)
        assert response.status_code == 302, response.get_data(as_text=True)
        query = parse_qs(urlsplit(response.headers["Location"]).query)
        return query["code"][0]

    return get


@pytest.fixture
def get_token(client, registered, get_code) -> Callable[..., str]:
    """An access token for a chat, through the token endpoint."""

    def get(kind: str = "USER", name: str = "Sandbox user") -> str:
        code = get_code(kind=kind, name=name)
        response = client.post(
            "/relay/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": registered.redirect_uri,
                "client_id": registered.client_id,
                "client_secret": registered.client_secret,
            },
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()["access_token"]

    return get


@pytest.fixture
def token(get_token) -> str:
    """An access token for the sandbox 1-on-1 chat."""
    return get_token()


@pytest.fixture
def auth_headers(token) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
