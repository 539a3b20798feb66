"""schemathesis against /api/v1/openapi.json, in-process, with a real API key.

The schema is read from the running app (the document the API serves), and every operation
gets generated requests: valid ones, and invalid ones (wrong types, missing and unknown
fields, odd strings, huge numbers). Each answer must be no server error, have a status and
content type the document declares, and match the documented body schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import make_test_config
from tests.factories import create_api_key, create_connection, create_user

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture
def app_config(tmp_path):
    # The fuzzer sends far more than a person would: the rate limit is not what is under test.
    return make_test_config(tmp_path, API_RATE_LIMIT="1000000 per minute")


@pytest.fixture
def api_key(app) -> str:
    with app.app_context():
        alice = create_user("alice")
        create_connection(alice, label="Ops")
        create_connection(alice, label="Family", target_type="GROUP")
        _, plaintext = create_api_key(alice, "fuzz")
    return plaintext


# Every operation the document must describe: a new endpoint fails the test until it is added
# here, so nothing escapes the fuzzer by being forgotten.
OPERATIONS = {
    "POST /api/v1/notifications",
    "GET /api/v1/notifications/{notification_id}",
    "GET /api/v1/notifications",
    "GET /api/v1/connections",
    "GET /api/v1/connections/{connection_id}",
    "GET /api/v1/webhooks",
    "POST /api/v1/webhooks",
    "GET /api/v1/webhooks/{webhook_id}",
    "DELETE /api/v1/webhooks/{webhook_id}",
    "POST /api/v1/notifications/{notification_id}/cancel",
    "GET /api/v1/schedules",
    "POST /api/v1/schedules",
    "GET /api/v1/schedules/{schedule_id}",
    "DELETE /api/v1/schedules/{schedule_id}",
    "POST /api/v1/schedules/{schedule_id}/pause",
    "POST /api/v1/schedules/{schedule_id}/resume",
    "POST /api/v1/batches",
}
EXAMPLES_PER_OPERATION = 60


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_get_no_server_error_and_match_the_schema(app, api_key, mode):
    # The key as the document's bearerAuth scheme, so schemathesis knows a request carries it
    # (and, in negative mode, which requests it generated without it).
    auth = {"openapi": {"bearerAuth": {"bearer": api_key}}}
    config = schemathesis.Config.from_dict({"auth": auth})
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} == OPERATIONS
    calls = []

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            response = case.call_and_validate(checks=CHECKS)
            calls.append((case.operation.label, response.status_code))

        run()

    # The fuzzer really reached every operation, and (for valid requests) got past the door.
    assert {label for label, _ in calls} == {op.label for op in operations}
    if mode is GenerationMode.POSITIVE:
        assert any(200 <= status < 300 for _, status in calls)
    assert all(status < 500 for _, status in calls)
