"""Reading the refreshing parts of a page: the ``data-part`` elements that static/js/parts.js
swaps, in a whole page or in the fragment an endpoint answers."""

from __future__ import annotations

import re

_PART = re.compile(r'<(\w+)\b[^>]*\bdata-part="([^"]+)"[^>]*>')
_CSRF = re.compile(r'(name="csrf_token"[^>]*\bvalue=")[^"]*"')


def parts(html: str) -> dict[str, str]:
    """The inner HTML of each ``data-part`` element, by name, with CSRF tokens blanked (each
    answer signs its own). The script gives a page's part the children of the fragment's."""
    found: dict[str, str] = {}
    for start in _PART.finditer(html):
        tag, name = start.groups()
        tags = re.compile(rf"<(/?){tag}\b[^>]*>")
        depth, position = 1, start.end()
        while depth:
            inner = tags.search(html, position)
            assert inner is not None, f"data-part={name!r}: <{tag}> is never closed"
            depth += -1 if inner.group(1) else 1
            position = inner.end()
        found[name] = _CSRF.sub(r'\1"', html[start.end() : inner.start()])
    return found


def is_fragment(html: str) -> bool:
    """A fragment of a page, as parts.js expects one: no document around it, one root."""
    return "<html" not in html and html.lstrip().startswith("<div data-parts")
