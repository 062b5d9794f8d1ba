"""What a parser returns: the document's text (normalised once) with its page and section tables, and the limits
every parser enforces. Titles follow the one rule in index/text/documents.py (title_of, clean_title)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

from citeqa.index.parsing.ocr_layout import OcrPage, OcrSettings

MIB = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class ParseLimits:
    """Resource ceilings for one file; a file over any of them is refused with the limit named."""

    max_file_bytes: int = 50 * MIB  # checked before any parsing
    max_unpacked_bytes: int = 200 * MIB  # DOCX: declared and actually unpacked bytes of the zip
    max_pages: int = 2000  # PDF
    max_text_chars: int = 5_000_000  # extracted text, checked as it grows
    max_image_pixels: int = 60_000_000  # an image's (or a frame's) width x height, checked before it is decoded
    ocr: OcrSettings = field(default_factory=OcrSettings)  # scanned pages and images: language, page and time limits


# Told (pages done, pages to read) as OCR reads a file's pages, so a job can show its progress page by page.
PageProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class Section:
    """Characters [start, end) of the text fall under the heading path `path` ("Results > Table 2")."""

    start: int
    end: int
    path: str


@dataclass(frozen=True)
class ParsedDocument:
    """A parsed file. Every offset (pages, sections, and later citations) indexes `text` exactly.

    pages: the start offset of each page, so page N (1-based) spans [pages[N-1], pages[N]) and the last page runs to
    the end of the text; None for formats without pages. A page with no text has an empty span.
    sections: heading spans in text order, not overlapping; None for formats without headings.
    ocr: for the pages that were pictures, what OCR read on them (words and their boxes); None when none was.
    """

    text: str
    title: str
    media_type: str
    metadata: dict[str, str] = field(default_factory=dict)
    pages: list[int] | None = None
    sections: list[Section] | None = None
    ocr: dict[int, OcrPage] | None = None  # the words and boxes of the pages read by OCR, by 1-based page
    ocr_language: str | None = None


def page_at(parsed_or_pages: ParsedDocument | list[int] | None, offset: int) -> int | None:
    """The 1-based page holding the character at `offset`; None when there are no pages or the offset lies outside
    the text. An empty page never holds a character, so it is never the answer."""
    if isinstance(parsed_or_pages, ParsedDocument):
        if not 0 <= offset < len(parsed_or_pages.text):
            return None
        pages = parsed_or_pages.pages
    else:
        pages = parsed_or_pages
    if not pages or offset < pages[0]:
        return None
    return bisect_right(pages, offset)


def section_at(sections: list[Section] | None, offset: int) -> str | None:
    """The heading path of the section holding `offset`, or None (text before the first heading, or no headings)."""
    if not sections:
        return None
    index = bisect_right(sections, offset, key=lambda section: section.start) - 1
    if index < 0 or offset >= sections[index].end:
        return None
    return sections[index].path
