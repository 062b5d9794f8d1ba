"""A page as a PNG image, with rectangles (layout.py boxes) drawn over it: what the page endpoint sends.

A PDF page is rendered by PDFium; an uploaded image is the image itself (its frame for a multi-page TIFF). The
picture is scaled so that it holds at most `max_pixels` pixels, whatever the page's size says, so a page that
claims to be metres wide costs no more memory than an ordinary one.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from citeqa.index.parsing.images import load_frame, open_image
from citeqa.index.parsing.layout import Box
from citeqa.index.parsing.pdf import PDFIUM_LOCK, open_pdf
from citeqa.index.text.documents import DocumentError

# 1.5 pixels a point (108 dpi): a letter page is 918 x 1188 pixels, sharp enough to read in a side pane.
PDF_SCALE = 1.5
DEFAULT_MAX_PIXELS = 4_000_000
HIGHLIGHT = (255, 214, 0, 110)  # translucent yellow, so the words stay readable under it
OUTLINE = (214, 120, 0, 255)


def _fit(width: float, height: float, scale: float, max_pixels: int) -> float:
    """`scale`, or less when the page at that scale would hold more than max_pixels pixels."""
    area = max(width * scale, 1.0) * max(height * scale, 1.0)
    return scale if area <= max_pixels else scale * math.sqrt(max_pixels / area)


def render_pdf_page(raw: bytes | Path, page: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[Image.Image, float]:
    """Page `page` (1-based) of the PDF as an RGB image, and the pixels per point it was drawn at."""
    with PDFIUM_LOCK:
        pdf = open_pdf(raw)
        try:
            if not 1 <= page <= len(pdf):
                raise DocumentError(f"page {page} is out of range: the PDF has {len(pdf)} pages")
            handle = pdf[page - 1]
            try:
                width, height = handle.get_size()
                scale = _fit(width, height, PDF_SCALE, max_pixels)
                image = handle.render(scale=scale).to_pil().convert("RGB")
            finally:
                handle.close()
        finally:
            pdf.close()
    return image, scale


def render_image_page(raw: bytes, page: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[Image.Image, float]:
    """Frame `page` (1-based) of an uploaded image as RGB, reduced to max_pixels, and the scale it was reduced by."""
    image = open_image(raw)
    frames = getattr(image, "n_frames", 1)
    if not 1 <= page <= frames:
        raise DocumentError(f"page {page} is out of range: the image has {frames} pages")
    image = load_frame(image, page - 1).convert("RGB")
    scale = _fit(image.width, image.height, 1.0, max_pixels)
    if scale < 1.0:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    return image, scale


def draw_boxes(image: Image.Image, boxes: Sequence[Box], scale: float) -> Image.Image:
    """The image with each box (in page units) filled translucent and outlined, at `scale` pixels a unit."""
    if not boxes:
        return image
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for box in boxes:
        rect = (box.x0 * scale - 1, box.y0 * scale - 1, box.x1 * scale + 1, box.y1 * scale + 1)
        draw.rectangle(rect, fill=HIGHLIGHT, outline=OUTLINE, width=2)
    return Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
