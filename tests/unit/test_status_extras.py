"""The status page says what came with a message (issue 20): an image, a sticker, silent."""

from __future__ import annotations

from notify_site.extensions import db
from notify_site.models import User
from tests.factories import create_connection, create_notification, login
from tests.htmltree import parse


def test_the_status_page_shows_image_sticker_and_silent(app, client, alice):
    with app.app_context():
        ops = create_connection(db.session.get(User, alice), label="Ops")
        plain = create_notification(ops, message="plain").id
        image = create_notification(
            ops,
            message="graph",
            image_thumbnail_url="https://i.example/t.jpg",
            image_fullsize_url="https://i.example/f.jpg",
        ).id
        sticker = create_notification(
            ops, message="yay", sticker_package_id=446, sticker_id=1988, notification_disabled=True
        ).id
    login(client)
    page = parse(client.get(f"/send/status?ids={plain},{image},{sticker}").get_data(as_text=True))

    def extras(notification_id: int) -> list[str]:
        row = page.one("tr", data_notification_id=str(notification_id))
        return [
            badge.attrs["data-extra"]
            for badge in row.find_all("span", class_="badge")
            if "data-extra" in badge.attrs
        ]

    assert extras(plain) == []
    assert extras(image) == ["image"]
    assert extras(sticker) == ["sticker", "silent"]
