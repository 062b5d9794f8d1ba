"""The character boxes of a PDF page's text layer, read by PDFium, as a PageLayout (layout.py).

Read when a citation asks for them, from the stored original, rather than stored at indexing time: PDFium reads one
page's characters in about a millisecond, and a text layer is always there to be read again. OCR'd pages have no
text layer, so their word boxes are kept at indexing time instead (ocr_layout.py).
"""

from __future__ import annotations

from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from citeqa.index.parsing.layout import PageLayout
from citeqa.index.parsing.pdf import PDFIUM_LOCK, open_pdf
from citeqa.index.text.documents import DocumentError

Quad = tuple[float, float, float, float]


def page_layout(pdf: pdfium.PdfDocument, index: int) -> PageLayout:
    """The characters of page `index` (0-based) with their boxes in points from the top left of the page as it is
    shown (its /Rotate applied, as PDFium renders it and a viewer shows it)."""
    page = pdf[index]
    try:
        left, bottom, right, top = page.get_cropbox()
        rotation = page.get_rotation() % 360
        width, height = right - left, top - bottom
        textpage = page.get_textpage()
        try:
            chars: list[str] = []
            boxes: list[tuple[float, float, float, float]] = []
            for char in range(textpage.count_chars()):
                code = pdfium_c.FPDFText_GetUnicode(textpage.raw, char)
                chars.append(chr(code) if 0 < code < 0x110000 and not 0xD800 <= code < 0xE000 else "")
                if pdfium_c.FPDFText_IsGenerated(textpage.raw, char) == 1:
                    boxes.append((0.0, 0.0, 0.0, 0.0))  # a space or line break PDFium inferred: drawn nowhere
                    continue
                x0, y0, x1, y1 = textpage.get_charbox(char)
                boxes.append(_shown((x0 - left, top - y1, x1 - left, top - y0), rotation, width, height))
        finally:
            textpage.close()
    finally:
        page.close()
    if rotation in (90, 270):
        width, height = height, width
    return PageLayout(width=width, height=height, chars=chars, boxes=boxes)


def _shown(box: Quad, rotation: int, width: float, height: float) -> Quad:
    """A box (x0, y0, x1, y1 from the unrotated crop box's top left, `width` x `height`) on the page turned
    clockwise by `rotation` degrees, as /Rotate asks a viewer to show it."""
    x0, y0, x1, y1 = box
    if rotation == 90:  # the top left corner goes to the top right
        return (height - y1, x0, height - y0, x1)
    if rotation == 180:
        return (width - x1, height - y1, width - x0, height - y0)
    if rotation == 270:  # the top left corner goes to the bottom left
        return (y0, width - x1, y1, width - x0)
    return box


def pdf_page_layouts(raw: bytes | Path, pages: list[int]) -> dict[int, PageLayout]:
    """The layouts of the 1-based `pages` of the PDF `raw` (pages it does not have are left out)."""
    with PDFIUM_LOCK:
        pdf = open_pdf(raw)
        try:
            count = len(pdf)
            try:
                return {page: page_layout(pdf, page - 1) for page in pages if 1 <= page <= count}
            except pdfium.PdfiumError as exc:
                raise DocumentError(f"corrupt or truncated PDF: {exc}") from exc
        finally:
            pdf.close()
