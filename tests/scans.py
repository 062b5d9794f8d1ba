"""Scans made here: real text typeset by reportlab, rendered by PDFium at scanner resolution, turned a little and
sprinkled with noise, as a flatbed scanner or a fax leaves a page. What OCR is measured and tested on."""

from __future__ import annotations

import io
import random
from collections.abc import Sequence

import numpy as np
import pypdfium2 as pdfium
from PIL import Image
from reportlab.lib.pagesizes import LETTER
from reportlab.pdfgen.canvas import Canvas

from tests.files import LEFT_X, PAGE_HEIGHT

SCAN_PARAGRAPHS = (
    "The northern weir was rebuilt in the autumn of 1987 after the spring flood had undermined its eastern abutment. "
    "Engineers from the river board measured a scour hole four metres deep below the sill.",
    "Salmon counts at the fish pass rose from 212 in the first season to 1,045 five years later, although the "
    "warden noted that the counter had been replaced in the meantime.",
    "Maintenance costs are shared between the river board and the mill owners, who pay a fixed sum each year "
    "toward repairs of the sluice gates and the keeper's cottage.",
)
SCAN_QUOTE = "Engineers from the river board measured a scour hole four metres deep below the sill."
FONT_SIZE = 12
LEADING = 16


def _wrap(text: str, width: int = 78) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line]


def text_pdf(pages: Sequence[Sequence[str]]) -> bytes:
    """A PDF whose pages hold these paragraphs, in 12 pt Times, as typed text."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=LETTER)
    for paragraphs in pages:
        canvas.setFont("Times-Roman", FONT_SIZE)
        y = PAGE_HEIGHT - 90
        for paragraph in paragraphs:
            for line in _wrap(paragraph):
                canvas.drawString(LEFT_X + 18, y, line)
                y -= LEADING
            y -= LEADING // 2
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def scanned_page(
    text_page_pdf: bytes, page: int = 0, dpi: int = 300, skew: float = 0.7, noise: float = 0.004, seed: int = 7
) -> Image.Image:
    """Page `page` of a PDF as a grey scan: rendered at `dpi`, turned by `skew` degrees, with a share `noise` of
    its pixels flipped to black or white at random (a fixed seed, so every run reads the same scan)."""
    pdf = pdfium.PdfDocument(text_page_pdf)
    picture = pdf[page].render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
    pdf.close()
    picture = picture.rotate(skew, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    pixels = np.array(picture)
    rng = np.random.default_rng(seed)
    flips = rng.random(pixels.shape) < noise
    pixels[flips] = rng.choice(np.array([0, 255], dtype=np.uint8), size=int(flips.sum()))
    return Image.fromarray(pixels, mode="L")


def image_bytes(image: Image.Image, kind: str, dpi: int = 300) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, dpi=(dpi, dpi))
    return buffer.getvalue()


def scanned_pdf_of(images: Sequence[Image.Image], dpi: int = 300) -> bytes:
    """A PDF of page pictures and no text layer, as a scanner writes one."""
    buffer = io.BytesIO()
    first, *rest = [image.convert("L") for image in images]
    first.save(buffer, "PDF", resolution=float(dpi), save_all=True, append_images=rest)
    return buffer.getvalue()


def shuffled_words(seed: int, count: int) -> str:
    """Running text of known words in an order no dictionary favours, for counting characters read correctly."""
    words = " ".join(SCAN_PARAGRAPHS).replace(",", "").replace(".", "").split()
    chooser = random.Random(seed)
    return " ".join(chooser.choice(words) for _ in range(count)) + "."
