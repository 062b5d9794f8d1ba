"""A document's pages as they look: the rectangles a span of its text covers, and a page image with them drawn.

The layout of a page comes from where the page came from: OCR'd pages keep Tesseract's words in the document's
meta (`meta["ocr"]`, written by ocr.py); other PDF pages are read again from the stored original by PDFium
(pdf_boxes.py). Layouts of recently asked pages are kept, since a search returns several quotes from few pages.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from citeqa.index.parsing.layout import Box, PageLayout, span_boxes
from citeqa.index.parsing.locate import original_of
from citeqa.index.parsing.ocr_layout import stored_layout
from citeqa.index.parsing.page_image import DEFAULT_MAX_PIXELS, draw_boxes, png_bytes, render_image_page, render_pdf_page
from citeqa.index.parsing.parsed import page_at
from citeqa.index.parsing.pdf_boxes import pdf_page_layouts
from citeqa.index.text.documents import Document, DocumentError

PDF = "application/pdf"
CACHED_PAGES = 64


class PageViews:
    """Boxes and page images of one collection's documents; `original_path` finds a stored original by its hash."""

    def __init__(self, original_path: Callable[[str], Path | None], cached_pages: int = CACHED_PAGES) -> None:
        self.original_path = original_path
        self._cache: OrderedDict[tuple[str, int], PageLayout | None] = OrderedDict()
        self._cached_pages = cached_pages
        self._lock = threading.Lock()

    def page_count(self, document: Document) -> int:
        pages = document.meta.get("pages")
        return len(pages) if isinstance(pages, list) else 0

    def boxes(self, document: Document, start: int, end: int) -> list[Box]:
        """The rectangles covering document.text[start:end], page by page; [] for a document without pages, an
        empty span, or a page whose layout cannot be read (its original gone, or damaged)."""
        pages = document.meta.get("pages")
        if not isinstance(pages, list) or not pages or end <= start:
            return []
        first, last = page_at(pages, start), page_at(pages, max(start, end - 1))
        if first is None or last is None:
            return []
        found: list[Box] = []
        for page in range(first, last + 1):
            layout = self.layout(document, page)
            if layout is None:
                continue
            page_start = pages[page - 1]
            page_end = pages[page] if page < len(pages) else len(document.text)
            text = document.text[page_start:page_end]
            found.extend(span_boxes(layout, page, text, max(start, page_start) - page_start, min(end, page_end) - page_start))
        return found

    def layout(self, document: Document, page: int) -> PageLayout | None:
        key = (document.sha256, page)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        layout = self._read_layout(document.meta, page)
        with self._lock:
            self._cache[key] = layout
            while len(self._cache) > self._cached_pages:
                self._cache.popitem(last=False)
        return layout

    def _read_layout(self, meta: dict[str, Any], page: int) -> PageLayout | None:
        stored = stored_layout(meta, page)
        if stored is not None:
            return stored
        original = original_of(meta)
        if original is None or original.media_type != PDF:
            return None
        path = self.original_path(original.sha256)
        if path is None:
            return None
        try:
            return pdf_page_layouts(path, [page]).get(page)
        except DocumentError:
            return None

    def image(self, document: Document, page: int, boxes: list[Box], max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[bytes, float]:
        """Page `page` as PNG with `boxes` (those on that page) drawn over it, and its pixels per page unit.
        DocumentError when the document has no such page or no original to draw it from."""
        original = original_of(document.meta)
        path = self.original_path(original.sha256) if original else None
        if original is None or path is None:
            raise DocumentError(f"document '{document.id}' has no original file to draw its pages from")
        count = self.page_count(document)
        if not 1 <= page <= count:
            raise DocumentError(f"page {page} is out of range: the document has {count} pages")
        if original.media_type == PDF:
            picture, scale = render_pdf_page(path, page, max_pixels)
        else:
            picture, scale = render_image_page(path.read_bytes(), page, max_pixels)
        return png_bytes(draw_boxes(picture, [box for box in boxes if box.page == page], scale)), scale
