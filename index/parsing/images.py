"""Image files (PNG, JPEG, TIFF) opened safely: the size a header declares is checked before any pixel is decoded.

Pillow reads only the header on open, so an image bomb (a small file that declares a huge picture) is refused
here, naming its size, before it can take memory; a file Pillow cannot read is refused as corrupt.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from citeqa.index.text.documents import DocumentError

# 60 megapixels: a letter page scanned at 600 dpi is 34 MP; a larger picture is almost surely not a page.
DEFAULT_MAX_IMAGE_PIXELS = 60_000_000


def open_image(raw: bytes, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> Image.Image:
    """The image in `raw`, header read and checked; DocumentError when it is unreadable or larger than max_pixels.
    Every frame of a multi-page TIFF is checked, since each declares its own size."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
            frames = getattr(image, "n_frames", 1)
            for frame in range(frames):
                image.seek(frame)
                width, height = image.size
                if width * height > max_pixels:
                    raise DocumentError(
                        f"image is {width:,} x {height:,} pixels ({width * height / 1e6:,.0f} megapixels), over the limit"
                        f" of {max_pixels / 1e6:,.0f} megapixels"
                    )
            image.seek(0)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own ceiling, met by a header so large that Pillow refuses it before this module sees its size
        raise DocumentError(f"image is too large: over the limit of {max_pixels / 1e6:,.0f} megapixels ({exc})") from exc
    except (UnidentifiedImageError, OSError, ValueError, EOFError, SyntaxError) as exc:
        raise DocumentError(f"corrupt or unreadable image: {exc}") from exc
    return image


def load_frame(image: Image.Image, frame: int) -> Image.Image:
    """Frame `frame` (0-based) decoded, as 8-bit grey or RGB; DocumentError when its pixels are corrupt."""
    try:
        image.seek(frame)
        image.load()
        return image.convert("L") if image.mode in ("1", "L", "I;16", "I", "F") else image.convert("RGB")
    except (OSError, ValueError, EOFError, SyntaxError) as exc:
        raise DocumentError(f"corrupt or unreadable image: page {frame + 1}: {exc}") from exc
