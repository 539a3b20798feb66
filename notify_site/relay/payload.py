"""Validation of ``POST /api/notify`` fields (line-platform.md A3). Pure: no Flask, no database.

Rules, with the choices made where LINE's documentation is silent ([?]):

* ``message`` is required and holds 1 to 1000 characters. [?] LINE did not say how it counted;
  the relay counts Python ``str`` characters (Unicode code points), so "é" and "😀" are one
  each. Line breaks count as sent (CRLF is two). NUL characters are refused: no database
  can store them in text.
* ``imageThumbnail`` and ``imageFullsize`` come together, each an ``https://`` URL of at most
  2000 characters (HTTPS-only since 2023-11-17; 2000 is the Messaging API's URL limit).
* ``imageFile`` is a multipart upload of a PNG or JPEG, recognised by its first bytes (not by
  its name or declared type), of at most ``RELAY_IMAGE_MAX_BYTES``. As on LINE it takes the
  place of the image URLs, and it counts against the hourly image window.
* ``stickerPackageId`` and ``stickerId`` come together, each a positive decimal integer
  (ASCII digits, at most 2**31 - 1).
* ``notificationDisabled`` is ``true`` or ``false`` in any letter case; default false.
* [?] A field that is present must be valid, even when its value is empty: ``stickerId=``
  is an error, not an absent sticker. The one exception is an empty file part with no file
  name, which is what a browser sends for a file input left empty.
* Unknown fields are ignored. The first problem found is reported, its message starting with
  the field's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urlsplit

from notify_site.relay.errors import NotifyFieldError

MESSAGE_MAX_CHARS = 1000
URL_MAX_CHARS = 2000
STICKER_ID_MAX = 2**31 - 1

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"


@dataclass(frozen=True)
class UploadedImage:
    """An ``imageFile`` upload whose format was recognised."""

    content_type: str
    data: bytes


@dataclass(frozen=True)
class NotifyPayload:
    """A valid ``/api/notify`` request."""

    message: str
    image_thumbnail_url: str | None = None
    image_fullsize_url: str | None = None
    image_file: UploadedImage | None = None
    sticker_package_id: int | None = None
    sticker_id: int | None = None
    notification_disabled: bool = False

    @property
    def image_uploads(self) -> int:
        """How many image uploads this request spends of the window."""
        return 1 if self.image_file is not None else 0


@dataclass(frozen=True)
class FileField:
    """An uploaded file as the parser needs it: its name and a stream of its bytes."""

    filename: str
    stream: BinaryIO


def parse_notify_fields(
    fields: Mapping[str, str],
    image_file: FileField | None = None,
    *,
    image_max_bytes: int,
) -> NotifyPayload:
    """Check the fields of a notify request; raise :class:`NotifyFieldError` on the first bad one.

    ``fields`` are the text fields (query string and body merged, the body winning);
    ``image_file`` is the ``imageFile`` upload, if there was one.
    """
    message = _message(fields)
    package_id, sticker_id = _pair(fields, "stickerPackageId", "stickerId", _positive_int)
    thumbnail, fullsize = _pair(fields, "imageThumbnail", "imageFullsize", _https_url)
    if "imageFile" in fields:
        raise NotifyFieldError("imageFile", "must be a file sent as multipart/form-data")
    upload = _image(image_file, image_max_bytes) if image_file is not None else None
    if upload is not None:
        thumbnail = fullsize = None
    return NotifyPayload(
        message=message,
        image_thumbnail_url=thumbnail,
        image_fullsize_url=fullsize,
        image_file=upload,
        sticker_package_id=package_id,
        sticker_id=sticker_id,
        notification_disabled=_boolean(fields, "notificationDisabled"),
    )


def _message(fields: Mapping[str, str]) -> str:
    message = fields.get("message")
    if message is None:
        raise NotifyFieldError("message", "required")
    if not message:
        raise NotifyFieldError("message", "must not be empty")
    if len(message) > MESSAGE_MAX_CHARS:
        raise NotifyFieldError(
            "message",
            f"must be at most {MESSAGE_MAX_CHARS} characters (got {len(message)})",
        )
    if "\x00" in message:
        raise NotifyFieldError("message", "must not contain NUL characters")
    return message


def _pair(fields, first: str, second: str, convert):
    """Two fields that are given together or not at all."""
    a, b = fields.get(first), fields.get(second)
    if a is None and b is None:
        return None, None
    if b is None:
        raise NotifyFieldError(second, f"required together with {first}")
    if a is None:
        raise NotifyFieldError(first, f"required together with {second}")
    return convert(first, a), convert(second, b)


def _positive_int(field: str, value: str) -> int:
    # The length check keeps int() far from Python's limit on digits in a string.
    digits_ok = value.isascii() and value.isdigit() and len(value) <= 10
    if not digits_ok or not 0 < int(value) <= STICKER_ID_MAX:
        raise NotifyFieldError(field, "must be a positive integer")
    return int(value)


def _https_url(field: str, value: str) -> str:
    if len(value) > URL_MAX_CHARS:
        raise NotifyFieldError(field, f"must be at most {URL_MAX_CHARS} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise NotifyFieldError(field, "must be a URL without spaces or control characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise NotifyFieldError(field, "must be a valid URL") from None
    if parts.scheme.lower() != "https":
        raise NotifyFieldError(field, "must be an HTTPS URL (https://...)")
    if not host:
        raise NotifyFieldError(field, "must be an HTTPS URL with a host name")
    return value


def _boolean(fields: Mapping[str, str], field: str) -> bool:
    value = fields.get(field)
    if value is None:
        return False
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise NotifyFieldError(field, "must be true or false")
    return lowered == "true"


def _image(upload: FileField, max_bytes: int) -> UploadedImage | None:
    data = upload.stream.read(max_bytes + 1)
    if not data:
        if not upload.filename:
            return None  # an empty file input in a browser form: no file
        raise NotifyFieldError("imageFile", "the file is empty")
    if len(data) > max_bytes:
        raise NotifyFieldError("imageFile", f"must be at most {max_bytes} bytes")
    if data.startswith(PNG_SIGNATURE):
        return UploadedImage("image/png", data)
    if data.startswith(JPEG_SIGNATURE):
        return UploadedImage("image/jpeg", data)
    raise NotifyFieldError("imageFile", "must be a PNG or JPEG image")
