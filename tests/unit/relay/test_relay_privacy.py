"""Whose inbox is whose (SPEC 6): private sandbox chats, a private inbox, private images.

Keiko (signed in on ``client``) sends to her chats; Hana, another person, and a visitor must
see none of it — not on the page, not in the JSON, not through image URLs, not by naming
Keiko's chat in the query string. A token reads its own chat only; an admin reads them all.
"""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import User
from notify_site.relay.accounts import Person
from notify_site.relay.chats import visible_chats
from notify_site.relay.inbox import signed_image_query
from notify_site.relay.models import RelayChat, RelayImage
from notify_site.relay.quota_models import RelayLineTotal, RelayLineUsage
from notify_site.relay.ratelimit import RateLimits
from notify_site.relay.tokens import connected_services
from notify_site.services.account_deletion import delete_account
from tests import images
from tests.factories import PASSWORD, add_person, sign_in

PNG = images.png()


def send(client, token, **data):
    response = client.post(
        "/relay/api/notify",
        headers={"Authorization": f"Bearer {token}"},
        data=data,
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.get_json()


@pytest.fixture
def keikos(app, client, get_token, chat_id):
    """Keiko's two tokens (1-on-1 and Family), a message to each, an image to Family."""
    user, family = get_token(), get_token("GROUP", "Family")
    send(client, user, message="keiko private note")
    send(client, family, message="keiko family photo", imageFile=(io.BytesIO(PNG), "p.png"))
    with app.app_context():
        public_id = db.session.scalar(select(RelayImage.public_id))
    return {
        "user": user,
        "family": family,
        "family_chat": chat_id("GROUP", "Family"),
        "user_chat": chat_id(),
        "image": f"/relay/images/{public_id}",
        "public_id": public_id,
    }


@pytest.fixture
def hana(app):
    other = app.test_client()
    add_person(app, other, "hana")
    return other


def test_another_person_sees_none_of_it(hana, keikos):
    page = hana.get("/relay/inbox")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "keiko" not in html
    assert keikos["public_id"] not in html
    # Hana has chats of her own, named alike, but not Keiko's.
    assert f"chat={keikos['family_chat']}" not in html
    assert "1-on-1 chat with Sandbox user" in html
    assert hana.get("/relay/inbox.json").get_json()["messages"] == []
    for chat in (keikos["family_chat"], keikos["user_chat"]):
        assert hana.get(f"/relay/inbox?chat={chat}").status_code == 404
        refused = hana.get(f"/relay/inbox.json?chat={chat}")
        assert (refused.status_code, refused.get_json()["status"]) == (404, 404)
    assert hana.get(keikos["image"]).status_code == 404


def test_the_owner_sees_her_messages_and_image(client, keikos):
    data = client.get("/relay/inbox.json").get_json()
    assert [m["message"] for m in data["messages"]] == ["keiko family photo", "keiko private note"]
    served = client.get(keikos["image"])
    assert (served.status_code, served.data) == (200, PNG)
    assert served.headers["Cache-Control"] == "private, max-age=86400"
    assert client.get("/relay/inbox").headers["Cache-Control"] == "private, no-store"


def test_a_visitor_sees_nothing(app, keikos):
    visitor = app.test_client()
    page = visitor.get("/relay/inbox")
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/login?next=")
    answer = visitor.get("/relay/inbox.json")
    assert answer.status_code == 401
    assert answer.get_json()["status"] == 401
    assert "keiko" not in answer.get_data(as_text=True)
    assert visitor.get(keikos["image"]).status_code == 404
    assert visitor.get(f"/relay/inbox.json?chat={keikos['family_chat']}").status_code == 401


def test_a_token_reads_only_its_own_chat(app, keikos):
    script = app.test_client()  # no session: only the token
    bearer = {"Authorization": f"Bearer {keikos['user']}"}
    data = script.get("/relay/inbox.json", headers=bearer).get_json()
    assert [m["message"] for m in data["messages"]] == ["keiko private note"]
    other_chat = script.get(f"/relay/inbox.json?chat={keikos['family_chat']}", headers=bearer)
    assert other_chat.status_code == 404
    # The Family token reads Family, and fetches its image with the same header.
    family = {"Authorization": f"Bearer {keikos['family']}"}
    (message,) = script.get("/relay/inbox.json", headers=family).get_json()["messages"]
    image_path = message["image"]["fullsize_url"].removeprefix("http://127.0.0.1:5000")
    assert script.get(image_path, headers=family).data == PNG
    assert script.get(image_path, headers=bearer).status_code == 404
    assert script.get(image_path).status_code == 404


def test_reading_the_inbox_with_a_token_spends_no_call(app, keikos):
    bearer = {"Authorization": f"Bearer {keikos['user']}"}
    app.test_client().get("/relay/inbox.json", headers=bearer)
    status = app.test_client().get("/relay/api/status", headers=bearer)
    # Two calls so far: the send in the fixture and this status call.
    assert status.headers["X-RateLimit-Remaining"] == "998"


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Basic abc", ""])
def test_a_bad_token_on_the_json_inbox_is_a_401_even_with_a_session(client, keikos, header):
    answer = client.get("/relay/inbox.json", headers={"Authorization": header})
    assert answer.status_code == 401
    assert answer.get_json() == {"status": 401, "message": "Invalid access token"}


def test_a_revoked_token_reads_nothing(app, keikos):
    bearer = {"Authorization": f"Bearer {keikos['user']}"}
    assert app.test_client().post("/relay/api/revoke", headers=bearer).status_code == 200
    assert app.test_client().get("/relay/inbox.json", headers=bearer).status_code == 401


def test_image_urls_cannot_be_counted_through(app, keikos):
    with app.app_context():
        image = db.session.scalar(select(RelayImage))
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", image.public_id)
        row_id = image.id
    visitor = app.test_client()
    assert visitor.get(f"/relay/images/{row_id}").status_code == 404
    # The signed URL given to LINE (channel mode) opens it without a session; a forged one not.
    with app.test_request_context():
        query = signed_image_query(keikos["public_id"])
    assert visitor.get(f"{keikos['image']}?{query}").data == PNG
    assert visitor.get(f"{keikos['image']}?s=forged").status_code == 404
    # A signature opens its own image only.
    assert visitor.get(f"/relay/images/{'B' * 22}?{query}").status_code == 404


def test_an_admin_sees_every_persons_chats_named_by_owner(app, keikos, hana):
    admin = app.test_client()
    with app.app_context():
        root = db.session.scalar(select(User).where(User.username == "first-admin"))
        sign_in(admin, root)
    hana.get("/relay/inbox")  # Hana's chats exist now
    html = admin.get("/relay/inbox").get_data(as_text=True)
    assert "keiko family photo" in html
    assert "keiko · Family" in html
    assert "hana · Family" in html
    assert admin.get(keikos["image"]).data == PNG
    assert admin.get(f"/relay/inbox?chat={keikos['family_chat']}").status_code == 200
    assert len(admin.get("/relay/inbox.json").get_json()["messages"]) == 2
    with app.app_context():
        owners = set(db.session.scalars(select(RelayChat.owner_id)))
    assert len(owners) >= 3  # Keiko's, Hana's and the admin's own


def test_a_deleted_account_leaves_nothing_for_the_next_one(app, client, keikos, person):
    with app.app_context():
        delete_account(db.session.get(User, person.id), PASSWORD)
        assert (
            db.session.scalars(select(RelayChat).where(RelayChat.owner_id == person.id)).all() == []
        )
        assert db.session.scalar(select(RelayImage)) is None
    assert (
        app.test_client()
        .get("/relay/api/status", headers={"Authorization": f"Bearer {keikos['user']}"})
        .status_code
        == 401
    )
    # An account that gets the same id later (SQLite hands out the highest id again) would
    # find nothing of hers: the relay keeps no chat, token or link under that id.
    with app.app_context():
        same_id = Person(person.id, "newcomer", is_admin=False)
        assert visible_chats(same_id) == []
        limits = RateLimits.from_config(app.config)
        assert connected_services(person.id, limits=limits, now=utcnow()) == []
        # Nor any of her LINE units: no ledger row names her, no running total is hers.
        assert (
            db.session.scalars(
                select(RelayLineUsage.id).where(RelayLineUsage.person_id == person.id)
            ).all()
            == []
        )
        assert (
            db.session.scalars(
                select(RelayLineTotal.subject).where(RelayLineTotal.subject.like("person:%"))
            ).all()
            == []
        )
