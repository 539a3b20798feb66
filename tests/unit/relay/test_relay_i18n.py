"""The relay's pages in the visitor's language (issue 8): the sandbox consent page, its form's
messages and the relay's error pages. The relay's Notify API stays English (LINE's was)."""

from __future__ import annotations

import html

import pytest

URL = "/relay/oauth/authorize"
JA = {"Accept-Language": "ja"}
ZH = {"Accept-Language": "zh-TW"}


def test_the_sandbox_consent_page_is_in_japanese(client, authorize_params, registered, person):
    page = client.get(URL, query_string=authorize_params(), headers=JA).get_data(as_text=True)
    assert "Notify リレー · サンドボックス" in page
    assert f"{registered.name}</span> が通知を送ろうとしています" in page
    assert "通知の送信先" in page  # the radio group's legend: the form's lazy label
    assert "Sandbox user との 1:1 トーク" in page
    assert 'value="同意して接続"' in page
    assert "サンドボックス受信箱</a>" in page
    assert "wants to send you notifications" not in page
    assert "Pick the chat" not in page
    assert "sandbox mode" not in page


def test_the_sandbox_consent_page_is_in_traditional_chinese(client, authorize_params, person):
    page = client.get(URL, query_string=authorize_params(), headers=ZH).get_data(as_text=True)
    assert "Notify 中繼站 · 沙盒" in page
    assert "與 Sandbox user 的一對一聊天" in page
    assert 'value="同意並連結"' in page


def test_the_consent_pages_refusals_are_translated(client, authorize_params, chat_id):
    chat = chat_id()
    no_button = client.post(URL, data={**authorize_params(), "chat": chat}, headers=JA)
    assert no_button.status_code == 400
    assert "「同意して接続」か「キャンセル」を選んでください。" in no_button.get_data(as_text=True)
    wrong_chat = client.post(
        URL, data={**authorize_params(), "chat": "9999", "agree": "1"}, headers=ZH
    )
    assert wrong_chat.status_code == 400
    assert "請從列出的聊天室中選擇一個。" in wrong_chat.get_data(as_text=True)
    not_a_number = client.post(
        URL, data={**authorize_params(), "chat": "x", "agree": "1"}, headers=JA
    )
    assert not_a_number.status_code == 400
    assert "Invalid Choice" not in not_a_number.get_data(as_text=True)  # WTForms', translated


@pytest.mark.parametrize(
    ("overrides", "ja"),
    [
        ({"client_id": "nope"}, "この client_id で登録されたサービスはありません。"),
        ({"scope": "read"}, "scope は 'notify' にしてください。"),
        ({"state": None}, "リクエストに state がありません（必須です）。"),
    ],
)
def test_a_bad_request_gets_an_error_page_in_japanese(client, authorize_params, overrides, ja):
    answer = client.get(URL, query_string=authorize_params(**overrides), headers=JA)
    assert answer.status_code == 400
    page = html.unescape(answer.get_data(as_text=True))
    assert "この接続リクエストは使えません" in page
    assert ja in page
    assert "元のサービスから最初からやり直してください。" in page


def test_an_unknown_relay_page_is_a_japanese_error_page(client):
    answer = client.get("/relay/images/999999", headers=JA)
    assert answer.status_code == 404
    page = answer.get_data(as_text=True)
    assert "見つかりません" in page
    assert "Not Found" not in page
