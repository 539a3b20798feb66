"""GET /relay/inbox and /relay/inbox.json: what each of the person's chats received.

Privacy (SPEC 6) is in tests/unit/relay/test_relay_privacy.py; here, the pages themselves.
"""

from __future__ import annotations

import io
import re
from datetime import datetime

from tests import images

PNG = images.png()


def send(client, token, **data):
    response = client.post(
        "/relay/api/notify",
        headers={"Authorization": f"Bearer {token}"},
        data=data,
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.get_json()


def test_an_empty_inbox_says_how_to_get_messages_here(client, person):
    response = client.get("/relay/inbox")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "No messages" in html
    assert "/relay/api/notify" in html
    assert "Authorization: Bearer" in html
    assert client.get("/relay/inbox.json").get_json() == {"messages": [], "page": 1, "pages": 1}


def test_the_inbox_page_shows_each_message_newest_first(client, get_token):
    user, group = get_token(), get_token("GROUP", "Family")
    send(client, user, message="first <b>bold</b>\nsecond line")
    send(
        client,
        group,
        message="with sticker",
        stickerPackageId="446",
        stickerId="1988",
        notificationDisabled="true",
    )
    send(
        client,
        group,
        message="with image",
        imageThumbnail="https://img.example/thumb.jpg",
        imageFullsize="https://img.example/full.jpg",
    )
    html = client.get("/relay/inbox").get_data(as_text=True)

    assert html.index("with image") < html.index("with sticker") < html.index("first &lt;b")
    # Escaped, newline kept (the stylesheet shows it with white-space: pre-wrap).
    assert "first &lt;b&gt;bold&lt;/b&gt;\nsecond line" in html
    assert "<b>bold</b>" not in html
    assert 'class="relay-message-text"' in html
    assert "Example Service" in html
    assert "1-on-1 chat with Sandbox user" in html
    assert "package 446 · sticker 1988" in html
    assert re.search(
        r'<a class="relay-image" href="https://img.example/full.jpg"[^>]*>\s*'
        r'<img src="https://img.example/thumb.jpg"',
        html,
    )
    silent = re.findall(r'<li class="card relay-message( relay-silent)?"', html)
    assert silent == ["", " relay-silent", ""]
    assert html.count(">silent</span>") == 1
    assert re.search(r'<time datetime="[^"]+">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time>', html)


def test_the_inbox_can_be_filtered_by_chat(app, client, get_token, chat_id):
    send(client, get_token(), message="to the user")
    send(client, get_token("GROUP", "Family"), message="to the family")
    family = chat_id("GROUP", "Family")

    html = client.get(f"/relay/inbox?chat={family}").get_data(as_text=True)
    assert "to the family" in html
    assert "to the user" not in html

    data = client.get(f"/relay/inbox.json?chat={family}").get_json()
    assert [m["message"] for m in data["messages"]] == ["to the family"]

    team = chat_id("GROUP", "Team alerts")
    empty = client.get(f"/relay/inbox?chat={team}").get_data(as_text=True)
    assert "No messages in Team alerts yet" in empty


def test_the_json_inbox_has_every_field(client, get_token, chat_id):
    token = get_token("GROUP", "Team alerts")
    send(client, token, message="plain")
    send(client, token, message="sticker", stickerPackageId="1", stickerId="2")
    send(
        client,
        token,
        message="urls",
        imageThumbnail="https://img.example/t.jpg",
        imageFullsize="https://img.example/f.jpg",
        notificationDisabled="true",
    )
    send(client, token, message="upload", imageFile=(io.BytesIO(PNG), "p.png"))

    data = client.get("/relay/inbox.json").get_json()
    assert (data["page"], data["pages"]) == (1, 1)
    upload, urls, sticker, plain = data["messages"]
    team = {"id": chat_id("GROUP", "Team alerts"), "name": "Team alerts", "type": "GROUP"}

    assert set(plain) == {
        "id",
        "chat",
        "client",
        "message",
        "sticker",
        "image",
        "notification_disabled",
        "created_at",
    }
    assert plain["chat"] == team
    assert plain["client"] == "Example Service"
    assert plain["message"] == "plain"
    assert plain["sticker"] is None
    assert plain["image"] is None
    assert plain["notification_disabled"] is False
    assert datetime.fromisoformat(plain["created_at"]).utcoffset().total_seconds() == 0
    assert sticker["sticker"] == {"package_id": 1, "sticker_id": 2}
    assert urls["image"] == {
        "thumbnail_url": "https://img.example/t.jpg",
        "fullsize_url": "https://img.example/f.jpg",
    }
    assert urls["notification_disabled"] is True
    image_url = upload["image"]["fullsize_url"]
    # At the configured origin (that of NOTIFY_REDIRECT_URI), not the request's Host.
    assert re.fullmatch(r"http://127\.0\.0\.1:5000/relay/images/[A-Za-z0-9_-]{22}", image_url)
    assert upload["image"]["thumbnail_url"] == image_url
    served = client.get(image_url.removeprefix("http://127.0.0.1:5000"))
    assert (served.status_code, served.mimetype, served.data) == (200, "image/png", PNG)
    assert upload["id"] > urls["id"] > sticker["id"] > plain["id"]


def test_the_inbox_is_paginated_by_fifty(client, token):
    for number in range(51):
        send(client, token, message=f"message number {number}")
    first = client.get("/relay/inbox.json").get_json()
    assert (first["page"], first["pages"], len(first["messages"])) == (1, 2, 50)
    assert first["messages"][0]["message"] == "message number 50"
    second = client.get("/relay/inbox.json?page=2").get_json()
    assert [m["message"] for m in second["messages"]] == ["message number 0"]

    html = client.get("/relay/inbox").get_data(as_text=True)
    assert "Page 1 of 2" in html
    assert 'rel="next" href="/relay/inbox?page=2"' in html
    page2 = client.get("/relay/inbox?page=2").get_data(as_text=True)
    assert "message number 0" in page2
    assert "message number 1<" not in page2


def test_nonsense_query_values_are_ignored_not_errors(client, token):
    send(client, token, message="still here")
    for query in ["page=abc", "page=-3", "page=0", "chat=x", f"chat={10**30}", f"page={10**30}"]:
        response = client.get(f"/relay/inbox?{query}")
        assert response.status_code == 200, query
        assert "still here" in response.get_data(as_text=True), query
        assert client.get(f"/relay/inbox.json?{query}").status_code == 200
