"""GET /relay/api/status and POST /relay/api/revoke, and the headers on every answer."""

from __future__ import annotations

import time

import pytest

RATE_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-ImageLimit",
    "X-RateLimit-ImageRemaining",
    "X-RateLimit-Reset",
)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("kind", "name"), [("USER", "Sandbox user"), ("GROUP", "Family"), ("GROUP", "Team alerts")]
)
def test_status_names_the_tokens_target(client, get_token, kind, name):
    response = client.get("/relay/api/status", headers=bearer(get_token(kind, name)))
    assert response.status_code == 200
    body = response.get_json()
    # The extension (issue 15): the sandbox's monthly quota, nothing used yet.
    quota = body.pop("lineQuota")
    assert body == {
        "status": 200,
        "message": "ok",
        "targetType": kind,
        "target": name,
    }
    assert (quota["scope"], quota["limit"], quota["used"]) == ("channel", 200, 0)


def test_status_spends_a_call_and_carries_the_window(client, auth_headers):
    before = time.time()
    first = client.get("/relay/api/status", headers=auth_headers)
    second = client.get("/relay/api/status", headers=auth_headers)
    assert first.headers["X-RateLimit-Limit"] == "1000"
    assert first.headers["X-RateLimit-Remaining"] == "999"
    assert second.headers["X-RateLimit-Remaining"] == "998"
    assert second.headers["X-RateLimit-ImageLimit"] == "50"
    assert second.headers["X-RateLimit-ImageRemaining"] == "50"
    reset = int(first.headers["X-RateLimit-Reset"])
    assert before + 3600 <= reset <= time.time() + 3601
    # One window: the reset does not move with each call.
    assert second.headers["X-RateLimit-Reset"] == first.headers["X-RateLimit-Reset"]


def test_revoke_stops_the_token_at_once(client, token):
    sent = client.post("/relay/api/notify", headers=bearer(token), data={"message": "a"})
    assert sent.status_code == 200
    response = client.post("/relay/api/revoke", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json() == {"status": 200, "message": "ok"}
    for header in RATE_HEADERS:
        assert header in response.headers
    # Revoking spends no call.
    assert response.headers["X-RateLimit-Remaining"] == "999"

    for method, url in [
        ("post", "/relay/api/notify"),
        ("get", "/relay/api/status"),
        ("post", "/relay/api/revoke"),
    ]:
        after = getattr(client, method)(url, headers=bearer(token), data={"message": "b"})
        assert after.status_code == 401
        assert after.get_json() == {"status": 401, "message": "Invalid access token"}
        assert "X-RateLimit-Remaining" not in after.headers


def test_revoking_one_token_leaves_the_others_working(client, get_token):
    first, second = get_token(), get_token()
    assert client.post("/relay/api/revoke", headers=bearer(first)).status_code == 200
    assert client.get("/relay/api/status", headers=bearer(second)).status_code == 200


def test_every_answer_to_a_valid_token_carries_the_rate_headers(client, auth_headers):
    answers = [
        client.post("/relay/api/notify", headers=auth_headers, data={"message": "ok"}),
        client.post("/relay/api/notify", headers=auth_headers, data={}),
        client.post(
            "/relay/api/notify", headers=auth_headers, data={"message": "m", "stickerId": "1"}
        ),
        client.get("/relay/api/status", headers=auth_headers),
        client.post("/relay/api/revoke", headers=auth_headers),
    ]
    assert [answer.status_code for answer in answers] == [200, 400, 400, 200, 200]
    for answer in answers:
        for header in RATE_HEADERS:
            assert answer.headers[header].isdigit(), (answer.status_code, header)
