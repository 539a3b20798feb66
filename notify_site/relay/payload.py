"""Validation of ``POST /api/notify`` fields (line-platform.md A3). Pure: no Flask, no database.

The rules are :mod:`notify_site.notify_content`'s, the ones the site checks its own sends
with, so that whatever the site accepts the relay accepts too. This module reads the upload
and words the first problem as LINE Notify did: in English, the message starting with the
field's name (``"stickerId: required together with stickerPackageId"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO

from notify_site.notify_content import NOTIFY_NAMES, Content, ContentError, ImageFile
from notify_site.notify_content import read_notify_fields as read_fields
from notify_site.relay.errors import NotifyFieldError


@dataclass(frozen=True)
class FileField:
    """An uploaded file as the parser needs it: its name, declared type and a stream of bytes."""

    filename: str
    stream: BinaryIO
    content_type: str = ""


def parse_notify_fields(
    fields: Mapping[str, str],
    image_file: FileField | None = None,
    *,
    image_max_bytes: int,
) -> Content:
    """Check the fields of a notify request; raise :class:`NotifyFieldError` on the first bad one.

    ``fields`` are the text fields (query string and body merged, the body winning);
    ``image_file`` is the ``imageFile`` upload, if there was one. At most one byte past
    ``image_max_bytes`` is read from it: enough to know it is too large.
    """
    upload = None
    if image_file is not None:
        upload = ImageFile(
            filename=image_file.filename,
            data=image_file.stream.read(image_max_bytes + 1),
            declared_type=image_file.content_type,
        )
    try:
        return read_fields(fields, upload, image_max_bytes=image_max_bytes)
    except ContentError as error:
        name, problem = next(iter(error.problems.items()))
        raise NotifyFieldError(NOTIFY_NAMES[name], problem.english(NOTIFY_NAMES)) from None
