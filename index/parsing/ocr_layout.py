"""OCR'd pages' words and boxes, kept in a document's meta so each character of its text maps to a box.

    meta["ocr"] = {"language": "eng", "pages": {"3": {"size": [2550, 3300], "words": [["Glacier", 310, 402, 498, 447], ...]}}}

Keys are 1-based page numbers (JSON keys are strings); sizes and boxes are pixels of the scanned picture from its
top left. A PDF page that had a text layer has no entry: its boxes are read from the original (pdf_boxes.py).
A word's box is shared out among its letters in proportion, so a quote that starts inside a word is highlighted
from about where it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from citeqa.index.parsing.layout import PageLayout

NO_BOX = (0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class OcrWord:
    text: str
    x0: int
    y0: int
    x1: int
    y1: int

    def as_list(self) -> list[Any]:
        return [self.text, self.x0, self.y0, self.x1, self.y1]


@dataclass(frozen=True)
class OcrPage:
    """One page as Tesseract read it: its size in pixels and its words in reading order, line breaks as given."""

    width: int
    height: int
    words: list[OcrWord]

    def as_dict(self) -> dict[str, Any]:
        return {"size": [self.width, self.height], "words": [word.as_list() for word in self.words]}


def layout_of(width: float, height: float, words: list[list[Any]]) -> PageLayout:
    """The PageLayout of stored words: each word's letters with a share of its box, a boxless space between words."""
    chars: list[str] = []
    boxes: list[tuple[float, float, float, float]] = []
    for text, x0, y0, x1, y1 in words:
        step = (x1 - x0) / max(len(text), 1)
        for index, char in enumerate(text):
            chars.append(char)
            boxes.append((x0 + index * step, float(y0), x0 + (index + 1) * step, float(y1)))
        chars.append(" ")
        boxes.append(NO_BOX)
    return PageLayout(width=float(width), height=float(height), chars=chars, boxes=boxes)


def stored_layout(meta: dict[str, Any], page: int) -> PageLayout | None:
    """The layout of OCR'd page `page` kept in `meta`, or None when the page was not OCR'd."""
    ocr = meta.get("ocr")
    if not isinstance(ocr, dict):
        return None
    entry = (ocr.get("pages") or {}).get(str(page))
    if not isinstance(entry, dict):
        return None
    try:
        width, height = entry["size"]
        return layout_of(width, height, entry["words"])
    except (KeyError, TypeError, ValueError):
        return None
