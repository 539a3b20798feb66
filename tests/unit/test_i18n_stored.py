"""What the first pass of issue 8 left in English: stored texts shown on pages, the API's
validation reasons and 429 message, the refusal of an inactive chat, the send page with only
inactive chats.

Stored texts (a notification's ``last_error``, a connection's ``status_detail``) stay English
in the database and in the API; pages and the pages' own JSON show them translated, from the
code stored beside the English (notify_site/stored_text.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import requests

from notify_site import stored_text
from notify_site.extensions import db
from notify_site.models import Connection, NotificationStatus, User
from notify_site.notify_client import NetworkError, NotifyClient
from notify_site.services.admin import CANCELLED_BY_ADMIN
from notify_site.services.connections import DETAIL_REVOKED_HERE
from notify_site.services.delivery import TOKEN_REVOKED_DETAIL
from notify_site.services.retry import CHAT_UNREACHABLE, CONNECTION_REVOKED
from notify_site.stored_text import StoredText, site_text
from tests.conftest import make_test_config
from tests.factories import create_api_key, create_connection, create_notification, login

JA = {"Accept-Language": "ja,en;q=0.5"}
ZH = {"Accept-Language": "zh-TW"}


def add_failed(app, connection_id: int, error: StoredText) -> int:
    with app.app_context():
        return create_notification(
            connection_id, status=NotificationStatus.FAILED, last_error=error
        ).id


def ops(app, user_id: int, **values) -> int:
    with app.app_context():
        return create_connection(db.session.get(User, user_id), **values).id


def _migration():
    """The migration that gave the rows written before the codes theirs (its parse())."""
    path = next(Path(__file__).parents[2].glob("migrations/versions/*_stored_text_codes.py"))
    spec = importlib.util.spec_from_file_location("stored_text_codes_migration", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BACKFILL = _migration()


@pytest.mark.parametrize(
    ("stored", "ja"),
    [
        (CONNECTION_REVOKED.text, "接続が解除されました"),
        (
            CHAT_UNREACHABLE.text,
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
        (DETAIL_REVOKED_HERE.text, "このサイトで解除しました。"),
    ],
)
def test_stored_texts_are_translated_and_server_words_kept(app, stored, ja):
    """The English shapes written before the codes: the migration finds each one's code, and
    pages show the translation of that code (the server's words as they came)."""
    code, params = BACKFILL.parse(stored) or (None, None)
    with app.test_request_context("/", headers=JA):
        assert stored_text.shown(stored, code, params) == ja
    with app.test_request_context("/"):
        assert stored_text.shown(stored, code, params) == stored
    assert stored_text.shown(None, code, params) is None


def test_what_the_site_writes_now_reads_back_as_the_migration_would_have_coded_it():
    """The codes the site writes and those the migration gave old rows are one vocabulary."""
    texts = [
        CONNECTION_REVOKED,
        CHAT_UNREACHABLE,
        CANCELLED_BY_ADMIN,
        DETAIL_REVOKED_HERE,
        TOKEN_REVOKED_DETAIL,
        site_text("gave_up", count=5, reason=CONNECTION_REVOKED),
        site_text("gave_up", count=8, reason=StoredText("Internal Server Error")),
    ]
    for text in texts:
        code, params = BACKFILL.parse(text.text)
        assert (code, params or None) == (text.code, text.params), text


def test_every_code_has_a_template_in_the_catalogue():
    assert set(BACKFILL.FIXED.values()) <= set(stored_text.TEMPLATES)
    assert {code for _, code in BACKFILL.PATTERNS} <= set(stored_text.TEMPLATES)


def test_the_notify_clients_own_failures_are_translated_from_their_code(app, mocked_http):
    mocked_http.post("http://n:1/api/notify", body=requests.ConnectionError("refused at 10.0.0.1"))
    with pytest.raises(NetworkError) as raised:
        NotifyClient("http://n:1", timeout=2).notify("token-1", "hi")
    text = stored_text.error_text(raised.value)
    assert text.code == "no_connection"
    assert text.text.startswith("could not connect to the Notify server at http://n:1/api/notify")
    with app.test_request_context("/", headers=ZH):
        shown = stored_text.shown(text.text, text.code, text.params)
    assert shown.startswith("無法連線到位於 http://n:1/api/notify 的 Notify 伺服器")
    assert "refused at 10.0.0.1" in shown  # the transport's own words are kept


def test_rewording_the_english_keeps_the_pages_translated(app, client, alice):
    """Pages translate from the code, not from the English: a row whose English says it in
    other words (an earlier wording, or a later one) is still shown translated."""
    connection_id = ops(app, alice)
    reworded = StoredText("the connection was revoked (in other words)", "connection_revoked")
    notification_id = add_failed(app, connection_id, reworded)
    login(client)

    for headers, translated in ((JA, "接続が解除されました"), (ZH, "連結已撤銷")):
        status = client.get(f"/send/status?ids={notification_id}", headers=headers)
        assert translated in status.get_data(as_text=True)
        assert translated in client.get("/dashboard", headers=headers).get_data(as_text=True)
    # English pages say it in today's words too; the API returns the English as stored.
    assert CONNECTION_REVOKED.text in client.get("/dashboard").get_data(as_text=True)
    row = client.get(f"/send/status.json?ids={notification_id}", headers=JA).get_json()
    assert row["notifications"][0]["last_error"] == reworded.text
    assert row["notifications"][0]["last_error_text"] == "接続が解除されました"


def test_an_unknown_code_or_unfitting_params_show_the_english(app):
    with app.test_request_context("/", headers=JA):
        assert stored_text.shown("from a newer site", "not_a_code_yet", None) == "from a newer site"
        assert stored_text.shown("gave up", "gave_up", {"count": 3}) == "gave up"
        assert stored_text.shown("gave up", "gave_up", {"count": 3, "reason": {}}) == "gave up"


def test_a_failed_notifications_error_is_japanese_on_the_pages_and_english_in_the_api(
    app, client, alice
):
    connection_id = ops(app, alice)
    notification_id = add_failed(app, connection_id, CHAT_UNREACHABLE)
    login(client)
    japanese = "トークに届けられません（ボットがブロックされたか、グループから削除されました）"

    status = client.get(f"/send/status?ids={notification_id}", headers=JA)
    assert japanese in status.get_data(as_text=True)
    assert CHAT_UNREACHABLE.text not in status.get_data(as_text=True)
    dashboard = client.get("/dashboard", headers=JA).get_data(as_text=True)
    assert japanese in dashboard

    # The pages' own JSON carries both: the data as stored, and the text the page shows.
    row = client.get(f"/send/status.json?ids={notification_id}", headers=JA).get_json()
    assert row["notifications"][0]["last_error"] == CHAT_UNREACHABLE.text
    assert row["notifications"][0]["last_error_text"] == japanese
    [recent] = client.get("/dashboard.json", headers=JA).get_json()["notifications"]
    assert (recent["last_error"], recent["last_error_text"]) == (CHAT_UNREACHABLE.text, japanese)

    # The API returns the data as stored, whatever the language.
    with app.app_context():
        _, key = create_api_key(alice, "test")
    answer = client.get(
        f"/api/v1/notifications/{notification_id}",
        headers={**JA, "Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200
    assert answer.get_json()["last_error"] == CHAT_UNREACHABLE.text


def test_a_revoked_connections_detail_is_translated_on_the_connections_page(app, client, alice):
    connection_id = ops(app, alice, status="revoked")
    with app.app_context():
        stored_text.assign(
            db.session.get(Connection, connection_id), "status_detail", DETAIL_REVOKED_HERE
        )
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
