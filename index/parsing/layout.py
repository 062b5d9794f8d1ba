"""Where the characters of a page are drawn, and the rectangles that cover a span of a document's text.

A page's layout is what its source says: for a PDF with a text layer, PDFium's characters and their boxes; for an
OCR'd page, Tesseract's words and theirs. The document's text is that text after normalisation (joined lines,
rejoined hyphens, expanded ligatures, NFC), so offsets into it do not index the layout directly. Both sides are
reduced to their skeleton, the lowercase letters and digits in order, which normalisation never changes, and a
span of the document's text is mapped through the skeleton onto layout characters, whose boxes are then merged
line by line into rectangles.

Coordinates are page units with the origin at the page's top left and y growing downwards: PDF points (1/72 in)
for PDFs, pixels for images. That is the order an image is drawn in, so a page image scaled by s shows the box
(x0, y0, x1, y1) at (s*x0, s*y0, s*x1, s*y1).
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from citeqa.index.text.normalize import LIGATURES


@dataclass(frozen=True)
class Box:
    """A rectangle on a 1-based page, in page units from the top left."""

    page: int
    x0: float
    y0: float
    x1: float
    y1: float

    def as_list(self) -> list[float]:
        return [self.page, self.x0, self.y0, self.x1, self.y1]


@dataclass(frozen=True)
class PageLayout:
    """A page's size and its characters in the source's order, each with its box (x0, y0, x1, y1); a character the
    source drew nowhere (a generated space or line break) has an empty box."""

    width: float
    height: float
    chars: Sequence[str]
    boxes: Sequence[tuple[float, float, float, float]]


def skeleton(chars: Iterable[str]) -> tuple[str, list[int]]:
    """The letters and digits of `chars`, lowercased and with accents and ligatures taken apart, and for each the
    index of the character it came from."""
    letters: list[str] = []
    origins: list[int] = []
    for index, char in enumerate(chars):
        for part in unicodedata.normalize("NFD", LIGATURES.get(char, char)).lower():
            if part.isalnum():
                letters.append(part)
                origins.append(index)
    return "".join(letters), origins


def layout_indices(layout: PageLayout, page_text: str, start: int, end: int) -> list[int]:
    """The layout characters that drew page_text[start:end], in layout order.

    When the page's text and its layout hold the same letters in the same order (most pages), the k-th letter of
    one is the k-th of the other. A page read column by column (pdf_layout.py) holds them in another order; then
    each word of the span is looked for in the layout, from where the previous one was found."""
    text_letters, text_origins = skeleton(page_text)
    layout_letters, layout_origins = skeleton(layout.chars)
    first, last = bisect_left(text_origins, start), bisect_left(text_origins, end)
    if first >= last:
        return []
    if text_letters == layout_letters:
        return layout_origins[first:last]
    # The longest run of the span's words found together is taken each time, so a short word ("the") is not
    # taken from the neighbouring column when it goes on with the words after it elsewhere.
    words = [letters for letters in (skeleton(word)[0] for word in page_text[start:end].split()) if letters]
    found: list[int] = []
    cursor, first_word = 0, 0
    while first_word < len(words):
        best: tuple[int, int] | None = None  # (where the run starts in the layout's letters, words in it)
        for last_word in range(first_word + 1, len(words) + 1):
            run = "".join(words[first_word:last_word])
            at = layout_letters.find(run, cursor)
            if at < 0:
                at = layout_letters.find(run)
            if at < 0:
                break
            best = (at, last_word)
        if best is None:
            first_word += 1  # a word the layout does not hold (it should not happen); the others still get boxes
            continue
        at, last_word = best
        length = len("".join(words[first_word:last_word]))
        found.extend(layout_origins[at : at + length])
        cursor, first_word = at + length, last_word
    return sorted(set(found))


# Two characters are on one line when the second's vertical middle lies within the first's rectangle; a line goes
# on to the right, so a jump back by more than this many character heights starts a new rectangle, and so does a
# gap wider than a word space by far (the gutter to another column).
_BACKWARDS_HEIGHTS = 1.0
_GAP_HEIGHTS = 1.5


def merge_boxes(page: int, boxes: Iterable[tuple[float, float, float, float]]) -> list[Box]:
    """Character boxes, in reading order, merged into one rectangle per run on a line."""
    merged: list[list[float]] = []
    for x0, y0, x1, y1 in boxes:
        if x1 <= x0 or y1 <= y0:
            continue  # drawn nowhere
        if merged:
            current = merged[-1]
            middle = (y0 + y1) / 2
            height = current[3] - current[1]
            on_line = current[1] <= middle <= current[3]
            if on_line and current[0] - _BACKWARDS_HEIGHTS * height <= x0 <= current[2] + _GAP_HEIGHTS * height:
                current[0], current[1] = min(current[0], x0), min(current[1], y0)
                current[2], current[3] = max(current[2], x1), max(current[3], y1)
                continue
        merged.append([x0, y0, x1, y1])
    return [Box(page, *(round(v, 2) for v in rect)) for rect in merged]


def span_boxes(layout: PageLayout, page: int, page_text: str, start: int, end: int) -> list[Box]:
    """The rectangles covering page_text[start:end] on `page`, whose text is `page_text`."""
    indices = layout_indices(layout, page_text, start, end)
    return merge_boxes(page, (layout.boxes[index] for index in indices))
