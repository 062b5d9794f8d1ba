"""Reading order for a PDF page whose content stream interleaves two text columns.

Most writers (word processors, LaTeX) emit a column to its end before the next, and PDFium's text, which follows
the content stream, is then in reading order already. Some emit line by line across the page: left line 1, right
line 1, left line 2 ... and the stream order mixes the columns into nonsense. This module notices that case and
only that case: it looks for a vertical gutter that no line crosses, with text-like lines on both sides (a line
fills most of its column; table cells do not), that the stream order crosses back and forth. Then the page is
read band by band (a band ends at a line spanning both columns, such as a title or a figure caption): the left
column top to bottom, then the right. Anything else keeps the stream order, so tables keep their rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

# A gutter narrower than this is the space between two words of one line.
MIN_GUTTER = 8.0
# The gutter of a two-column page lies in the middle part of the text, not at its edges.
GUTTER_ZONE = (0.25, 0.75)
MIN_LINES_PER_COLUMN = 3
# Running text fills most of its column's width; the cells of a table mostly do not.
MIN_FILL = 0.5
# Stream order that switches columns this often is interleaving them (one switch is a column-by-column page).
MIN_SWITCHES = 3


@dataclass(frozen=True)
class Line:
    """A run of text on one line of the page, in PDF coordinates (y grows upwards). `text` is filled in only
    for the lines of a page that gets reordered: the decision needs the geometry alone."""

    left: float
    bottom: float
    right: float
    top: float
    text: str = ""

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def middle(self) -> float:
        return (self.bottom + self.top) / 2


def _gutter(lines: Sequence[Line]) -> tuple[float, float] | None:
    """The widest gap in the horizontal coverage of the lines that lies in the middle part of the text."""
    text_left = min(line.left for line in lines)
    text_right = max(line.right for line in lines)
    extent = text_right - text_left
    # Lines spanning most of the text (titles, captions) cross any gutter; they are placed, not measured.
    narrow = sorted((line.left, line.right) for line in lines if line.width < 0.6 * extent)
    best: tuple[float, float] | None = None
    reach = None
    for left, right in narrow:
        if reach is not None and left - reach >= MIN_GUTTER:
            middle = (reach + left) / 2
            inside = text_left + GUTTER_ZONE[0] * extent <= middle <= text_left + GUTTER_ZONE[1] * extent
            if inside and (best is None or left - reach > best[1] - best[0]):
                best = (reach, left)
        reach = right if reach is None else max(reach, right)
    return best


def _fills_its_column(side: Sequence[Line]) -> bool:
    width = max(line.right for line in side) - min(line.left for line in side)
    return width > 0 and median(line.width for line in side) >= MIN_FILL * width


def _read_down(lines: Sequence[Line]) -> list[Line]:
    return sorted(lines, key=lambda line: (-line.top, line.left))


def column_order(lines: Sequence[Line]) -> list[Line] | None:
    """The lines in reading order when the stream interleaves two columns; None when stream order should stand."""
    if len(lines) < 2 * MIN_LINES_PER_COLUMN:
        return None
    gutter = _gutter(lines)
    if gutter is None:
        return None
    sides = ["left" if line.right <= gutter[0] else "right" if line.left >= gutter[1] else "span" for line in lines]
    left = [line for line, side in zip(lines, sides, strict=True) if side == "left"]
    right = [line for line, side in zip(lines, sides, strict=True) if side == "right"]
    if min(len(left), len(right)) < MIN_LINES_PER_COLUMN or not (_fills_its_column(left) and _fills_its_column(right)):
        return None
    columns = [side for side in sides if side != "span"]
    if sum(a != b for a, b in itertools.pairwise(columns)) < MIN_SWITCHES:
        return None
    ordered: list[Line] = []
    spans = sorted((line for line, side in zip(lines, sides, strict=True) if side == "span"), key=lambda s: -s.middle)
    upper = float("inf")
    for span in [*spans, None]:
        limit = span.middle if span is not None else float("-inf")
        ordered += _read_down([line for line in left if limit < line.middle <= upper])
        ordered += _read_down([line for line in right if limit < line.middle <= upper])
        if span is not None:
            ordered.append(span)
        upper = limit
    return ordered
