"""The control-character tests of tests/unit/test_control_characters.py, on PostgreSQL, which
cannot store NUL at all: there, every one of these inputs used to reach a 500."""

from __future__ import annotations

import pytest

from tests.unit.test_control_characters import (  # noqa: F401 - collected here, on PostgreSQL
    signed_in,
    test_a_connection_label_with_a_control_character_is_refused,
    test_a_send_form_message_with_nul_is_refused_beside_the_message,
    test_a_time_zone_with_nul_is_refused,
    test_a_username_with_nul_is_refused_at_sign_in_and_registration,
    test_an_api_key_name_with_a_control_character_is_refused,
    test_the_admin_user_filter_with_nul_is_no_filter,
    test_the_api_refuses_nul_in_labels_messages_and_idempotency_keys,
    test_the_relay_notify_api_refuses_nul_in_every_field,
    test_the_relay_refuses_nul_in_oauth_parameters_without_a_500,
    test_the_services_refuse_control_characters_without_a_form,
)

pytestmark = pytest.mark.postgres
