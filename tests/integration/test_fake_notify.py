"""The fault-injecting Notify server (tests/fakes/notify_api.py) counts what `make chaos` reports.

The chaos figures are computed from its records, so its own accounting is checked here over
real HTTP: windows and what a spent window is, each injected fault, revocation, holds.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.fakes.notify_api import TIMEOUT, FakeNotify, FakeNotifyServer


@pytest.fixture
def serve():
    servers = []

    def start(**settings) -> FakeNotifyServer:
        servers.append(FakeNotifyServer(FakeNotify(seed=1, **settings)))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def notify(server: FakeNotifyServer, message: str = "hi", token: str = "t1", **kwargs):
    return requests.post(
        f"{server.url}/api/notify",
        data={"message": message},
        headers={"Authorization": f"Bearer {token}"},
        timeout=kwargs.pop("timeout", 10),
    )


def test_a_window_admits_the_limit_and_flags_calls_made_once_it_is_spent(serve):
    server = serve(limit=2, window_seconds=60)
    answers = [notify(server, f"m{n}") for n in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]
    assert answers[0].headers["X-RateLimit-Reset"] == answers[2].headers["X-RateLimit-Reset"]
    assert int(answers[0].headers["X-RateLimit-Reset"]) >= time.time() + 59
    calls = server.state.notify_calls()
    # The third came after an answer said Remaining: 0, before the Reset: a client's fault.
    assert [c.into_spent_window for c in calls] == [False, False, True]
    assert server.state.windows() == {"t1": [3]}
    assert server.state.delivered() == {"m0": 1, "m1": 1}
    assert notify(server, token="t2").status_code == 200  # windows are per token


def test_an_injected_429_spends_the_window_until_its_reset(serve):
    server = serve(limit=100, window_seconds=1, rate_limited_rate=1.0)
    first = notify(server)
    assert (first.status_code, first.headers["X-RateLimit-Remaining"]) == (429, "0")
    server.state.rate_limited_rate = 0.0
    assert notify(server).status_code == 429  # still before the Reset
    time.sleep(max(0.0, int(first.headers["X-RateLimit-Reset"]) - time.time()) + 0.05)
    assert notify(server).status_code == 200  # a new window
    assert [c.into_spent_window for c in server.state.notify_calls()] == [False, True, False]


def test_server_errors_and_stalls_fail_in_front_of_the_limiter(serve):
    server = serve(limit=1, server_error_rate=1.0, stall_seconds=0.5)
    failed = notify(server)
    assert failed.status_code == 500
    assert "X-RateLimit-Remaining" not in failed.headers
    server.state.server_error_rate, server.state.timeout_rate = 0.0, 1.0
    with pytest.raises(requests.Timeout):
        notify(server, timeout=0.2)
    server.state.timeout_rate = 0.0
    assert notify(server).status_code == 200  # the window was not spent by either
    time.sleep(0.5)  # the stalled call is recorded once its (unread) answer is written
    assert [c.status for c in server.state.notify_calls()] == [500, TIMEOUT, 200]


def test_outage_revocation_and_rejected_payloads(serve):
    server = serve(reject_marker="[bad]")
    server.state.outage = True
    assert notify(server).status_code == 503
    server.state.outage = False
    assert notify(server, "a [bad] one").status_code == 400
    server.state.revoke("t1")
    assert notify(server).status_code == 401
    assert notify(server, token="t2").status_code == 200
    assert server.state.answered == {503: 1, 400: 1, 401: 1, 200: 1}


def test_a_hold_keeps_the_call_until_released(serve):
    server = serve()
    release = threading.Event()
    server.state.hold(release)
    answers = []
    caller = threading.Thread(target=lambda: answers.append(notify(server).status_code))
    caller.start()
    deadline = time.monotonic() + 10
    while not server.state.notify_calls():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert answers == []  # the server has the call and holds it
    release.set()
    caller.join(timeout=10)
    assert answers == [200]
