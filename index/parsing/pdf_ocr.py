"""The pages of a PDF that are pictures (scans without a text layer), rendered by PDFium and read by OCR.

Each page is rendered at the OCR resolution only when its turn comes and let go after it, so a long scan holds one
page picture at a time; PDFium's lock is held while rendering, never while Tesseract reads. The words' boxes come
back in pixels of the rendering and are kept in points, the units of the page's text layer, so a scanned page and a
typed one are drawn and highlighted alike.
"""

from __future__ import annotations

import threading

import pypdfium2 as pdfium
from PIL import Image

from citeqa.index.parsing.ocr import Deadline, check_ready, read_page
from citeqa.index.parsing.ocr_layout import OcrPage, OcrSettings
from citeqa.index.parsing.parsed import PageProgress
from citeqa.index.text.documents import DocumentError

POINTS_PER_INCH = 72
# A page that claims to be huge is rendered smaller rather than at full resolution: 40 megapixels is a 600 dpi
# letter page, more than OCR needs.
MAX_OCR_PIXELS = 40_000_000


def _render(raw: bytes, index: int, dpi: int, lock: threading.Lock) -> tuple[Image.Image, float]:
    """Page `index` (0-based) as a grey picture, and its pixels per point."""
    with lock:
        pdf = pdfium.PdfDocument(raw)
        try:
            page = pdf[index]
            try:
                width, height = page.get_size()
                scale = dpi / POINTS_PER_INCH
                area = width * scale * height * scale
                if area > MAX_OCR_PIXELS:
                    scale *= (MAX_OCR_PIXELS / area) ** 0.5
                picture = page.render(scale=scale, grayscale=True).to_pil().convert("L")
            finally:
                page.close()
        except pdfium.PdfiumError as exc:
            raise DocumentError(f"corrupt PDF: page {index + 1} cannot be drawn: {exc}") from exc
        finally:
            pdf.close()
    return picture, scale


def read_scanned_pages(
    raw: bytes,
    indices: list[int],
    settings: OcrSettings,
    lock: threading.Lock,
    on_page: PageProgress | None,
    required: bool,
) -> dict[int, tuple[str, OcrPage]]:
    """What OCR reads on the 0-based pages `indices`, by 1-based page: (text, words in points). When OCR cannot
    run (turned off, Tesseract or the language missing), a PDF whose other pages have text keeps that text, and
    one that has none (`required`) fails saying why."""
    try:
        check_ready(settings)
    except DocumentError:
        if required:
            raise
        return {}
    if len(indices) > settings.max_pages:
        raise DocumentError(
            f"{len(indices):,} pages have no text layer and need OCR, over the limit of {settings.max_pages:,} pages per file"
        )
    deadline = Deadline(settings.seconds_per_file)
    read: dict[int, tuple[str, OcrPage]] = {}
    for done, index in enumerate(indices, start=1):
        picture, scale = _render(raw, index, settings.dpi, lock)
        text, words = read_page(picture, settings, deadline, done, len(indices))
        del picture
        read[index + 1] = (text, words.scaled(1 / scale))
        if on_page is not None:
            on_page(done, len(indices))
    return read
