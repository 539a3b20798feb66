"""The site speaks the visitor's language (issue 8): Accept-Language, the footer switcher
and the user's setting choose it; the JSON API's messages follow Accept-Language alone;
times and figures follow the locale and the user's time zone."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.i18n import time_text
from notify_site.models import User
from tests.factories import create_api_key, create_connection, login

JA = {"Accept-Language": "ja,en;q=0.5"}


def html_lang(html: str) -> str:
    return re.search(r'<html lang="([^"]+)"', html).group(1)


def test_a_japanese_browser_gets_the_sign_in_page_in_japanese(client):
    page = client.get("/login", headers=JA).get_data(as_text=True)
    assert html_lang(page) == "ja"
    assert "<h1>ログイン</h1>" in page
    assert "ユーザー名" in page
    assert "Sign in" not in page


def test_without_accept_language_the_site_is_english(client):
    page = client.get("/login").get_data(as_text=True)
    assert html_lang(page) == "en"
    assert "<h1>Sign in</h1>" in page


@pytest.mark.parametrize("header", ["zh-TW", "zh-Hant", "zh-Hant-TW,zh;q=0.9"])
def test_a_taiwanese_browser_gets_traditional_chinese(client, header):
    page = client.get("/login", headers={"Accept-Language": header}).get_data(as_text=True)
    assert html_lang(page) == "zh-Hant-TW"
    assert "<h1>登入</h1>" in page


def test_form_errors_are_in_japanese(client, alice):
    answer = client.post("/login", data={"username": "alice", "password": "wrong"}, headers=JA)
    assert "ユーザー名またはパスワードが違います。" in answer.get_data(as_text=True)
    empty = client.post("/register", data={"username": "", "password": ""}, headers=JA)
    assert "入力してください。" in empty.get_data(as_text=True)  # WTForms' own message too


def test_the_send_forms_errors_are_in_japanese(client, app, alice):
    with app.app_context():
        connection = create_connection(db.session.get(User, alice))
        connection_id = connection.id
    login(client)
    answer = client.post(
        "/send", data={"connections": [connection_id], "message": "あ" * 1001}, headers=JA
    )
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert "1000 文字以内にしてください（現在 1001 文字）。" in html
    assert "送信されていません。" in html


def test_a_json_api_error_message_is_in_japanese_and_its_code_stays_english(client, app):
    answer = client.get("/api/v1/connections", headers={**JA, "Authorization": "Bearer nsk_nope"})
    assert answer.status_code == 401
    error = answer.get_json()["error"]
    assert error["code"] == "invalid_api_key"
    assert error["message"] == "API キーが間違っているか、無効にされています。"


def test_the_api_follows_accept_language_not_the_language_cookie(client, app, alice):
    with app.app_context():
        _, key = create_api_key(alice, "test")
    client.set_cookie("lang", "ja")
    headers = {"Authorization": f"Bearer {key}", "Accept-Language": "en"}
    body = {"connection": 999, "message": ""}
    answer = client.post("/api/v1/notifications", json=body, headers=headers)
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert error["code"] == "validation_failed"
    assert error["message"] == "The request is not valid (message); see fields."
    japanese = client.post(
        "/api/v1/notifications",
        json={"connection": 999, "message": ""},
        headers={**headers, "Accept-Language": "ja"},
    ).get_json()["error"]
    assert japanese["code"] == "validation_failed"
    assert japanese["message"] == (
        "リクエストが正しくありません（message）。fields を確認してください。"
    )
    assert japanese["fields"]["message"] == "メッセージを入力してください"


def switch(client, locale: str, next_path: str = "/login", **headers):
    answer = client.post("/language", data={"locale": locale, "next": next_path}, headers=headers)
    assert answer.status_code == 302
    return answer


def test_the_footer_switcher_changes_the_language_and_it_sticks(client):
    page = client.get("/login", headers=JA).get_data(as_text=True)
    assert 'action="/language"' in page
    assert 'value="zh_Hant_TW"' in page
    answer = switch(client, "zh_Hant_TW", "/login", **JA)
    assert answer.headers["Location"] == "/login"
    # The choice beats the browser's language, on every later request.
    for path in ("/login", "/register", "/"):
        page = client.get(path, headers=JA).get_data(as_text=True)
        assert html_lang(page) == "zh-Hant-TW", path
    assert "<h1>登入</h1>" in client.get("/login", headers=JA).get_data(as_text=True)


def test_the_switcher_never_redirects_off_the_site(client):
    assert switch(client, "ja", "https://evil.example/").headers["Location"] == "/"
    assert switch(client, "ja", "//evil.example/").headers["Location"] == "/"
    assert client.post("/language", data={"locale": "xx"}).status_code == 400


def test_a_choice_made_signed_out_survives_signing_in(client, alice):
    switch(client, "ja")
    login(client)
    page = client.get("/dashboard").get_data(as_text=True)
    assert html_lang(page) == "ja"
    assert "ダッシュボード" in page


def test_a_signed_in_choice_is_saved_and_follows_the_user_to_another_browser(app, alice):
    first = app.test_client()
    login(first)
    switch(first, "ja", "/dashboard")
    with app.app_context():
        assert db.session.get(User, alice).locale == "ja"
    other = app.test_client()  # no cookie, an English browser
    login(other)
    page = other.get("/connections", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert html_lang(page) == "ja"
    assert "あなたの LINE トーク" in page


def test_the_settings_page_saves_language_and_time_zone(client, app, alice):
    login(client)
    bad = client.post("/settings", data={"locale": "ja", "timezone": "Mars/Olympus"})
    assert bad.status_code == 400
    assert "is not a time zone this site knows" in bad.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, alice).timezone is None
    saved = client.post("/settings", data={"locale": "zh_Hant_TW", "timezone": "Asia/Tokyo"})
    assert saved.status_code == 302
    with app.app_context():
        user = db.session.get(User, alice)
        assert (user.locale, user.timezone) == ("zh_Hant_TW", "Asia/Tokyo")
    page = client.get("/settings").get_data(as_text=True)
    assert "設定已儲存。" in page
    assert 'value="Asia/Tokyo"' in page


def test_times_follow_the_users_zone_and_figures_the_locale(client, app, alice):
    reset = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    with app.app_context():
        connection = create_connection(db.session.get(User, alice))
        connection.rate_limit, connection.rate_remaining = 12000, 11999
        connection.rate_image_limit, connection.rate_image_remaining = 50, 50
        connection.rate_reset_at = reset
        connection.rate_checked_at = reset - timedelta(minutes=30)
        connection.rate_checked_by = "status"
        db.session.commit()
    login(client)
    english = client.get("/connections").get_data(as_text=True)
    assert "2031-05-06 07:08 UTC" in english
    assert "11,999 / 12,000" in english

    switch(client, "ja", "/connections")  # ja: Asia/Tokyo unless the user chose a zone
    japanese = client.get("/dashboard").get_data(as_text=True)
    assert "2031/05/06 16:08" in japanese  # 07:08 UTC is 16:08 in Tokyo
    assert "UTC" not in re.sub(r"<[^>]+>", "", japanese.split("<main")[1].split("</main>")[0])
    assert "時刻は日本時間です。" in japanese

    with app.app_context():
        db.session.get(User, alice).timezone = "Asia/Taipei"
        db.session.commit()
    assert "2031/05/06 15:08" in client.get("/connections").get_data(as_text=True)


def test_an_error_page_is_in_the_visitors_language(client):
    answer = client.get("/no/such/page", headers=JA)
    assert answer.status_code == 404
    assert "そのページはありません。" in answer.get_data(as_text=True)


def test_the_relays_notify_api_stays_english(client):
    answer = client.post("/relay/api/notify", data={"message": "x"}, headers=JA)
    assert answer.status_code == 401
    body = answer.get_json()
    assert body["status"] == 401
    assert not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", body["message"])


def test_users_are_stored_without_a_choice_until_they_make_one(app, alice):
    with app.app_context():
        user = db.session.scalar(select(User).where(User.id == alice))
        assert (user.locale, user.timezone) == (None, None)


BRIEF_MOMENT = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("en", "05-06 07:08 UTC"), ("ja", "5/6 16:08"), ("zh_Hant_TW", "05/06 15:08")],
)
def test_brief_times_render_in_every_language(app, locale, expected):
    # The admin page's tables use the brief style; it raised KeyError in ja and zh_Hant_TW.
    with app.test_request_context(headers={"Cookie": f"lang={locale}"}):
        assert time_text(BRIEF_MOMENT, "brief") == expected


def test_a_locale_without_the_brief_skeletons_falls_back_to_its_short_form(app, monkeypatch):
    def missing(*args, **kwargs):
        raise KeyError(None)

    monkeypatch.setattr("notify_site.i18n.format_skeleton", missing)
    with app.test_request_context(headers={"Cookie": "lang=ja"}):
        assert time_text(BRIEF_MOMENT, "brief") == "2031/05/06 16:08"


# ----------------------------------------------------------------------------- Thai (issue 20)


@pytest.mark.parametrize("header", ["th", "th-TH", "th-TH,th;q=0.9,en;q=0.5"])
def test_a_thai_browser_gets_thai(client, header):
    page = client.get("/login", headers={"Accept-Language": header}).get_data(as_text=True)
    assert html_lang(page) == "th"
    assert "<h1>เข้าสู่ระบบ</h1>" in page
    assert "Sign in" not in page


def test_the_switcher_and_the_settings_offer_thai(client, app, alice):
    page = client.get("/login").get_data(as_text=True)
    button = '<button type="submit" name="locale" value="th" class="link" lang="th">ไทย</button>'
    assert button in page
    switch(client, "th", "/login")
    assert html_lang(client.get("/login").get_data(as_text=True)) == "th"
    login(client)
    settings = client.get("/settings").get_data(as_text=True)
    assert '<option value="th">ไทย</option>' in settings
    saved = client.post("/settings", data={"locale": "th", "timezone": ""})
    assert saved.status_code == 302
    with app.app_context():
        assert db.session.get(User, alice).locale == "th"
    settings = client.get("/settings").get_data(as_text=True)
    assert "บันทึกการตั้งค่าแล้ว" in settings
    assert '<option selected value="th">ไทย</option>' in settings


def test_a_thai_api_client_gets_thai_messages(client):
    answer = client.get(
        "/api/v1/connections", headers={"Accept-Language": "th-TH", "Authorization": "Bearer x"}
    )
    error = answer.get_json()["error"]
    assert error["code"] == "invalid_api_key"
    assert error["message"] == "คีย์ API ไม่ถูกต้องหรือถูกเพิกถอนแล้ว"


def test_thai_times_are_bangkok_gregorian_and_figures_grouped(client, app, alice):
    reset = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    with app.app_context():
        connection = create_connection(db.session.get(User, alice))
        connection.rate_limit, connection.rate_remaining = 12000, 11999
        connection.rate_reset_at = reset
        connection.rate_checked_at = reset - timedelta(minutes=30)
        connection.rate_checked_by = "status"
        db.session.commit()
    login(client)
    switch(client, "th", "/connections")  # th: Asia/Bangkok unless the user chose a zone
    page = client.get("/connections").get_data(as_text=True)
    # 07:08 UTC is 14:08 in Bangkok; the year is the Gregorian 2031, not the Buddhist 2574.
    assert "6 พ.ค. 2031 14:08" in page
    assert "2574" not in page
    assert "11,999" in page
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert "เวลาแสดงเป็นเวลาไทย" in dashboard
    # The scripts get a locale whose Intl calendar is the Gregorian one.
    data = re.search(r"data-i18n='([^']+)'", dashboard).group(1)
    assert '"locale": "th-u-ca-gregory"' in html.unescape(data)
    assert '"timeZone": "Asia/Bangkok"' in html.unescape(data)


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("minute", "6 พ.ค. 2031 14:08"),
        ("second", "6 พ.ค. 2031 14:08:09"),
        ("time", "14:08:09"),
        ("brief", "6/5 14:08 น."),
    ],
)
def test_thai_time_styles(app, style, expected):
    with app.test_request_context(headers={"Cookie": "lang=th"}):
        assert time_text(BRIEF_MOMENT, style) == expected
