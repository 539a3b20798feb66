"""The rules of Notify content: one validation shared by the site and the relay.

The send form, the JSON API (its marshmallow schemas) and the relay's ``/api/notify`` all
check a notification here, so the site refuses at submit exactly what the relay (or LINE)
would refuse later, and a 202 "queued" can no longer end in a 400 from the Notify server.
Pure: no Flask, no request, no database. :func:`check_content` takes typed values (the site);
:func:`read_notify_fields` takes the Notify API's wire form, strings by LINE's field names (the
relay). Both return a checked :class:`Content` or raise one :class:`ContentError` that maps each
bad field to a :class:`Problem`: a reason *code* with its parameters. Each house words the
codes itself: the site translates them, the relay answers in English as LINE did
(:data:`ENGLISH`).

The rules (docs/line-platform.md A3), with the choices made where LINE was silent ([?]):

* ``message`` is required: 1 to 1000 characters, counted as Unicode code points ([?] LINE never
  said how it counted), line breaks as sent (CRLF is two). It may be only spaces: LINE Notify
  wanted a message even for a lone sticker or image, and " " was the usual way to send one.
  No control characters but tab, LF and CR, and no lone surrogates (see
  :mod:`notify_site.plain_text`).
* ``sticker_package_id`` and ``sticker_id`` come together, each a positive integer up to
  2**31 - 1 (on the wire: ASCII digits only).
* ``image_thumbnail_url`` and ``image_fullsize_url`` come together, each an ``https://`` URL with
  a host name, a valid port if any, at most 2000 characters (the Messaging API's URL limit),
  and no spaces or control characters anywhere (LINE fetched them as given).
* ``image_file``, an upload, takes the place of the URLs when both are sent (as on LINE). It
  must be a PNG or a JPEG, recognised by its first bytes; a declared type (the part's
  Content-Type), when it names a type, must agree with them (``application/octet-stream`` or
  none: the bytes decide). At most :data:`IMAGE_MAX_BYTES` (5 MiB). Its dimensions are read
  from the header with Pillow, never decoding a pixel, and must be at most
  :data:`IMAGE_MAX_SIDE` × :data:`IMAGE_MAX_SIDE` (2048 × 2048): LINE's bound for a full-size
  image (A3); the thumbnail (≤ 240 × 240) is scaled from it. A 30000 × 30000 PNG compresses to
  under 1 MB and decodes to 900 million pixels in every browser that shows it: refused, like
  a 4032 × 3024 phone photo, which must be scaled down first.
* ``notification_disabled`` is a boolean (wire: ``true``/``false`` in any letter case).

On the wire ([?] as the relay always did): a field that is present must be valid even when
empty (``stickerId=`` is an error), except an empty file part with no file name, which is
what a browser sends for a file input left empty; unknown fields are ignored; ``imageFile``
as a text field alone is an error (it must be a file), and beside a real file part it is
ignored (one popular client sends the file's path in the query string too).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from PIL import Image as PILImage

from notify_site.plain_text import text_problem

MESSAGE_MAX_CHARS = 1000
URL_MAX_CHARS = 2000
STICKER_ID_MAX = 2**31 - 1
IMAGE_MAX_BYTES = 5 * 1024 * 1024
IMAGE_MAX_SIDE = 2048

PNG = "image/png"
JPEG = "image/jpeg"
_SIGNATURES = {b"\x89PNG\r\n\x1a\n": PNG, b"\xff\xd8\xff": JPEG}
_PILLOW_FORMATS = {PNG: "PNG", JPEG: "JPEG"}
# Declared types that say nothing about the bytes (the bytes decide), and other names of ours.
_GENERIC_TYPES = {"", "application/octet-stream"}
_TYPE_ALIASES = {"image/jpg": JPEG, "image/pjpeg": JPEG, "image/x-png": PNG}

# Pillow refuses (DecompressionBombError) an image past twice this many pixels and warns past
# it; nothing here decodes pixels, but any decoding elsewhere in the process keeps a guard,
# a little tighter than Pillow's default (89 million). Below it the header's dimensions are
# read and refused past IMAGE_MAX_SIDE with a message that gives them; the warning is made an
# error, so an absurd image is refused quietly instead of filling the log with warnings.
PILImage.MAX_IMAGE_PIXELS = (4 * IMAGE_MAX_SIDE) ** 2
warnings.simplefilter("error", PILImage.DecompressionBombWarning)

# The fields, in the order they are checked (the relay reports the first problem).
FIELDS = (
    "message",
    "sticker_package_id",
    "sticker_id",
    "image_thumbnail_url",
    "image_fullsize_url",
    "image_file",
    "notification_disabled",
)
# Their names in the Notify API (LINE's names).
NOTIFY_NAMES = {
    "message": "message",
    "sticker_package_id": "stickerPackageId",
    "sticker_id": "stickerId",
    "image_thumbnail_url": "imageThumbnail",
    "image_fullsize_url": "imageFullsize",
    "image_file": "imageFile",
    "notification_disabled": "notificationDisabled",
}
PAIRS = {
    "sticker_package_id": "sticker_id",
    "sticker_id": "sticker_package_id",
    "image_thumbnail_url": "image_fullsize_url",
    "image_fullsize_url": "image_thumbnail_url",
}

# The reasons as the relay words them, in English (LINE's contract): ``{field}`` names a field
# the way the caller named it, the other placeholders are the problem's parameters.
ENGLISH = {
    "required": "required",
    "empty": "must not be empty",
    "too_long": "must be at most {max} characters (got {count})",
    "control_character": "must not contain control characters (found {character})",
    "invalid_unicode": "must be valid Unicode (found {character})",
    "pair": "required together with {other}",
    "positive_integer": "must be a positive integer",
    "url_too_long": "must be at most {max} characters",
    "url_characters": "must be a URL without spaces or control characters",
    "url_invalid": "must be a valid URL",
    "url_https": "must be an HTTPS URL (https://...)",
    "url_host": "must be an HTTPS URL with a host name",
    "boolean": "must be true or false",
    "not_a_file": "must be a file sent as multipart/form-data",
    "file_empty": "the file is empty",
    "file_too_large": "must be at most {max} bytes",
    "file_type": "must be a PNG or JPEG image",
    "type_mismatch": "is declared as {declared} but the file is {actual}",
    "unreadable": "must be a readable PNG or JPEG image",
    "dimensions": "must be at most {max}x{max} pixels (got {width}x{height})",
    "too_many_pixels": "must be at most {max}x{max} pixels",
}


@dataclass(frozen=True)
class Problem:
    """What is wrong with one field: a reason ``code`` (a key of :data:`ENGLISH`) and the
    values its wording needs (``max``, ``count``, ``other``...)."""

    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def english(self, names: Mapping[str, str] | None = None) -> str:
        """The reason in English; ``names`` renames the field in ``pair`` (``other``)."""
        params = dict(self.params)
        if "other" in params and names:
            params["other"] = names.get(params["other"], params["other"])
        return ENGLISH[self.code].format(**params)


class ContentError(ValueError):
    """The content cannot be sent; ``problems`` maps each bad field (a name of
    :data:`FIELDS`) to its :class:`Problem`, in the order of :data:`FIELDS`."""

    def __init__(self, problems: Mapping[str, Problem]) -> None:
        ordered = {name: problems[name] for name in FIELDS if name in problems}
        super().__init__("; ".join(f"{name}: {p.english()}" for name, p in ordered.items()))
        self.problems = ordered


@dataclass(frozen=True)
class ImageFile:
    """An uploaded file as received: its name, its bytes (possibly cut at the size limit + 1)
    and the type the sender declared for it (``""`` if none)."""

    filename: str
    data: bytes
    declared_type: str = ""


@dataclass(frozen=True)
class Image:
    """An uploaded image that passed: PNG or JPEG, within the size and dimension limits."""

    filename: str
    data: bytes
    content_type: str
    width: int
    height: int


@dataclass(frozen=True)
class Content:
    """A notification that passed every rule; made by :func:`check_content` or
    :func:`read_notify_fields`. With an image file, the URLs are None (the file replaced them)."""

    message: str
    sticker_package_id: int | None = None
    sticker_id: int | None = None
    image_thumbnail_url: str | None = None
    image_fullsize_url: str | None = None
    image_file: Image | None = None
    notification_disabled: bool = False


def check_content(
    message: str | None,
    *,
    sticker_package_id: int | None = None,
    sticker_id: int | None = None,
    image_thumbnail_url: str | None = None,
    image_fullsize_url: str | None = None,
    image_file: ImageFile | None = None,
    notification_disabled: bool = False,
    image_max_bytes: int = IMAGE_MAX_BYTES,
) -> Content:
    """Check typed values (None: not given); every problem is reported at once."""
    values = {
        "message": message,
        "sticker_package_id": sticker_package_id,
        "sticker_id": sticker_id,
        "image_thumbnail_url": image_thumbnail_url,
        "image_fullsize_url": image_fullsize_url,
        "image_file": image_file,
        "notification_disabled": notification_disabled,
    }
    return _check(values, {}, image_max_bytes)


def read_notify_fields(
    fields: Mapping[str, str],
    image_file: ImageFile | None = None,
    *,
    image_max_bytes: int = IMAGE_MAX_BYTES,
) -> Content:
    """Check a ``/api/notify`` request: its text ``fields`` by LINE's names (query string and
    body merged) and its ``imageFile`` upload, if any."""
    problems: dict[str, Problem] = {}
    values: dict[str, Any] = {name: fields.get(NOTIFY_NAMES[name]) for name in FIELDS}
    for name in ("sticker_package_id", "sticker_id"):
        raw = values[name]
        if raw is not None:
            # The length check keeps int() far from Python's limit on digits in a string.
            if raw.isascii() and raw.isdigit() and len(raw) <= 10:
                values[name] = int(raw)
            else:
                problems[name] = Problem("positive_integer")
    if image_file is not None and not image_file.data and not image_file.filename:
        image_file = None  # a browser form's empty file input: no file
    # A text field named imageFile is refused, unless a real file part came with it: one
    # popular client also puts the file's path in the query string, and LINE took the file.
    if values["image_file"] is not None and image_file is None:
        problems["image_file"] = Problem("not_a_file")
    values["image_file"] = image_file
    raw = values["notification_disabled"]
    silent = "false" if raw is None else raw.lower()
    if silent not in ("true", "false"):
        problems["notification_disabled"] = Problem("boolean")
    values["notification_disabled"] = silent == "true"
    return _check(values, problems, image_max_bytes)


def _check(values: dict[str, Any], problems: dict[str, Problem], image_max_bytes: int) -> Content:
    """The rules, on values already converted (``problems`` holds what conversion found)."""

    def check(name: str, rule) -> None:
        if name not in problems:
            problem = rule(values[name])
            if problem is not None:
                problems[name] = problem

    check("message", _message_problem)
    for first, rule in (("sticker_package_id", _sticker_problem), ("image_thumbnail_url", _url)):
        second = PAIRS[first]
        given = values[first] is not None, values[second] is not None
        if given == (True, False):
            problems.setdefault(second, Problem("pair", {"other": first}))
        elif given == (False, True):
            problems.setdefault(first, Problem("pair", {"other": second}))
        elif given == (True, True):
            check(first, rule)
            check(second, rule)
    image = None
    if values["image_file"] is not None and "image_file" not in problems:
        try:
            image = read_image(values["image_file"], max_bytes=image_max_bytes)
        except ContentError as error:
            problems.update(error.problems)
    if not isinstance(values["notification_disabled"], bool):
        problems.setdefault("notification_disabled", Problem("boolean"))
    if problems:
        raise ContentError(problems)
    has_urls = image is None
    return Content(
        message=values["message"],
        sticker_package_id=values["sticker_package_id"],
        sticker_id=values["sticker_id"],
        image_thumbnail_url=values["image_thumbnail_url"] if has_urls else None,
        image_fullsize_url=values["image_fullsize_url"] if has_urls else None,
        image_file=image,
        notification_disabled=values["notification_disabled"],
    )


def _message_problem(message: Any) -> Problem | None:
    if message is None:
        return Problem("required")
    if not isinstance(message, str):
        return Problem("required")
    if not message:
        return Problem("empty")
    if len(message) > MESSAGE_MAX_CHARS:
        return Problem("too_long", {"max": MESSAGE_MAX_CHARS, "count": len(message)})
    problem = text_problem(message, multiline=True)
    if problem is not None:
        return Problem(problem.code, {"character": problem.character})
    return None


def _sticker_problem(value: Any) -> Problem | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= STICKER_ID_MAX:
        return Problem("positive_integer")
    return None


def _url(value: Any) -> Problem | None:
    if not isinstance(value, str):
        return Problem("url_invalid")
    if len(value) > URL_MAX_CHARS:
        return Problem("url_too_long", {"max": URL_MAX_CHARS})
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        return Problem("url_characters")
    if text_problem(value) is not None:  # a lone surrogate
        return Problem("url_invalid")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        return Problem("url_invalid")
    if parts.scheme.lower() != "https":
        return Problem("url_https")
    if not host:
        return Problem("url_host")
    return None


def image_type(data: bytes) -> str | None:
    """``image/png`` or ``image/jpeg`` by the file's first bytes, else None."""
    for signature, content_type in _SIGNATURES.items():
        if data.startswith(signature):
            return content_type
    return None


