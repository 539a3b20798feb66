"""Over the window's limits: 429 with the right headers, nothing delivered; then a new window."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.relay.models import RelayAccessToken, RelayMessage
from tests import images

PNG = images.png()


@pytest.fixture
def app_config(app_config):
    return {**app_config, "RELAY_RATE_LIMIT": 3, "RELAY_IMAGE_RATE_LIMIT": 1}


def delivered(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(RelayMessage))


def notify(client, headers, **data):
    return client.post(
        "/relay/api/notify",
        headers=headers,
        data={"message": "m", **data},
        content_type="multipart/form-data",
    )


def test_the_call_after_the_limit_is_a_429_and_delivers_nothing(app, client, auth_headers):
    answers = [notify(client, auth_headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]

    refused = notify(client, auth_headers)
    assert refused.status_code == 429
    assert refused.get_json() == {
        "status": 429,
        "message": "Rate limit exceeded: 3 calls per window",
    }
    assert refused.headers["X-RateLimit-Limit"] == "3"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["X-RateLimit-ImageLimit"] == "1"
    assert refused.headers["X-RateLimit-ImageRemaining"] == "1"
    assert refused.headers["X-RateLimit-Reset"] == answers[0].headers["X-RateLimit-Reset"]
    assert delivered(app) == 3

    # Status calls count against the same window, and are refused the same way.
    status = client.get("/relay/api/status", headers=auth_headers)
    assert status.status_code == 429
    assert status.headers["X-RateLimit-Remaining"] == "0"


def test_status_calls_use_up_the_window_too(app, client, auth_headers):
    for _ in range(3):
        assert client.get("/relay/api/status", headers=auth_headers).status_code == 200
    assert notify(client, auth_headers).status_code == 429
    assert delivered(app) == 0


def test_image_uploads_have_their_own_limit(app, client, auth_headers):
    first = notify(client, auth_headers, imageFile=(io.BytesIO(PNG), "a.png"))
    assert first.status_code == 200
    assert first.headers["X-RateLimit-ImageRemaining"] == "0"

    second = notify(client, auth_headers, imageFile=(io.BytesIO(PNG), "b.png"))
    assert second.status_code == 429
    assert second.get_json()["message"] == "Image upload limit exceeded: 1 per window"
    assert second.headers["X-RateLimit-Remaining"] == "2"
    assert second.headers["X-RateLimit-ImageRemaining"] == "0"

    # A message without an image still goes through.
    assert notify(client, auth_headers).status_code == 200
    assert delivered(app) == 2


def test_a_new_window_starts_once_the_reset_has_passed(app, client, auth_headers):
    for _ in range(3):
        notify(client, auth_headers)
    assert notify(client, auth_headers).status_code == 429
    with app.app_context():
        db.session.execute(
            update(RelayAccessToken).values(window_reset_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    again = notify(client, auth_headers)
    assert again.status_code == 200
    assert again.headers["X-RateLimit-Remaining"] == "2"
    assert int(again.headers["X-RateLimit-Reset"]) > utcnow().timestamp() + 3500


def test_tokens_have_separate_windows(client, get_token):
    first, second = get_token(), get_token()
    for _ in range(3):
        notify(client, {"Authorization": f"Bearer {first}"})
    assert notify(client, {"Authorization": f"Bearer {first}"}).status_code == 429
    assert notify(client, {"Authorization": f"Bearer {second}"}).status_code == 200


def test_revoke_still_works_when_the_window_is_spent(client, auth_headers):
    for _ in range(3):
        notify(client, auth_headers)
    response = client.post("/relay/api/revoke", headers=auth_headers)
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Remaining"] == "0"
