"""For any notification, the site accepts it exactly when the relay would.

A property test (hypothesis): random content, often on the edges (1000 characters, control
characters, lone surrogates, odd URLs, sticker ids around 0 and 2**31, images of every kind
and size), is posted to the site's JSON API (multipart when there is a file) with the test
client. Then what the site's worker would send for it goes to the relay's ``/api/notify``
through the real :class:`~notify_site.notify_client.NotifyClient` (its encoding, its fields),
forwarded in-process: for an accepted request, the stored row, as delivery sends it; for a
refused one, the values as given. The site's 202 must meet a 200 at the relay, its 400 a 400.
"""

from __future__ import annotations

import io

import pytest
import responses
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from notify_site.extensions import db
from notify_site.models import Notification, NotificationImage
from notify_site.notify_client import BadRequestError, NotifyClient
from tests import images
from tests.conftest import make_test_config
from tests.factories import create_api_key, create_connection, create_user

RELAY = "http://relay.test"
MIB = 1024 * 1024

# Ordinary characters, and those on the edges of the rules (controls, a lone surrogate, an
# ideographic space); the ordinary ones more often, so that about half the content passes.
ALPHABET = st.sampled_from(
    ["a", "Z", " ", "あ", "😀", "é", "/", "%", "?", "#", "\t", "\n", "\r"] * 3
    + ["\x00", "\x01", "\x1b", "\x7f", "\u3000", "\ud800"]
)
TEXT = st.text(ALPHABET, max_size=10)
MESSAGES = st.one_of(
    st.none(),
    st.just("hello"),
    TEXT,
    st.builds(lambda n, tail: "x" * n + tail, st.integers(990, 1001), TEXT),
)
STICKER_IDS = st.one_of(
    st.none(),
    st.sampled_from([0, 1, -1, 446, 2**31 - 1, 2**31]),
    st.integers(-(2**33), 2**33),
)
STICKERS = st.one_of(
    st.just((None, None)), st.just((446, 1988)), st.tuples(STICKER_IDS, STICKER_IDS)
)
URL = st.one_of(
    st.just("https://img.example/a.jpg"),
    st.builds(
        lambda scheme, host, path: scheme + host + path,
        st.sampled_from(["https://", "http://", "HTTPS://", "ftp://", "https:/", ""]),
        st.sampled_from(
            ["img.example", "", "[::1", "a b", "例え.jp", "img.example:443", "img.example:99999"]
        ),
        st.one_of(
            TEXT.map(lambda text: "/" + text),
            # 2000 characters is the limit: "https://img.example/" is 20 of them.
            st.integers(1979, 1981).map(lambda n: "/" + "a" * n),
        ),
    ),
)
URLS = st.one_of(
    st.just((None, None)),
    st.just(("https://img.example/t.jpg", "https://img.example/f.jpg")),
    st.tuples(st.one_of(st.none(), URL), st.one_of(st.none(), URL)),
)
FILES = st.one_of(
    st.none(),
    st.just(("png", "image/png")),
    st.tuples(
        st.sampled_from(
            [
                "png",
                "jpeg",
                "png 2048",
                "png 2049",
                "bomb",
                "gif",
                "truncated",
                "empty",
                "5 MiB",
                "over 5 MiB",
            ]
        ),
        st.sampled_from(["image/png", "image/jpeg", "application/octet-stream", "image/gif"]),
    ),
)


def file_bytes(kind: str) -> bytes:
    return {
        "png": images.png,
        "jpeg": images.jpeg,
        "png 2048": lambda: images.png_header(2048, 2048),
        "png 2049": lambda: images.png_header(2049, 7),
        "bomb": lambda: images.png_header(30000, 30000),
        "gif": lambda: b"GIF89a" + b"\x00" * 30,
        "truncated": lambda: images.png()[:25],
        "empty": lambda: b"",
        "5 MiB": lambda: images.png() + b"\x00" * (5 * MIB - len(images.png())),
        "over 5 MiB": lambda: images.png() + b"\x00" * (5 * MIB - len(images.png()) + 1),
    }[kind]()


@pytest.fixture
def app_config(tmp_path):
    return make_test_config(tmp_path, RELAY_RATE_LIMIT=100_000, RELAY_IMAGE_RATE_LIMIT=100_000)


@pytest.fixture
def site_key(app) -> str:
    with app.app_context():
        alice = create_user("alice")
        create_connection(alice, label="Ops")
        _, key = create_api_key(alice, "agreement")
    return key


