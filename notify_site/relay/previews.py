"""Preview images for LINE: an uploaded image made small enough for ``previewImageUrl``.

LINE shows a push's image in the chat from its preview (JPEG or PNG, at most 1 MB;
line-platform.md B1) and opens the original (at most 10 MB) on a tap. Uploads may be 5 MB, so
the upload itself cannot be its own preview. Pillow scales it down (keeping its proportions) to
at most :data:`PREVIEW_SIDE` pixels a side and writes a JPEG, smaller again until it fits; an
image already within the limit is its own preview.

Made on request (LINE fetches a preview a few times, the answer may be cached a day) rather
than stored, so that nothing new is kept per upload.
"""

from __future__ import annotations

import io

from PIL import Image

#: LINE's limit for ``previewImageUrl``.
PREVIEW_MAX_BYTES = 1024 * 1024
#: The longest side of a preview: LINE shows previews at most about this wide.
PREVIEW_SIDE = 1024
JPEG = "image/jpeg"


def preview_of(data: bytes, content_type: str) -> tuple[bytes, str]:
    """The preview of an uploaded image: ``(bytes, content type)``, at most 1 MB."""
    if len(data) <= PREVIEW_MAX_BYTES:
        return data, content_type
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        # JPEG has no transparency: a transparent PNG goes onto white, as LINE's chat shows it.
        if image.mode in ("RGBA", "LA", "P"):
            rgba = image.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
        else:
            flat = image.convert("RGB")
    side = PREVIEW_SIDE
    while True:
        scaled = flat.copy()
        scaled.thumbnail((side, side))
        out = io.BytesIO()
        scaled.save(out, "JPEG", quality=85, optimize=True)
        if out.tell() <= PREVIEW_MAX_BYTES or side <= 128:
            return out.getvalue(), JPEG
        side //= 2
