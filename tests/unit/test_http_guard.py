"""The unit tests' HTTP guard (tests/unit/conftest.py) fails a test whose code made an
un-mocked call, even when that code caught the refusal, as notify_client does (it turns every
ConnectionError into a retryable NetworkError). Checked by running small test files under the
guard in a pytest of their own."""

from __future__ import annotations

from pathlib import Path

import pytest

GUARD = Path(__file__).with_name("conftest.py")

SWALLOWING = """
import requests

def call_and_swallow(url):
    try:
        requests.get(url, timeout=1)
    except requests.ConnectionError:
        pass  # what notify_client and the worker do with a refused call
"""


@pytest.fixture
def guarded(pytester):
    pytester.makeconftest(GUARD.read_text())
    return pytester


def run(pytester):
    return pytester.runpytest_subprocess("-p", "no:cacheprovider")


def test_a_swallowed_un_mocked_call_fails_the_test_itself(guarded):
    guarded.makepyfile(
        SWALLOWING
        + """
def test_swallows():
    call_and_swallow("http://notify.invalid/api/status")
    assert True
"""
    )
    result = run(guarded)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*un-mocked outbound HTTP (add a mock for it): GET http://notify.invalid/api/status*"]
    )


def test_a_mocked_call_passes_and_a_teardown_call_errors(guarded):
    guarded.makepyfile(
        SWALLOWING
        + """
import pytest

def test_mocked(mocked_http):
    mocked_http.get("http://notify.invalid/api/status", json={"status": 200})
    call_and_swallow("http://notify.invalid/api/status")

@pytest.fixture
def calls_when_torn_down():
    yield
    call_and_swallow("http://late.invalid/revoke")

def test_teardown(calls_when_torn_down):
    pass
"""
    )
    result = run(guarded)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_teardown*", "*GET http://late.invalid/revoke*"]
    )
