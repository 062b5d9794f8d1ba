"""PDF: the text layer of every page, read by PDFium (pypdfium2), with a page offset table.

PDFium was chosen over pypdf on measurement (docs/formats.md). Text comes in the order of the page's content
stream, which is the reading order for what word processors and LaTeX write; a page whose stream interleaves two
columns line by line is put back in column order (pdf_layout.py).
PDFium marks a hyphen it found at the end of a line; it is turned back into "-" + line break here, so the one
hyphenation rule of normalize.py decides whether the word is rejoined.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from citeqa.index.parsing.assemble import join_pages
from citeqa.index.parsing.formats import Format, media_type
from citeqa.index.parsing.parsed import PageProgress, ParsedDocument, ParseLimits
from citeqa.index.parsing.pdf_layout import Line, column_order
from citeqa.index.parsing.pdf_ocr import read_scanned_pages
from citeqa.index.text.documents import DocumentError, clean_title, title_of
from citeqa.index.text.normalize import normalize_text

# PDFium is not thread-safe; a service may parse in several threads.
PDFIUM_LOCK = threading.Lock()
# PDFium's markers for a hyphen at a line end (get_text_range gives U+FFFE, bounded extraction gives U+0002).
_LINE_END_HYPHENS = ("\ufffe", "\x02")
# Readers require the end-of-file marker within the last kilobyte; without it the file was cut short.
_EOF_WINDOW = 1024
# Values some writers put in every file; they say nothing about this one.
_PLACEHOLDERS = frozenset({"", "untitled", "unspecified", "anonymous", "unknown", "none"})
_METADATA_KEYS = {
    "Title": "title",
    "Author": "author",
    "Subject": "subject",
    "Keywords": "keywords",
    "Creator": "creator",
    "Producer": "producer",
    "CreationDate": "created",
    "ModDate": "modified",
}


def open_pdf(raw: bytes | Path) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(raw)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
            raise DocumentError("encrypted PDF (password-protected)") from exc
        raise DocumentError(f"corrupt or truncated PDF: {exc}") from exc


def _reading_order_text(textpage: pdfium.PdfTextPage) -> str:
    """The page's text in stream order, or column by column when the stream interleaves columns (pdf_layout.py)."""
    lines = [Line(*textpage.get_rect(index)) for index in range(textpage.count_rects())]
    ordered = column_order(lines)
    if ordered is None:
        # PDFium drops the line break after a hyphen it marks; restore both.
        return _resolve_hyphens(textpage.get_text_range(), "-\n")
    texts = (textpage.get_text_bounded(line.left, line.bottom, line.right, line.top) for line in ordered)
    return "\n".join(_resolve_hyphens(text.rstrip("\r\n"), "-") for text in texts)


def _resolve_hyphens(text: str, replacement: str) -> str:
    for marker in _LINE_END_HYPHENS:
        text = text.replace(marker, replacement)
    return text


def _page_text(pdf: pdfium.PdfDocument, index: int) -> str:
    page = pdf[index]
    try:
        textpage = page.get_textpage()
        try:
            text = _reading_order_text(textpage)
        finally:
            textpage.close()
    finally:
        page.close()
    return text


# A line break inside a sentence: the line does not end a sentence, clause or hyphenated word, and goes on on the
# next line. PDFs break lines wherever the column ends; left in, such breaks would cut sentences (and so quotes) at
# every line.
_SOFT_BREAK = re.compile(r"(?<=[^\s.!?:;\-\u2010])\n(?=[^\W\d_])")
# A wrapped line fills its column: a heading, a table row or the last line of a paragraph is shorter than the
# page's long lines (the 90th percentile of line lengths).
_FULL_LINE = 0.6
# The next line may also go on with a capital (a name, "I", an acronym), but so do titles, table rows and list
# items: that takes a line that fills its column more surely, ends in a lowercase letter or a comma, and has the
# words of running text.
_SURELY_FULL_LINE = 0.85
_RUNNING_TEXT_WORDS = 8


