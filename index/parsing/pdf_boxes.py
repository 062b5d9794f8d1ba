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


def page_layout(pdf: pdfium.PdfDocument, index: int) -> PageLayout:
    """The characters of page `index` (0-based) with their boxes in points from the crop box's top left."""
    page = pdf[index]
    try:
        left, bottom, right, top = page.get_cropbox()
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
                boxes.append((x0 - left, top - y1, x1 - left, top - y0))
        finally:
            textpage.close()
    finally:
        page.close()
    return PageLayout(width=right - left, height=top - bottom, chars=chars, boxes=boxes)


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
