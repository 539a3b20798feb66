"""The API's own request fields: a connection by id or label, a strict JSON boolean, and an
uploaded image file."""

from __future__ import annotations

from typing import Any

from marshmallow import fields
from werkzeug.datastructures import FileStorage

from notify_site import notify_content
from notify_site.plain_text import ID_MAX, text_problem

LABEL_MAX_CHARS = 64


class ConnectionRef(fields.Field):
    """A connection, by id (an integer) or by label (a string)."""

    default_error_messages = {
        "invalid": "a connection id (a positive integer) or label (a non-empty string)",
        "too_long": f"a label has at most {LABEL_MAX_CHARS} characters",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "metadata",
            {
                "description": "A connection's id, or its label",
                "oneOf": [
                    {"type": "integer", "minimum": 1, "maximum": ID_MAX},
                    {"type": "string", "minLength": 1, "maxLength": LABEL_MAX_CHARS},
                ],
            },
        )
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr, data, **kwargs) -> int | str:
        ref = read_connection_ref(value)
        if ref is None:
            too_long = isinstance(value, str) and len(value.strip()) > LABEL_MAX_CHARS
            raise self.make_error("too_long" if too_long else "invalid")
        return ref


def read_connection_ref(value: Any) -> int | str | None:
    """A connection ref from JSON: an id (an integer in range) or a label (a string, stripped,
    of printable text, not too long); None when it is neither. The rule of :class:`ConnectionRef`,
    also read by the API's fast path (notify_site/api/fast_accept.py)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value <= ID_MAX else None
    if isinstance(value, str):
        value = value.strip()
        if not value or text_problem(value) or len(value) > LABEL_MAX_CHARS:
            return None
        return value
    return None


class StrictBoolean(fields.Boolean):
    """A JSON ``true`` or ``false``, not ``"yes"`` or ``1``."""

    def _deserialize(self, value: Any, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class ImageFile(fields.Field):
    """An uploaded file (multipart), read into memory; documented as binary."""

    default_error_messages = {"invalid": "must be a file part of a multipart/form-data body"}

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"type": "string", "format": "binary", **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr, data, **kwargs) -> notify_content.ImageFile:
        if not isinstance(value, FileStorage):
            raise self.make_error("invalid")
        # The name is only kept for the record: printable characters only.
        filename = "".join(char for char in value.filename or "" if char.isprintable())
        return notify_content.ImageFile(
            filename=filename[:200] or "image",
            data=value.read(),
            declared_type=value.mimetype or "",
        )


class SendAt(fields.AwareDateTime):
    """A send-later time: RFC 3339 with its offset (``2031-05-06T07:30:00+09:00`` or ``…Z``)."""

    default_error_messages = {
        "invalid": "an RFC 3339 date and time with its offset, e.g. 2031-05-06T07:30:00+09:00",
        "invalid_awareness": "give the time with its offset (Z or +09:00)",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "metadata",
            {
                "description": "Send later, at this time (RFC 3339 with an offset; in the "
                "future, at most a year ahead). The notification is `scheduled` until then "
                "and may be cancelled."
            },
        )
        super().__init__(format="iso", **kwargs)