def read_image(upload: ImageFile, *, max_bytes: int = IMAGE_MAX_BYTES) -> Image:
    """Check an uploaded image: type by its bytes, declared type, size, then dimensions read
    from its header (Pillow opens it lazily: no pixel is decoded). Raises :class:`ContentError`
    on ``image_file``."""

    def refuse(code: str, **params: Any) -> ContentError:
        return ContentError({"image_file": Problem(code, params)})

    data = upload.data
    if not data:
        raise refuse("file_empty")
    if len(data) > max_bytes:
        raise refuse("file_too_large", max=max_bytes)
    actual = image_type(data)
    if actual is None:
        raise refuse("file_type")
    declared = upload.declared_type.split(";")[0].strip().lower()
    declared = _TYPE_ALIASES.get(declared, declared)
    if declared not in _GENERIC_TYPES and declared != actual:
        raise refuse("type_mismatch", declared=declared[:100], actual=actual)
    try:
        with PILImage.open(io.BytesIO(data), formats=[_PILLOW_FORMATS[actual]]) as opened:
            width, height = opened.size
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
        raise refuse("too_many_pixels", max=IMAGE_MAX_SIDE) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError):
        # What Pillow raises for a header it cannot make sense of (truncated, corrupt chunks).
        raise refuse("unreadable") from None
    if not (0 < width <= IMAGE_MAX_SIDE and 0 < height <= IMAGE_MAX_SIDE):
        raise refuse("dimensions", max=IMAGE_MAX_SIDE, width=width, height=height)
    return Image(
        filename=upload.filename, data=data, content_type=actual, width=width, height=height
    )
