"""Pieces of text -> one normalised text with exact page or section offsets.

Each piece is normalised on its own and the pieces are then joined, counting lengths as they go: offsets are
computed after normalisation, so they index the final text exactly, and nothing is ever located by searching.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from citeqa.index.parsing.parsed import Section
from citeqa.index.text.documents import DocumentError
from citeqa.index.text.normalize import normalize_text

PARAGRAPH_BREAK = "\n\n"
LINE_BREAK = "\n"


def _too_long(limit: int) -> DocumentError:
    return DocumentError(f"extracted text is longer than the limit of {limit:,} characters")


def join_pages(pages: Iterable[str], max_chars: int) -> tuple[str, list[int]]:
    """The pages' text joined by blank lines, and the start offset of each page.

    A page without text gets the start of the next page with text (or the end of the text), so its span is empty
    and holds no separator. Raises DocumentError as soon as the text grows past `max_chars`.
    """
    parts: list[str] = []
    starts: list[int] = []
    length = 0
    pending: list[int] = []  # indexes of empty pages waiting for the next page with text
    for page in pages:
        piece = normalize_text(page)
        if not piece:
            pending.append(len(starts))
            starts.append(length)
            continue
        if parts:
            parts.append(PARAGRAPH_BREAK)
            length += len(PARAGRAPH_BREAK)
        for index in pending:
            starts[index] = length
        pending.clear()
        starts.append(length)
        parts.append(piece)
        length += len(piece)
        if length > max_chars:
            raise _too_long(max_chars)
    return "".join(parts), starts


@dataclass(frozen=True)
class Block:
    """One paragraph-like piece of a structured document. `heading_level` > 0 makes it a heading of that level;
    `joins_previous` puts it on the next line after the previous block (list items, table rows) instead of after a
    blank line."""

    text: str
    heading_level: int = 0
    joins_previous: bool = False


class TextAssembler:
    """Collects blocks in reading order; headings open sections whose path is the chain of enclosing headings."""

    def __init__(self, max_chars: int) -> None:
        self._max_chars = max_chars
        self._parts: list[str] = []
        self._length = 0
        self._content_end = 0  # end of the last block, before any separator
        self._headings: list[tuple[int, str]] = []  # (level, title) of the open headings, outermost first
        self._sections: list[Section] = []
        self._open: tuple[int, str] | None = None  # (start, path) of the section being filled
        self.first_heading: str | None = None

    def add(self, block: Block) -> None:
        piece = normalize_text(block.text)
        if not piece:
            return
        if self._parts:
            separator = LINE_BREAK if block.joins_previous else PARAGRAPH_BREAK
            self._parts.append(separator)
            self._length += len(separator)
        if block.heading_level > 0:
            self._open_section(block.heading_level, " ".join(piece.split()))
        self._parts.append(piece)
        self._length += len(piece)
        self._content_end = self._length
        if self._length > self._max_chars:
            raise _too_long(self._max_chars)

    def _open_section(self, level: int, title: str) -> None:
        self._close_section()
        while self._headings and self._headings[-1][0] >= level:
            self._headings.pop()
        self._headings.append((level, title))
        self._open = (self._length, " > ".join(heading for _, heading in self._headings))
        if self.first_heading is None:
            self.first_heading = title

    def _close_section(self) -> None:
        if self._open is not None:
            start, path = self._open
            # The section ends where its last block ends: the separator after it belongs to no section.
            self._sections.append(Section(start, self._content_end, path))
            self._open = None

    def finish(self) -> tuple[str, list[Section]]:
        self._close_section()
        return "".join(self._parts), self._sections
