"""What the first pass of issue 8 left in English: stored texts shown on pages, the API's
validation reasons and 429 message, the refusal of an inactive chat, the send page with only
inactive chats.

Stored texts (a notification's ``last_error``, a connection's ``status_detail``) stay English
in the database and in the API; pages and the pages' own JSON show them translated.
"""

from __future__ import annotations

import pytest

from notify_site import stored_text
from notify_site.extensions import db
from notify_site.models import Connection, NotificationStatus, User
from notify_site.services.connections import DETAIL_REVOKED_HERE
from notify_site.services.retry import CHAT_UNREACHABLE, CONNECTION_REVOKED
from tests.conftest import make_test_config
from tests.factories import create_api_key, create_connection, create_notification, login

JA = {"Accept-Language": "ja,en;q=0.5"}
ZH = {"Accept-Language": "zh-TW"}


def add_failed(app, connection_id: int, error: str) -> int:
    with app.app_context():
        return create_notification(
            connection_id, status=NotificationStatus.FAILED, last_error=error
        ).id


def ops(app, user_id: int, **values) -> int:
    with app.app_context():
        return create_connection(db.session.get(User, user_id), **values).id


@pytest.mark.parametrize(
    ("stored", "ja"),
    [
        (CONNECTION_REVOKED, "接続が解除されました"),
        (
            CHAT_UNREACHABLE,
            "トークに届けられません（ボットがブロックされたか、グループから削除されました）",
        ),
        (
            "gave up after 5 attempts: connection revoked",
            "5 回試みて断念しました：接続が解除されました",
        ),
        # The server's own words stay as the server wrote them; the site's part is translated.
        (
            "gave up after 3 attempts: Notify server error",
            "3 回試みて断念しました：Notify server error",
        ),
        ("500: Notify server error", "500: Notify server error"),
        ("500: connection revoked", "500: 接続が解除されました"),
        (
            "Notify server answered 503: busy",
            "Notify サーバーの応答 503：busy",
        ),
        (
            "could not connect to the Notify server at http://n:1/api/notify "
            "(ConnectionError: refused)",
            "http://n:1/api/notify の Notify サーバーに接続できませんでした"
            "（ConnectionError: refused）",
        ),
        ("Invalid sticker", "Invalid sticker"),  # a server's message: left alone
        (DETAIL_REVOKED_HERE, "このサイトで解除しました。"),
    ],
)
def test_stored_texts_are_translated_and_server_words_kept(app, stored, ja):
    with app.test_request_context("/", headers=JA):
        assert stored_text.translate(stored) == ja
    with app.test_request_context("/"):
        assert stored_text.translate(stored) == stored
    assert stored_text.translate(None) is None


def test_a_failed_notifications_error_is_japanese_on_the_pages_and_english_in_the_api(
    app, client, alice
):
    connection_id = ops(app, alice)
    notification_id = add_failed(app, connection_id, CHAT_UNREACHABLE)
    login(client)
    japanese = "トークに届けられません（ボットがブロックされたか、グループから削除されました）"

    status = client.get(f"/send/status?ids={notification_id}", headers=JA)
    assert japanese in status.get_data(as_text=True)
    assert CHAT_UNREACHABLE not in status.get_data(as_text=True)
    dashboard = client.get("/dashboard", headers=JA).get_data(as_text=True)
    assert japanese in dashboard

    # The pages' own JSON carries both: the data as stored, and the text the page shows.
    row = client.get(f"/send/status.json?ids={notification_id}", headers=JA).get_json()
    assert row["notifications"][0]["last_error"] == CHAT_UNREACHABLE
    assert row["notifications"][0]["last_error_text"] == japanese
    [recent] = client.get("/dashboard.json", headers=JA).get_json()["notifications"]
    assert (recent["last_error"], recent["last_error_text"]) == (CHAT_UNREACHABLE, japanese)

    # The API returns the data as stored, whatever the language.
    with app.app_context():
        _, key = create_api_key(alice, "test")
    answer = client.get(
        f"/api/v1/notifications/{notification_id}",
        headers={**JA, "Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200
    assert answer.get_json()["last_error"] == CHAT_UNREACHABLE


def test_a_revoked_connections_detail_is_translated_on_the_connections_page(app, client, alice):
    connection_id = ops(app, alice, status="revoked")
    with app.app_context():
        db.session.get(Connection, connection_id).status_detail = DETAIL_REVOKED_HERE
        db.session.commit()
    login(client)
    assert "このサイトで解除しました。" in client.get("/connections", headers=JA).get_data(
        as_text=True
    )
    assert "已在本網站撤銷。" in client.get("/connections", headers=ZH).get_data(as_text=True)


def test_sending_to_a_revoked_chat_is_refused_in_japanese(app, client, alice):
    with app.app_context():
        _, key = create_api_key(alice, "test")
    ops(app, alice, label="Old", status="revoked")
    answer = client.post(
        "/api/v1/notifications",
        json={"connection": "Old", "message": "hi"},
        headers={**JA, "Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 409
    error = answer.get_json()["error"]
    assert error["code"] == "connection_inactive"
    assert error["message"] == "接続 'Old' は解除済みです。接続し直してください"


def test_marshmallows_reasons_follow_accept_language_and_the_fields_stay(app, client, alice):
    with app.app_context():
        _, key = create_api_key(alice, "test")
    body = {"connection": 1, "message": 5, "surprise": True}
    headers = {"Authorization": f"Bearer {key}"}
    english = client.post("/api/v1/notifications", json=body, headers=headers).get_json()
    japanese = client.post("/api/v1/notifications", json=body, headers={**headers, **JA}).get_json()
    chinese = client.post("/api/v1/notifications", json=body, headers={**headers, **ZH}).get_json()
    assert english["error"]["code"] == japanese["error"]["code"] == "validation_failed"
    assert set(english["error"]["fields"]) == set(japanese["error"]["fields"])
    assert english["error"]["fields"]["message"] == "Not a valid string."
    assert japanese["error"]["fields"]["message"] == "文字列ではありません。"
    assert chinese["error"]["fields"]["message"] == "不是有效的字串。"
    assert english["error"]["fields"]["surprise"] == "Unknown field."
    assert japanese["error"]["fields"]["surprise"] == "不明な項目です。"


@pytest.fixture
def app_config(tmp_path):
    return make_test_config(tmp_path, API_RATE_LIMIT="3 per minute")


def test_the_apis_429_message_follows_accept_language_and_its_code_stays(app, client, alice):
    with app.app_context():
        _, key = create_api_key(alice, "test")
    headers = {"Authorization": f"Bearer {key}"}
    for _ in range(3):
        assert client.get("/api/v1/connections", headers=headers).status_code == 200
    english = client.get("/api/v1/connections", headers=headers)
    assert english.status_code == 429
    assert english.get_json()["error"]["message"].startswith(
        "Too many requests: the limit is 3 per minute. Retry after "
    )
    japanese = client.get("/api/v1/connections", headers={**headers, **JA})
    assert japanese.status_code == 429
    error = japanese.get_json()["error"]
    assert error["code"] == "rate_limited"
    assert error["message"].startswith("リクエストが多すぎます：上限は 1 分あたり 3 回です。")
    chinese = client.get("/api/v1/connections", headers={**headers, **ZH}).get_json()["error"]
    assert chinese["message"].startswith("請求過多：上限為每分鐘 3 次。")
