"""Unit tests never reach the network: any outbound HTTP call not mocked fails the test."""

import pytest
import responses


@pytest.fixture(autouse=True)
def mocked_http():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
