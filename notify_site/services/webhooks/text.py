"""Text as a LINE message takes it: no stray control characters, and cut without breaking a
character people see as one.

Lengths are counted as :mod:`notify_site.notify_content` counts them, in Unicode code points.
A cut never leaves half of an emoji sequence behind: it does not end just after a zero-width
joiner, nor before a combining mark, a variation selector or a skin-tone modifier, nor
between the two regional indicators of a flag.
"""

from __future__ import annotations

import re
import unicodedata

ELLIPSIS = "…"
ZWJ = "\u200d"
# What a message may carry: notify_content refuses other control characters (and PostgreSQL
# cannot store NUL). A tool's text loses them rather than being refused.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean(text: str) -> str:
    """``text`` with Windows and old Mac line breaks as ``\\n``, other control characters and
    lone surrogates dropped, and surrounding blank lines and spaces removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SURROGATE.sub("\ufffd", _CONTROL.sub("", text))
    return text.strip()


def _joins_next(char: str) -> bool:
    """Whether ``char`` belongs to the character before it (a cut must not come before it)."""
    code = ord(char)
    return (
        char == ZWJ
        or unicodedata.category(char).startswith("M")
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0xE0020 <= code <= 0xE007F  # tag characters (subdivision flags)
        or 0x1F3FB <= code <= 0x1F3FF  # skin tones
    )


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def safe_cut_point(text: str, limit: int) -> int:
    """The largest index ≤ ``limit`` at which ``text`` may be cut."""
    if len(text) <= limit:
        return len(text)
    point = limit
    while point > 0 and (_joins_next(text[point]) or text[point - 1] == ZWJ):
        point -= 1
    # Regional indicators pair up into flags from the start of their run.
    run = 0
    while run < point and _is_regional_indicator(text[point - 1 - run]):
        run += 1
    if run % 2 == 1 and point < len(text) and _is_regional_indicator(text[point]):
        point -= 1
    return point


def cut(text: str, limit: int) -> str:
    """``text`` if it has at most ``limit`` characters, else its start and "…" (``limit`` in
    all)."""
    if len(text) <= limit:
        return text
    return text[: safe_cut_point(text, limit - len(ELLIPSIS))].rstrip() + ELLIPSIS
