"""Real documents in: bytes and a file name -> ParsedDocument (normalised text, title, media type, metadata, page
and section tables), or DocumentError with a reason a person can act on.

    parsed = parse_document(raw, "report.pdf")
    page_at(parsed, citation.start)              # 3
    section_at(parsed.sections, citation.start)  # "Results > Table 2"
"""

from __future__ import annotations

from collections.abc import Callable

from citeqa.index.parsing.docx import parse_docx
from citeqa.index.parsing.formats import IMAGE_FORMATS, Format, detect_format
from citeqa.index.parsing.html import parse_html
from citeqa.index.parsing.image import parse_image
from citeqa.index.parsing.markdown import parse_markdown
from citeqa.index.parsing.parsed import MIB, PageProgress, ParsedDocument, ParseLimits, Section, page_at, section_at
from citeqa.index.parsing.pdf import parse_pdf
from citeqa.index.parsing.plain import parse_text
from citeqa.index.text.documents import DocumentError

__all__ = [
    "DocumentError",
    "PageProgress",
    "ParseLimits",
    "ParsedDocument",
    "Section",
    "page_at",
    "parse_document",
    "section_at",
]

Parser = Callable[[bytes, str, ParseLimits], ParsedDocument]

PARSERS: dict[Format, Parser] = {
    Format.PDF: parse_pdf,
    Format.DOCX: parse_docx,
    Format.HTML: parse_html,
    Format.MARKDOWN: parse_markdown,
    Format.TEXT: parse_text,
}


# ParseLimits is frozen, so one shared default instance is safe.
def parse_document(
    raw: bytes,
    filename: str,
    limits: ParseLimits = ParseLimits(),  # noqa: B008
    on_page: PageProgress | None = None,
) -> ParsedDocument:
    """Parse one file. `filename` supplies the extension (checked against the content) and the fallback title.
    `on_page` hears of each page OCR reads (scanned PDF pages, images)."""
    if len(raw) > limits.max_file_bytes:
        raise DocumentError(f"file is {len(raw) / MIB:,.1f} MiB, over the limit of {limits.max_file_bytes / MIB:,.1f} MiB")
    if not raw.strip():
        raise DocumentError("empty file")
    fmt = detect_format(raw, filename)
    if fmt is Format.PDF:
        return parse_pdf(raw, filename, limits, on_page)
    if fmt in IMAGE_FORMATS:
        return parse_image(raw, filename, limits, on_page)
    return PARSERS[fmt](raw, filename, limits)
