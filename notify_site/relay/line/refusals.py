"""What LINE says when it refuses a push: its message, its field-level ``details``, and
whether the refusal is about the push's image (then the text goes alone: push.py)."""

from __future__ import annotations

import json
from typing import Any

#: Where the image is among the messages ``push.build_messages`` makes (after the text).
IMAGE_INDEX = 1


def line_error(body: Any) -> tuple[str, list[dict[str, str]]]:
    """LINE's error message and its ``details`` (the field-level reasons of a 400:
    ``[{"message": ..., "property": ...}]``), from its JSON body."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return "unreadable error body", []
    if not isinstance(data, dict):
        return "no message", []
    message = data.get("message")
    details = []
    for item in data.get("details") or []:
        if isinstance(item, dict):
            details.append(
                {
                    "message": str(item.get("message") or "")[:200],
                    "property": str(item.get("property") or "")[:100],
                }
            )
    return (str(message)[:300] if message else "no message"), details[:5]


def details_text(details: list[dict[str, str]]) -> str:
    """`` (property: message; ...)`` for the stored reason; empty without details."""
    if not details:
        return ""
    parts = [f"{d['property']}: {d['message']}" if d["property"] else d["message"] for d in details]
    return " (" + "; ".join(parts) + ")"


def has_image_message(messages: list[Any]) -> bool:
    return any(getattr(m, "type", None) == "image" for m in messages)


def image_refused(details: list[dict[str, str]]) -> bool:
    """Whether LINE's 400 is about the image: its details name the image message, or it gave
    none (then the text is tried alone once: losing it would be worse than one more call)."""
    if not details:
        return True
    prefix = f"messages[{IMAGE_INDEX}]"
    return any(d["property"].startswith(prefix) for d in details)
