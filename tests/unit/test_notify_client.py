"""Unit tests for notify_site.notify_client: every outbound call is answered by ``responses``.

One module past 400 lines on purpose: one client, whose three calls share the request checks
and the answer and error tables these tests run them all through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.parser import BytesParser
from email.policy import HTTP
from unittest import mock
from urllib.parse import parse_qs

import pytest
import requests
import responses

from notify_site import notify_client
from notify_site.notify_client import (
    CHAT_UNREACHABLE_REASON,
    AuthError,
    BadRequestError,
    NetworkError,
    NotifyClient,
    NotifyError,
    NotifyResponse,
    RateLimit,
    RateLimitedError,
    ServerError,
    TargetStatus,
)

ORIGIN = "http://relay.test/relay"
NOTIFY_URL = f"{ORIGIN}/api/notify"
STATUS_URL = f"{ORIGIN}/api/status"
REVOKE_URL = f"{ORIGIN}/api/revoke"
TOKEN = "tok-SECRET-3f9a1c7e5b2d"
RESET = 1_900_000_000
RATE_HEADERS = {
    "X-RateLimit-Limit": "1000",
    "X-RateLimit-Remaining": "998",
    "X-RateLimit-ImageLimit": "50",
    "X-RateLimit-ImageRemaining": "49",
    "X-RateLimit-Reset": str(RESET),
}
EXPECTED_RATE = RateLimit(
    limit=1000, remaining=998, image_limit=50, image_remaining=49, reset=RESET
)
OK = {"status": 200, "message": "ok"}


@pytest.fixture
def mocked(mocked_http):
    """The unit tests' HTTP mock (tests/unit/conftest.py), here also checking at the end that
    every answer registered was asked for."""
    mocked_http.assert_all_requests_are_fired = True
    return mocked_http


@pytest.fixture
def api():
    with NotifyClient(ORIGIN + "/", timeout=4.5) as api_client:
        yield api_client


def form_of(request) -> dict[str, list[str]]:
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    body = request.body
    if isinstance(body, bytes):
        body = body.decode()
    return parse_qs(body or "", keep_blank_values=True, strict_parsing=bool(body))


def multipart_of(request) -> dict[str, tuple[str | None, str | None, bytes]]:
    """Each part by field name: (filename, content type, payload)."""
    content_type = request.headers["Content-Type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + request.body
    message = BytesParser(policy=HTTP).parsebytes(raw)
    parts = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts[name] = (
            part.get_filename(),
            part.get("Content-Type"),
            part.get_payload(decode=True),
        )
    return parts


# --- notify ------------------------------------------------------------------------------------


def test_notify_sends_only_the_message_when_nothing_else_is_set(mocked, api):
    mocked.post(NOTIFY_URL, json=OK, headers=RATE_HEADERS)

    result = api.notify(TOKEN, "hello")

    assert result == NotifyResponse(status=200, message="ok", rate_limit=EXPECTED_RATE)
    (call,) = mocked.calls
    assert call.request.method == "POST"
    assert call.request.url == NOTIFY_URL
    assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert form_of(call.request) == {"message": ["hello"]}
    assert call.request.req_kwargs["timeout"] == 4.5


def test_notify_sends_every_field_that_is_set(mocked, api):
    mocked.post(NOTIFY_URL, json=OK)

    api.notify(
        TOKEN,
        "héllo & 1+1=2",
        sticker_package_id=446,
        sticker_id=1988,
        image_thumbnail="https://img.test/t.jpg",
        image_fullsize="https://img.test/f.jpg?a=1&b=2",
        notification_disabled=True,
    )

    assert form_of(mocked.calls[0].request) == {
        "message": ["héllo & 1+1=2"],
        "stickerPackageId": ["446"],
        "stickerId": ["1988"],
        "imageThumbnail": ["https://img.test/t.jpg"],
        "imageFullsize": ["https://img.test/f.jpg?a=1&b=2"],
        "notificationDisabled": ["true"],
    }


def test_notify_with_image_file_sends_multipart(mocked, api):
    mocked.post(NOTIFY_URL, json=OK, headers=RATE_HEADERS)
    png = b"\x89PNG\r\n\x1a\n\x00binary\xff"

    result = api.notify(TOKEN, "look", image_file=("cat.png", png, "image/png"))

    assert result.rate_limit == EXPECTED_RATE
    request = mocked.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    parts = multipart_of(request)
    assert set(parts) == {"message", "imageFile"}
    assert parts["message"][2] == b"look"
    assert parts["imageFile"] == ("cat.png", "image/png", png)
    assert request.req_kwargs["timeout"] == 4.5


# --- status and revoke -------------------------------------------------------------------------


def test_status_returns_the_target(mocked, api):
    mocked.get(
        STATUS_URL,
        json={"status": 200, "message": "ok", "targetType": "GROUP", "target": "Team alerts"},
        headers=RATE_HEADERS,
    )

    result = api.status(TOKEN)

    assert result == TargetStatus(
        target_type="GROUP", target="Team alerts", message="ok", rate_limit=EXPECTED_RATE
    )
    (call,) = mocked.calls
    assert call.request.method == "GET"
    assert call.request.url == STATUS_URL
    assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert call.request.body is None
    assert call.request.req_kwargs["timeout"] == 4.5


def test_status_accepts_a_null_target(mocked, api):
    mocked.get(
        STATUS_URL, json={"status": 200, "message": "ok", "targetType": "GROUP", "target": None}
    )

    result = api.status(TOKEN)

    assert result.target is None
    assert result.target_type == "GROUP"
    assert result.rate_limit == RateLimit()


def test_status_rejects_a_target_that_is_not_a_string(mocked, api):
    mocked.get(STATUS_URL, json={"status": 200, "message": "ok", "targetType": 3, "target": "x"})

    with pytest.raises(ServerError) as info:
        api.status(TOKEN)

    assert info.value.status_code == 200


def test_revoke_posts_an_empty_form(mocked, api):
    mocked.post(REVOKE_URL, json=OK)

    result = api.revoke(TOKEN)

    assert result == NotifyResponse(status=200, message="ok", rate_limit=RateLimit())
    (call,) = mocked.calls
    assert call.request.method == "POST"
    assert call.request.url == REVOKE_URL
    assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert form_of(call.request) == {}
    assert call.request.req_kwargs["timeout"] == 4.5


# --- errors ------------------------------------------------------------------------------------

ERROR_CASES = [
    (400, BadRequestError, "message: 1000 characters max"),
    (401, AuthError, "Invalid access token"),
    (429, RateLimitedError, "Rate limit exceeded"),
    (500, ServerError, "Internal server error"),
    (503, ServerError, "try later"),
    (403, ServerError, "forbidden"),
]
CALLS = [
    ("notify", responses.POST, NOTIFY_URL, lambda c: c.notify(TOKEN, "hi")),
    ("status", responses.GET, STATUS_URL, lambda c: c.status(TOKEN)),
    ("revoke", responses.POST, REVOKE_URL, lambda c: c.revoke(TOKEN)),
]


@pytest.mark.parametrize(("status", "error_class", "message"), ERROR_CASES)
@pytest.mark.parametrize(("name", "method", "url", "call"), CALLS)
def test_error_statuses_raise_the_matching_error(
    mocked, api, status, error_class, message, name, method, url, call
):
    headers = {**RATE_HEADERS, "X-RateLimit-Remaining": "0"}
    mocked.add(
        method, url, status=status, json={"status": status, "message": message}, headers=headers
    )

    with pytest.raises(error_class) as info:
        call(api)

    error = info.value
    assert type(error) is error_class
    assert isinstance(error, NotifyError)
    assert error.status_code == status
    assert error.message == message
    assert error.rate_limit == RateLimit(
        limit=1000, remaining=0, image_limit=50, image_remaining=49, reset=RESET
    )
    assert str(error).startswith(f"Notify server answered {status}: {message}")


UNREACHABLE_MESSAGE = "Invalid access token: the chat can no longer be reached"


@pytest.mark.parametrize(("name", "method", "url", "call"), CALLS)
def test_a_401_with_reason_chat_unreachable_sets_the_flag(mocked, api, name, method, url, call):
    body = {"status": 401, "message": UNREACHABLE_MESSAGE, "reason": CHAT_UNREACHABLE_REASON}
    mocked.add(method, url, status=401, json=body)

    with pytest.raises(AuthError) as info:
        call(api)

    error = info.value
    assert error.chat_unreachable is True
    assert (error.status_code, error.message) == (401, UNREACHABLE_MESSAGE)
    assert "chat_unreachable=True" in repr(error)
    assert_token_hidden(error)


@pytest.mark.parametrize(
    "body",
    [
        {"status": 401, "message": "Invalid access token"},
        {"status": 401, "message": "Invalid access token", "reason": "something_else"},
        {"status": 401, "message": "Invalid access token", "reason": None},
        {"status": 401, "message": "Invalid access token", "reason": ["chat_unreachable"]},
        ["chat_unreachable"],
        "not json at all",
    ],
    ids=["plain", "other-reason", "null", "list", "array-body", "text"],
)
def test_any_other_401_is_a_plain_auth_error(mocked, api, body):
    if isinstance(body, str):
        mocked.get(STATUS_URL, status=401, body=body)
    else:
        mocked.get(STATUS_URL, status=401, json=body)

    with pytest.raises(AuthError) as info:
        api.status(TOKEN)

    assert info.value.chat_unreachable is False


def test_only_a_401_reads_the_reason(mocked, api):
    body = {"status": 403, "message": "forbidden", "reason": CHAT_UNREACHABLE_REASON}
    mocked.post(NOTIFY_URL, status=403, json=body)

    with pytest.raises(ServerError) as info:
        api.notify(TOKEN, "hi")

    assert not hasattr(info.value, "chat_unreachable")


def test_an_unsendable_token_is_not_an_unreachable_chat(api):
    with pytest.raises(AuthError) as info:
        api.status("")
    assert info.value.chat_unreachable is False


def test_the_reason_is_the_relays():
    # The client knows nothing of the relay; the two spellings must agree all the same.
    from notify_site.relay.errors import CHAT_UNREACHABLE_REASON as relay_reason

    assert relay_reason == CHAT_UNREACHABLE_REASON


def test_bad_request_reads_like_the_brief(mocked, api):
    mocked.post(
        NOTIFY_URL, status=400, json={"status": 400, "message": "message: 1000 characters max"}
    )

    with pytest.raises(BadRequestError) as info:
        api.notify(TOKEN, "x" * 1001)

    assert str(info.value) == "Notify server answered 400: message: 1000 characters max"


def test_rate_limited_error_says_when_the_window_resets(mocked, api):
    mocked.post(
        NOTIFY_URL,
        status=429,
        json={"status": 429, "message": "Rate limit exceeded"},
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000000"},
    )

    with pytest.raises(RateLimitedError) as info:
        api.notify(TOKEN, "hi")

    assert info.value.rate_limit.reset == 1_700_000_000
    assert "2023-11-14T22:13:20+00:00" in str(info.value)


def test_error_with_a_plain_text_body_uses_the_text(mocked, api):
    mocked.post(NOTIFY_URL, status=502, body="upstream   timed\nout", content_type="text/plain")

    with pytest.raises(ServerError) as info:
        api.notify(TOKEN, "hi")

    assert info.value.status_code == 502
    assert info.value.message == "upstream timed out"


def test_error_with_an_html_body_uses_the_reason_phrase(mocked, api):
    mocked.post(NOTIFY_URL, status=502, body="<html><body>Bad gateway page</body></html>" * 50)

    with pytest.raises(ServerError) as info:
        api.notify(TOKEN, "hi")

    assert info.value.message == "Bad Gateway"


def test_error_with_a_long_body_is_truncated(mocked, api):
    mocked.post(NOTIFY_URL, status=500, body="x" * 5000)

    with pytest.raises(ServerError) as info:
        api.notify(TOKEN, "hi")

    assert len(info.value.message) <= 200
    assert info.value.message.endswith("…")


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        '["status", 200]',
        '{"status": 200}',
        '{"message": "ok"}',
        '{"status": "200", "message": "ok"}',
        '{"status": 401, "message": "Invalid access token"}',
        "",
    ],
)
def test_a_200_without_the_expected_json_is_a_server_error(mocked, api, body):
    mocked.post(NOTIFY_URL, status=200, body=body, headers=RATE_HEADERS)

    with pytest.raises(ServerError) as info:
        api.notify(TOKEN, "hi")

    assert info.value.status_code == 200
    assert info.value.rate_limit == EXPECTED_RATE


def test_other_success_codes_and_redirects_are_server_errors(mocked, api):
    mocked.post(NOTIFY_URL, status=204)
    mocked.post(REVOKE_URL, status=302, headers={"Location": "http://elsewhere.test/steal"})

    with pytest.raises(ServerError) as no_content:
        api.notify(TOKEN, "hi")
    with pytest.raises(ServerError) as redirect:
        api.revoke(TOKEN)

    assert no_content.value.status_code == 204
    assert redirect.value.status_code == 302
    # The redirect was not followed: only the two calls above went out.
    assert [call.request.url for call in mocked.calls] == [NOTIFY_URL, REVOKE_URL]


@pytest.mark.parametrize(
    "exception",
    [
        requests.exceptions.ConnectTimeout("connect timed out"),
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectionError("connection refused"),
        requests.exceptions.ChunkedEncodingError("broken"),
    ],
)
@pytest.mark.parametrize(("name", "method", "url", "call"), CALLS)
def test_transport_failures_raise_network_error(mocked, api, exception, name, method, url, call):
    mocked.add(method, url, body=exception)

    with pytest.raises(NetworkError) as info:
        call(api)

    assert info.value.status_code is None
    assert info.value.rate_limit is None
    assert url in str(info.value)
    assert type(exception).__name__ in str(info.value)
    assert info.value.__cause__ is exception


def test_timeout_message_names_the_timeout(mocked, api):
    mocked.get(STATUS_URL, body=requests.exceptions.ReadTimeout("read timed out"))

    with pytest.raises(NetworkError, match=r"within 4\.5 s"):
        api.status(TOKEN)


# --- the token never leaks ---------------------------------------------------------------------


def assert_token_hidden(error: Exception) -> None:
    assert TOKEN not in str(error)
    assert TOKEN not in repr(error)
    assert all(TOKEN not in str(arg) for arg in error.args)
    assert TOKEN not in getattr(error, "message", "")


def test_token_echoed_in_a_json_error_is_redacted(mocked, api):
    mocked.post(
        NOTIFY_URL,
        status=401,
        json={"status": 401, "message": f"Invalid access token: Bearer {TOKEN}"},
    )

    with pytest.raises(AuthError) as info:
        api.notify(TOKEN, "hi")

    assert_token_hidden(info.value)
    assert "Invalid access token: Bearer [token]" in str(info.value)


def test_token_echoed_in_a_text_error_is_redacted(mocked, api):
    mocked.get(STATUS_URL, status=500, body=f"Authorization: Bearer {TOKEN}\n")

    with pytest.raises(ServerError) as info:
        api.status(TOKEN)

    assert_token_hidden(info.value)


def test_token_in_a_transport_error_is_redacted(mocked, api):
    mocked.post(
        REVOKE_URL, body=requests.exceptions.ConnectionError(f"reset while sending {TOKEN}")
    )

    with pytest.raises(NetworkError) as info:
        api.revoke(TOKEN)

    assert_token_hidden(info.value)
    assert "[token]" in str(info.value)


@pytest.mark.parametrize("bad_token", ["", "has space", "line\nbreak", "tok\r\nX-Evil: 1", "tökén"])
def test_a_token_no_header_can_carry_is_refused_before_sending(mocked, api, bad_token):
    with pytest.raises(AuthError) as info:
        api.notify(bad_token, "hi")

    assert info.value.status_code is None
    assert len(mocked.calls) == 0
    if bad_token:
        assert bad_token not in str(info.value)
        assert bad_token not in repr(info.value)


# --- session and construction ------------------------------------------------------------------


def test_a_given_session_is_reused_for_every_call(mocked):
    session = requests.Session()
    own = NotifyClient(ORIGIN, session=session)
    mocked.post(NOTIFY_URL, json=OK)
    mocked.get(STATUS_URL, json={**OK, "targetType": "USER", "target": "Ann"})
    mocked.post(REVOKE_URL, json=OK)

    with mock.patch.object(session, "request", wraps=session.request) as spy:
        own.notify(TOKEN, "a")
        own.status(TOKEN)
        own.revoke(TOKEN)

    assert own.session is session
    assert spy.call_count == 3
    assert [call.args[0] for call in spy.call_args_list] == ["POST", "GET", "POST"]
    own.close()
    session.close()


def test_the_client_creates_one_session_and_uses_it_throughout(mocked):
    mocked.post(NOTIFY_URL, json=OK)
    mocked.post(NOTIFY_URL, json=OK)
    mocked.get(STATUS_URL, json=OK)

    with mock.patch.object(
        notify_client, "EnvironmentOnceSession", wraps=notify_client.EnvironmentOnceSession
    ) as factory:
        own = NotifyClient(ORIGIN)
        own.notify(TOKEN, "a")
        own.notify(TOKEN, "b")
        own.status(TOKEN)

    assert factory.call_count == 1
    assert isinstance(own.session, requests.Session)
    assert len(mocked.calls) == 3
    own.close()


def test_the_default_timeout_is_ten_seconds(mocked):
    mocked.get(STATUS_URL, json=OK)

    with NotifyClient(ORIGIN) as own:
        own.status(TOKEN)

    assert mocked.calls[0].request.req_kwargs["timeout"] == 10.0


def test_origin_is_normalised_and_checked():
    assert NotifyClient("https://notify-api.line.me/").api_origin == "https://notify-api.line.me"
    with pytest.raises(ValueError, match="http"):
        NotifyClient("notify-api.line.me")


def test_close_leaves_a_borrowed_session_open():
    session = mock.Mock(spec=requests.Session)

    NotifyClient(ORIGIN, session=session).close()

    session.close.assert_not_called()


# --- RateLimit ---------------------------------------------------------------------------------


def test_rate_limit_headers_are_read_case_insensitively():
    headers = {
        "x-ratelimit-limit": "1000",
        "X-RATELIMIT-REMAINING": " 7 ",
        "X-Ratelimit-Imagelimit": "50",
        "x-RateLimit-ImageRemaining": "0",
        "X-RateLimit-Reset": "1700000000",
    }

    rate = RateLimit.from_headers(headers)

    assert rate == RateLimit(
        limit=1000, remaining=7, image_limit=50, image_remaining=0, reset=1_700_000_000
    )
    assert rate.reset_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_rate_limit_with_no_headers_is_all_none():
    rate = RateLimit.from_headers({"Content-Type": "application/json"})

    assert rate == RateLimit(None, None, None, None, None)
    assert rate.reset_at is None
    assert rate.to_dict()["reset_at"] is None


@pytest.mark.parametrize(
    "garbage",
    ["", "abc", "-1", "1.5", "1e3", "0x10", "+5", "1_000", "٣", "9" * 5000, "12 34"],
)
def test_rate_limit_garbage_values_become_none(garbage):
    headers = dict.fromkeys(RATE_HEADERS, garbage)

    assert RateLimit.from_headers(headers) == RateLimit()


def test_rate_limit_reset_beyond_the_calendar_is_dropped():
    rate = RateLimit.from_headers({"X-RateLimit-Reset": "999999999999999999"})

    assert rate.reset is None
    assert rate.reset_at is None


def test_rate_limit_from_a_requests_response_headers():
    response = requests.Response()
    response.headers.update({"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "100"})

    rate = RateLimit.from_headers(response.headers)

    assert rate.remaining == 3
    assert rate.reset == 100


def test_rate_limit_to_dict():
    assert EXPECTED_RATE.to_dict() == {
        "limit": 1000,
        "remaining": 998,
        "image_limit": 50,
        "image_remaining": 49,
        "reset": RESET,
        "reset_at": "2030-03-17T17:46:40+00:00",
    }


NOW = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("remaining", "reset", "spent"),
    [
        (0, NOW + timedelta(seconds=1), True),
        (0, NOW + timedelta(minutes=59), True),
        (0, NOW, False),
        (0, NOW - timedelta(seconds=1), False),
        (1, NOW + timedelta(minutes=30), False),
        (None, NOW + timedelta(minutes=30), False),
        (0, None, False),
    ],
)
def test_is_spent(remaining, reset, spent):
    rate = RateLimit(remaining=remaining, reset=int(reset.timestamp()) if reset else None)

    assert rate.is_spent(NOW) is spent


def test_is_spent_compares_instants_not_wall_clocks():
    rate = RateLimit(remaining=0, reset=int((NOW + timedelta(minutes=5)).timestamp()))
    tokyo = timezone(timedelta(hours=9))

    assert rate.is_spent(NOW.astimezone(tokyo)) is True
    assert rate.is_spent((NOW + timedelta(minutes=6)).astimezone(tokyo)) is False


def test_is_spent_refuses_a_naive_datetime():
    with pytest.raises(ValueError, match="aware"):
        RateLimit(remaining=0, reset=0).is_spent(datetime(2024, 1, 1))


# --- The relay's extensions (issue 22) ---------------------------------------------------------


def test_a_plain_200_is_delivered_and_not_pending(mocked, api):
    mocked.post(NOTIFY_URL, json=OK)
    result = api.notify(TOKEN, "hello")
    assert (result.delivery, result.message_id, result.pending) == (None, None, False)


def test_a_pending_200_carries_the_message_id(mocked, api):
    mocked.post(NOTIFY_URL, json={**OK, "delivery": "pending", "messageId": "AbC_12-x"})
    result = api.notify(TOKEN, "hello")
    assert (result.delivery, result.message_id, result.pending) == ("pending", "AbC_12-x", True)


@pytest.mark.parametrize("message_id", [None, 7, "../x", "a" * 65])
def test_a_pending_200_without_a_usable_id_is_not_followed(mocked, api, message_id):
    mocked.post(NOTIFY_URL, json={**OK, "delivery": "pending", "messageId": message_id})
    assert api.notify(TOKEN, "hello").pending is False


def test_message_state_reads_the_extension(mocked, api):
    mocked.get(
        f"{ORIGIN}/api/messages/AbC",
        json={**OK, "messageId": "AbC", "delivery": "failed", "reason": f"no {TOKEN} here"},
    )
    state = api.message_state(TOKEN, "AbC")
    assert state.delivery == "failed"
    assert TOKEN not in state.reason
    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_message_state_refuses_an_id_that_is_not_one(api):
    with pytest.raises(ValueError, match="not a message id"):
        api.message_state(TOKEN, "../../api/revoke")


def test_a_429_with_reason_monthly_limit_sets_the_flag(mocked, api):
    mocked.post(
        NOTIFY_URL,
        status=429,
        json={"status": 429, "message": "Monthly", "reason": "monthly_limit"},
    )
    with pytest.raises(RateLimitedError) as caught:
        api.notify(TOKEN, "hello")
    assert caught.value.monthly_limit is True
    mocked.post(NOTIFY_URL, status=429, json={"status": 429, "message": "Rate limit exceeded"})
    with pytest.raises(RateLimitedError) as caught:
        api.notify(TOKEN, "hello")
    assert caught.value.monthly_limit is False
    assert caught.value.monthly_budget is False
    mocked.post(
        NOTIFY_URL,
        status=429,
        json={"status": 429, "message": "budget spent", "reason": "monthly_budget"},
    )
    with pytest.raises(RateLimitedError) as caught:
        api.notify(TOKEN, "hello")
    assert (caught.value.monthly_budget, caught.value.monthly_limit) == (True, False)
