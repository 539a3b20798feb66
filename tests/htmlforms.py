"""A tiny HTML form reader, so integration tests can submit pages the way a browser would."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    radios: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # name -> [(value, id)]
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (name, value)
    attrs: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = Form(
                action=attributes.get("action", ""),
                method=attributes.get("method", "get").lower(),
                attrs=attributes,
            )
            self.forms.append(self._current)
            return
        if self._current is None:
            return
        name = attributes.get("name")
        kind = attributes.get("type", "text" if tag == "input" else "submit")
        if tag == "button" or (tag == "input" and kind == "submit"):
            if name:
                self._current.buttons.append((name, attributes.get("value", "")))
        elif tag == "input" and name:
            if kind == "radio":
                self._current.radios.setdefault(name, []).append(
                    (attributes.get("value", ""), attributes.get("id", ""))
                )
                if "checked" in attributes:
                    self._current.fields[name] = attributes.get("value", "")
            elif kind != "checkbox" or "checked" in attributes:
                self._current.fields[name] = attributes.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def forms_in(html: str, base_url: str) -> list[Form]:
    """Every form of the page, with its action made absolute against ``base_url``."""
    parser = _FormParser()
    parser.feed(html)
    for form in parser.forms:
        form.action = urljoin(base_url, form.action)
    return parser.forms


def form_with(html: str, base_url: str, *, button: str | None = None, field: str | None = None):
    """The first form that has the named submit button or field."""
    for form in forms_in(html, base_url):
        if button and any(name == button for name, _ in form.buttons):
            return form
        if field and (field in form.fields or field in form.radios):
            return form
    raise AssertionError(f"no form with button={button!r} field={field!r} on the page")


def csrf_token(client, path: str) -> str:
    """The CSRF token the page at ``path`` carries in its forms (``client``: Flask's)."""
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)
