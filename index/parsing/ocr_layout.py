"""OCR'd pages' words and boxes, kept in a document's meta so each character of its text maps to a box.

    meta["ocr"] = {"language": "eng",
                   "pages": {"3": {"size": [2550, 3300], "words": [["Glacier", 310, 402, 498, 447], ...]}}}

Keys are 1-based page numbers (JSON keys are strings); sizes and boxes are page units from the top left: pixels of
an uploaded image, points of a scanned PDF page. A PDF page that had a text layer has no entry: its boxes are read
from the original (pdf_boxes.py). A word's box is shared out among its letters in proportion, so a quote that
starts inside a word is highlighted from about where it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from citeqa.index.parsing.layout import PageLayout

NO_BOX = (0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True, kw_only=True)
class OcrSettings:
    """How pictures are read: the language(s) (Tesseract's names, "eng", "eng+deu"), the resolution a PDF page is
    rendered at, and the limits of one file: pages read by OCR, and seconds spent on them all."""

    language: str = "eng"
    dpi: int = 300
    max_pages: int = 200
    seconds_per_file: float = 600.0
    enabled: bool = True


@dataclass(frozen=True)
class OcrWord:
    text: str
    x0: float
    y0: float
    x1: float
    y1: float

    def as_list(self) -> list[Any]:
        return [self.text, self.x0, self.y0, self.x1, self.y1]


@dataclass(frozen=True)
class OcrPage:
    """One page as OCR read it: its size and its words in reading order, in page units (an image's pixels; a PDF
    page's points, so they are drawn like its text layer's)."""

    width: float
    height: float
    words: list[OcrWord]

    def scaled(self, factor: float) -> OcrPage:
        """The same page in other units: every coordinate times `factor`, rounded to a hundredth."""

        def at(value: float) -> float:
            return round(value * factor, 2)

        words = [OcrWord(w.text, at(w.x0), at(w.y0), at(w.x1), at(w.y1)) for w in self.words]
        return OcrPage(width=at(self.width), height=at(self.height), words=words)

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
