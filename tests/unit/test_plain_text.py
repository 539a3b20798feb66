"""notify_site/plain_text.py's readers alone (the routes using them: test_control_characters)."""

from __future__ import annotations

import pytest

from notify_site.plain_text import read_number


@pytest.mark.parametrize(
    ("value", "maximum", "number"),
    [
        ("0", 10, 0),
        ("10", 10, 10),
        ("11", 10, None),
        ("2147483647", None, 2**31 - 1),
        ("2147483648", None, None),
        ("00000000000000000001", None, None),  # longer than any number in range
        ("²", None, None),
        ("٣", None, None),  # int() reads it as 3; a query string's number is ASCII
        ("", None, None),
        ("-1", None, None),
        (" 1", None, None),
    ],
)
def test_read_number_takes_ascii_digits_in_range(value, maximum, number):
    assert (read_number(value) if maximum is None else read_number(value, maximum)) == number
