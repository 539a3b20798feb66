"""Accounts over real HTTP with the built-in relay: deleting an account revokes its chats' tokens
at the Notify server, and a copied session cookie stops working at sign-out."""

from __future__ import annotations

import requests
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.keyring import keyring
from notify_site.models import Connection, User
from notify_site.services.connections import connection_context
from tests.factories import PASSWORD
from tests.htmlforms import forms_in
from tests.integration.helpers import connect_chat, register, submit


def relay_status(live, token: str) -> int:
    answer = requests.get(
        f"{live.relay}/api/status", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    return answer.status_code


def test_deleting_an_account_revokes_its_tokens_at_the_relay(live):
    browser = requests.Session()
    register(browser, live.site)
    connect_chat(browser, live.site, "Me", "1-on-1")
    connect_chat(browser, live.site, "Family", "Family")
    with live.app.app_context():
        tokens = [
            keyring().decrypt(c.token_ciphertext, context=connection_context(c.id))
            for c in db.session.scalars(select(Connection))
        ]
    assert len(tokens) == 2
    assert [relay_status(live, token) for token in tokens] == [200, 200]

    page = browser.get(f"{live.site}/settings/delete-account")
    assert page.status_code == 200
    answer = submit(browser, page, {"password": PASSWORD}, field="password")
    assert answer.status_code == 302, answer.text
    assert live.log.count("POST", "/relay/api/revoke") == 2
    assert [relay_status(live, token) for token in tokens] == [401, 401]
    with live.app.app_context():
        assert db.session.scalar(select(User)) is None
        assert db.session.scalar(select(Connection)) is None


def test_a_copied_cookie_is_refused_after_sign_out(live):
    browser = requests.Session()
    register(browser, live.site)
    thief = requests.Session()
    thief.cookies.update(browser.cookies)
    assert thief.get(f"{live.site}/settings", allow_redirects=False).status_code == 200
    page = browser.get(f"{live.site}/settings")
    # The navigation is drawn twice (desktop and the phone menu): both sign-out forms are alike.
    logouts = [form for form in forms_in(page.text, page.url) if form.action.endswith("/logout")]
    assert logouts
    assert all(form.fields == logouts[0].fields for form in logouts)
    logout = logouts[0]
    signed_out = browser.post(logout.action, data=logout.fields, allow_redirects=False)
    assert signed_out.status_code == 302
    assert browser.get(f"{live.site}/settings", allow_redirects=False).status_code == 302
    assert thief.get(f"{live.site}/settings", allow_redirects=False).status_code == 302
