"""What text the site and the relay store: the one rule every free-text input shares.

Pure: no Flask, no database. A string is refused when

* it holds a C0 control character (U+0000 to U+001F). NUL first of all: PostgreSQL cannot
  store it in text at all (psycopg refuses the whole statement), SQLite keeps it but every
  later reader trips on it. The others (bell, escape, backspace...) mean nothing in a label, a
  key name or a user name and only make a value look like another one. A message may hold a
  tab and line breaks (LF, CR), which LINE shows; nothing else.
* it holds a lone surrogate (U+D800 to U+DFFF alone, which JSON's ``\\ud800`` can produce):
  it is not Unicode text and cannot be encoded as UTF-8 to be stored or sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# What a message may hold of C0: tab, line feed, carriage return.
MULTILINE_ALLOWED = "\t\n\r"

_CONTROL = re.compile("[\x00-\x1f]")
_CONTROL_MULTILINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class TextProblem:
    """Why a string cannot be stored: ``code`` is ``control_character`` or ``invalid_unicode``;
    ``character`` names the first offending character as ``U+0000``."""

    code: str
    character: str


def text_problem(value: str, *, multiline: bool = False) -> TextProblem | None:
    """The first reason ``value`` cannot be stored, or None.

    ``multiline``: a message, where tab, LF and CR are allowed.
    """
    control = (_CONTROL_MULTILINE if multiline else _CONTROL).search(value)
    if control:
        return TextProblem("control_character", code_point(control.group()))
    surrogate = _SURROGATE.search(value)
    if surrogate:
        return TextProblem("invalid_unicode", code_point(surrogate.group()))
    return None


def code_point(character: str) -> str:
    """``U+0000``: how the reasons name a character that cannot be shown."""
    return f"U+{ord(character):04X}"


#: The largest id a database ``INTEGER`` column holds (PostgreSQL refuses a larger one in a
#: comparison with an error, so a larger number must not reach a query).
ID_MAX = 2**31 - 1


def read_number(value: str, maximum: int = ID_MAX) -> int | None:
    """The whole number ``value`` spells in ASCII digits, when it is at most ``maximum``;
    else None. ``int()`` alone is not the rule: ``"²".isdigit()`` is true and ``int("²")``
    raises, ``int("٣")`` is 3, and a number past a column's range makes PostgreSQL refuse the
    whole statement."""
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(maximum)):
        return None
    number = int(value)
    return number if number <= maximum else None


#: The last page number a list's query string may ask for (more pages than any list has).
PAGE_MAX = 1_000_000


def read_page(value: str | None) -> int:
    """A page number from a query string: 1 when it is missing or not a number from 1 on, at
    most :data:`PAGE_MAX` (a page's offset must stay within what a database reads)."""
    number = read_number(value or "")
    return 1 if not number else min(number, PAGE_MAX)