@pytest.fixture
def relay_client(client, mocked_http, token):
    """A NotifyClient whose calls reach the relay's /api/notify in-process."""

    def forward(request):
        answer = client.post(
            "/relay/api/notify",
            data=request.body,
            headers={
                "Content-Type": request.headers["Content-Type"],
                "Authorization": request.headers["Authorization"],
            },
        )
        return answer.status_code, {}, answer.get_data()

    mocked_http.add_callback(responses.POST, f"{RELAY}/api/notify", callback=forward)
    return NotifyClient(RELAY)


def post_to_site(client, key, message, package_id, sticker_id, thumbnail, fullsize, upload, silent):
    headers = {"Authorization": f"Bearer {key}"}
    if upload is None:
        body = {"connection": "Ops", "notification_disabled": silent}
        if message is not None:
            body["message"] = message
        sticker = {"package_id": package_id, "sticker_id": sticker_id}
        sticker = {name: value for name, value in sticker.items() if value is not None}
        if sticker:
            body["sticker"] = sticker
        image = {"thumbnail_url": thumbnail, "fullsize_url": fullsize}
        image = {name: value for name, value in image.items() if value is not None}
        if image:
            body["image"] = image
        return client.post("/api/v1/notifications", json=body, headers=headers)
    data, declared = upload
    form = {
        "connection": "Ops",
        "message": message,
        "sticker_package_id": package_id,
        "sticker_id": sticker_id,
        "image_thumbnail_url": thumbnail,
        "image_fullsize_url": fullsize,
        "notification_disabled": "true" if silent else "false",
    }
    form = {name: str(value) for name, value in form.items() if value is not None}
    form["image_file"] = (io.BytesIO(data), "upload.bin", declared)
    return client.post(
        "/api/v1/notifications", data=form, headers=headers, content_type="multipart/form-data"
    )


def relay_accepts(relay_client, token, message, **options) -> bool:
    try:
        relay_client.notify(token, message, **options)
    except BadRequestError:
        return False
    except UnicodeEncodeError:
        return False  # a lone surrogate: no HTTP client can even send it
    return True


def sent_by_the_worker(app, notification_id: int) -> tuple[str, dict]:
    """The stored row as delivery sends it (notify_site.services.delivery.deliver_one)."""
    with app.app_context():
        row = db.session.get(Notification, notification_id)
        image_file = None
        if row.image_id is not None:
            image = db.session.get(NotificationImage, row.image_id)
            image_file = (image.filename, image.data, image.content_type)
        return row.message, {
            "sticker_package_id": row.sticker_package_id,
            "sticker_id": row.sticker_id,
            "image_thumbnail": row.image_thumbnail_url,
            "image_fullsize": row.image_fullsize_url,
            "image_file": image_file,
            "notification_disabled": row.notification_disabled,
        }


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    message=MESSAGES,
    sticker=STICKERS,
    urls=URLS,
    file=FILES,
    silent=st.booleans(),
)
def test_the_site_accepts_exactly_what_the_relay_accepts(
    app, client, site_key, relay_client, token, message, sticker, urls, file, silent
):
    (package_id, sticker_id), (thumbnail, fullsize) = sticker, urls
    upload = None if file is None else (file_bytes(file[0]), file[1])
    if upload is not None:
        # A multipart body carries text as UTF-8: a lone surrogate cannot even be sent.
        texts = [message or "", thumbnail or "", fullsize or ""]
        if any("\ud800" in text for text in texts):
            return
    answer = post_to_site(
        client, site_key, message, package_id, sticker_id, thumbnail, fullsize, upload, silent
    )
    assert answer.status_code in (202, 400), answer.get_data(as_text=True)
    site_accepted = answer.status_code == 202
    if site_accepted:
        notification_id = answer.get_json()["notifications"][0]["id"]
        sent_message, options = sent_by_the_worker(app, notification_id)
    else:
        assert answer.get_json()["error"]["code"] == "validation_failed"
        sent_message = message
        options = {
            "sticker_package_id": package_id,
            "sticker_id": sticker_id,
            "image_thumbnail": thumbnail,
            "image_fullsize": fullsize,
            "image_file": None if upload is None else ("upload.bin", *upload),
            "notification_disabled": silent,
        }
    relay_accepted = relay_accepts(relay_client, token, sent_message, **options)
    event("accepted" if site_accepted else "refused")
    assert site_accepted == relay_accepted, (answer.get_json(), sent_message, options)