def unwrap_lines(text: str) -> str:
    """Join the lines of a normalised page that were broken only because the column ended (see _SOFT_BREAK)."""
    lengths = sorted(len(line) for line in text.split("\n") if line)
    if not lengths:
        return text
    long_line = lengths[min(len(lengths) - 1, int(0.9 * len(lengths)))]

    def join(match: re.Match[str]) -> str:
        line = text[text.rfind("\n", 0, match.start()) + 1 : match.start()]
        if text[match.end()].islower():
            return " " if len(line) >= _FULL_LINE * long_line else "\n"
        surely_wrapped = (
            len(line) >= _SURELY_FULL_LINE * long_line
            and (line[-1].islower() or line[-1] == ",")
            and len(line.split()) >= _RUNNING_TEXT_WORDS
        )
        return " " if surely_wrapped else "\n"

    return _SOFT_BREAK.sub(join, text)


def _pages(pdf: pdfium.PdfDocument, count: int) -> Iterator[str]:
    for index in range(count):
        try:
            # Normalised first, so the hyphen rule (normalize.py) sees its line breaks before any is joined.
            yield unwrap_lines(normalize_text(_page_text(pdf, index)))
        except pdfium.PdfiumError as exc:
            raise DocumentError(f"corrupt or truncated PDF: page {index + 1}: {exc}") from exc


def _metadata(pdf: pdfium.PdfDocument) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for key, value in pdf.get_metadata_dict(skip_empty=True).items():
        name = _METADATA_KEYS.get(key)
        cleaned = " ".join(str(value).split())
        if name and cleaned.lower() not in _PLACEHOLDERS:
            metadata[name] = cleaned
    return metadata


def _has_pictures(pdf: pdfium.PdfDocument, index: int) -> bool:
    """Whether the page draws any image: a page without text that draws none is blank, and OCR would find nothing."""
    page = pdf[index]
    try:
        return any(True for _ in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=3))
    finally:
        page.close()


def parse_pdf(raw: bytes, filename: str, limits: ParseLimits, on_page: PageProgress | None = None) -> ParsedDocument:
    if b"%%EOF" not in raw[-_EOF_WINDOW:]:
        raise DocumentError("corrupt or truncated PDF: no end-of-file marker")
    with PDFIUM_LOCK:
        pdf = open_pdf(raw)
        try:
            count = len(pdf)
            if count == 0:
                raise DocumentError("corrupt or truncated PDF: no pages")
            if count > limits.max_pages:
                raise DocumentError(f"PDF has {count:,} pages, over the limit of {limits.max_pages:,}")
            texts = list(_pages(pdf, count))
            # Pages without a text layer that draw a picture: scans, read by OCR below (the lock is let go meanwhile).
            scanned = [index for index, text in enumerate(texts) if not text and _has_pictures(pdf, index)]
            metadata = _metadata(pdf)
        finally:
            pdf.close()
    read = read_scanned_pages(raw, scanned, limits.ocr, PDFIUM_LOCK, on_page, required=not any(texts)) if scanned else {}
    read = {page: found for page, found in read.items() if found[1].words}  # a picture of no words adds nothing
    for page, (page_text, _) in read.items():
        texts[page - 1] = unwrap_lines(normalize_text(page_text))
    text, pages = join_pages(texts, limits.max_text_chars)
    if not text:
        raise DocumentError("no text: no text layer, and OCR found no words" if scanned else "no extractable text")
    metadata["pages"] = str(count)
    if read:
        metadata["ocr"] = limits.ocr.language
    title = clean_title(metadata.get("title")) or title_of(text, filename)
    return ParsedDocument(
        text=text,
        title=title,
        media_type=media_type(Format.PDF),
        metadata=metadata,
        pages=pages,
        ocr={page: words for page, (_, words) in read.items()} or None,
        ocr_language=limits.ocr.language if read else None,
    )
