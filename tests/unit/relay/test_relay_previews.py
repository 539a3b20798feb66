"""Issue 22: an uploaded image (up to 5 MB) is no longer sent as its own preview; LINE's
previews are at most 1 MB (relay/previews.py)."""

from __future__ import annotations

import io
import os

from PIL import Image

from notify_site.relay.previews import PREVIEW_MAX_BYTES, PREVIEW_SIDE, preview_of
from tests import images


def noisy_png(width: int, height: int, alpha: bool = False) -> bytes:
    """A PNG that does not compress: random pixels."""
    mode = "RGBA" if alpha else "RGB"
    raw = os.urandom(width * height * len(mode))
    out = io.BytesIO()
    Image.frombytes(mode, (width, height), raw).save(out, "PNG")
    return out.getvalue()


def test_a_small_image_is_its_own_preview():
    png = images.png(40, 30)
    assert preview_of(png, "image/png") == (png, "image/png")


def test_a_large_image_is_scaled_into_lines_preview_limit():
    big = noisy_png(1600, 1200)
    assert len(big) > 4 * PREVIEW_MAX_BYTES
    data, content_type = preview_of(big, "image/png")
    assert content_type == "image/jpeg"
    assert len(data) <= PREVIEW_MAX_BYTES
    with Image.open(io.BytesIO(data)) as preview:
        assert preview.format == "JPEG"
        assert preview.size == (PREVIEW_SIDE, 768)  # proportions kept


def test_a_transparent_image_gets_a_white_background():
    data, content_type = preview_of(noisy_png(1100, 1100, alpha=True), "image/png")
    assert content_type == "image/jpeg"
    assert len(data) <= PREVIEW_MAX_BYTES
    with Image.open(io.BytesIO(data)) as preview:
        assert preview.mode == "RGB"
