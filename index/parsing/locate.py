"""A document's meta (what its original was, its page and section tables) and where a span of its text lies in
that original: pages for PDFs, the heading path for Word, HTML and Markdown.

The tables are stored with the document in its segment as JSON (`Document.meta`):

    {"media_type": "application/pdf",
     "pages": [0, 1841, 3920],                      start offset of each page (page N starts at pages[N-1])
     "sections": [[0, 812, "Methods"], ...],        [start, end, heading path], in text order
     "metadata": {"author": "..."},                 what the file says about itself
     "ocr": {"language": "eng", "pages": {...}},    pages read by OCR: their words and boxes (ocr_layout.py)
     "original": {"sha256": "...", "filename": "report.pdf", "media_type": "application/pdf", "bytes": 48213}}

Every key is optional: a document added as JSON text has none of them.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from citeqa.index.parsing.parsed import ParsedDocument, page_at


@dataclass(frozen=True)
class Original:
    """The file a document was parsed from, as stored under `<collection>/files/<sha256>`."""

    sha256: str
    filename: str
    media_type: str
    bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "filename": self.filename, "media_type": self.media_type, "bytes": self.bytes}


@dataclass(frozen=True)
class Location:
    """Where characters [start, end) of a document's text are in its original."""

    page_start: int | None = None  # 1-based, PDFs only
    page_end: int | None = None
    section: str | None = None  # "Results > Table 2"; None before the first heading or for formats without headings


def meta_of(parsed: ParsedDocument, original: Original | None) -> dict[str, Any]:
    """The meta stored with a document parsed from a file."""
    meta: dict[str, Any] = {"media_type": parsed.media_type, "metadata": dict(parsed.metadata)}
    if parsed.pages is not None:
        meta["pages"] = list(parsed.pages)
    if parsed.sections is not None:
        meta["sections"] = [[s.start, s.end, s.path] for s in parsed.sections]
    if parsed.ocr:
        pages = {str(page): read.as_dict() for page, read in sorted(parsed.ocr.items())}
        meta["ocr"] = {"language": parsed.ocr_language, "pages": pages}
    if original is not None:
        meta["original"] = original.as_dict()
    return meta


def original_of(meta: dict[str, Any]) -> Original | None:
    stored = meta.get("original")
    if not isinstance(stored, dict):
        return None
    try:
        return Original(str(stored["sha256"]), str(stored["filename"]), str(stored["media_type"]), int(stored["bytes"]))
    except (KeyError, TypeError, ValueError):
        return None


def section_of(sections: list[list[Any]] | None, offset: int) -> str | None:
    """The heading path of the stored section holding `offset` (sections as stored: [start, end, path])."""
    if not sections:
        return None
    index = bisect_right(sections, offset, key=lambda section: section[0]) - 1
    if index < 0 or offset >= sections[index][1]:
        return None
    return str(sections[index][2])


def locate(meta: dict[str, Any], start: int, end: int) -> Location:
    """Where [start, end) lies: the pages of its first and last characters, and the section of its first."""
    pages = meta.get("pages")
    last = max(start, end - 1)
    return Location(
        page_start=page_at(pages, start) if pages else None,
        page_end=page_at(pages, last) if pages else None,
        section=section_of(meta.get("sections"), start),
    )
