"""Image files for tests: real PNGs and JPEGs made with Pillow, and PNG headers of any size.

A header-only PNG declares its dimensions in IHDR and carries a tiny IDAT that does not hold
those pixels: enough for every check that reads only the header (as the site's do), without
building a real 30000 x 30000 image.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def png(width: int = 2, height: int = 2, colour=(30, 144, 255)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def jpeg(width: int = 2, height: int = 2, colour=(255, 140, 0)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "JPEG")
    return out.getvalue()


def png_header(width: int, height: int, *, padding: int = 0) -> bytes:
    """A PNG whose header says ``width`` x ``height``; ``padding`` bytes of IDAT follow."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    pixels = zlib.compress(b"\x00" * 64) + b"\x00" * padding
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
