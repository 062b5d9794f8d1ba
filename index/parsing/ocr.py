"""OCR: a page picture to words with boxes and the page's text, by Tesseract from the system's packages.

Tesseract runs as its own process (pytesseract), one page at a time, which is what bounds it: a page that takes
longer than what is left of the file's time is killed, and a crash or a runaway allocation inside Tesseract ends
that process, not the server. Measured against tesserocr (the in-process binding) on a dense 300 dpi page:
2.1 s against 1.7 s, the difference being Tesseract's start and model load on each page (docs/formats.md).
One thread per Tesseract process (OMP_THREAD_LIMIT=1): on this 2-core machine its OpenMP threads made a page
2.7 times slower, fighting each other and the server for the cores.

The text of a page is its words in Tesseract's reading order: a space between the words of a line, a line break
between lines, a blank line between paragraphs; the caller normalises it like any page. The words, with their
boxes in the picture's pixels, are kept (ocr_layout.py), so every character of the text maps to a box.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from functools import lru_cache

import pytesseract
from PIL import Image

from citeqa.index.parsing.ocr_layout import OcrPage, OcrSettings, OcrWord
from citeqa.index.text.documents import DocumentError

# Tesseract's page segmentation "fully automatic" (3): columns and paragraphs found on the page.
_CONFIG = "--psm 3"


@lru_cache(maxsize=1)
def installed_languages() -> frozenset[str]:
    """The languages whose data is installed for the system's Tesseract (empty when Tesseract is not installed)."""
    if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
        return frozenset()
    try:
        return frozenset(pytesseract.get_languages(config=""))
    except (pytesseract.TesseractError, OSError, subprocess.SubprocessError):
        return frozenset()


def check_ready(settings: OcrSettings) -> None:
    """DocumentError saying what to install when Tesseract or a language's data is missing."""
    if not settings.enabled:
        raise DocumentError("no extractable text, and OCR is turned off (CITEQA_OCR_ENABLED)")
    installed = installed_languages()
    if not installed:
        raise DocumentError("no extractable text, and OCR needs Tesseract: install the tesseract-ocr package")
    missing = [name for name in settings.language.split("+") if name not in installed]
    if missing:
        packages = " ".join(f"tesseract-ocr-{name}" for name in missing)
        raise DocumentError(f"OCR language {'+'.join(missing)} is not installed (install {packages})")


class Deadline:
    """The time left for one file's OCR."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds

    def left(self) -> float:
        return self.ends - time.monotonic()

    def expired_error(self, page: int, total: int) -> DocumentError:
        return DocumentError(f"OCR took longer than the limit of {self.seconds:,.0f} s per file (at page {page} of {total})")


def read_page(picture: Image.Image, settings: OcrSettings, deadline: Deadline, page: int, total: int) -> tuple[str, OcrPage]:
    """The text of one page picture and its words with their boxes."""
    left = deadline.left()
    if left <= 0:
        raise deadline.expired_error(page, total)
    # Tesseract's OpenMP threads: see the module's docstring. The child inherits the environment.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    try:
        data = pytesseract.image_to_data(
            picture, lang=settings.language, config=_CONFIG, output_type=pytesseract.Output.DICT, timeout=max(left, 1.0)
        )
    except RuntimeError as exc:  # pytesseract's own timeout: the process was killed
        if "timeout" in str(exc).lower():
            raise deadline.expired_error(page, total) from exc
        raise DocumentError(f"OCR failed on page {page}: {exc}") from exc
    except (pytesseract.TesseractError, OSError, subprocess.SubprocessError) as exc:
        raise DocumentError(f"OCR failed on page {page}: {exc}") from exc
    return _assemble(data, picture.width, picture.height)


def _assemble(data: dict[str, list], width: int, height: int) -> tuple[str, OcrPage]:
    """Tesseract's word table as page text and words: words of one line joined by spaces, lines by line breaks,
    paragraphs and blocks by blank lines."""
    parts: list[str] = []
    words: list[OcrWord] = []
    previous: tuple[int, int, int] | None = None
    for index, text in enumerate(data["text"]):
        word = str(text).strip()
        if not word or int(data["level"][index]) != 5:  # level 5 is a word; the rest are the blocks holding them
            continue
        block, paragraph, line = int(data["block_num"][index]), int(data["par_num"][index]), int(data["line_num"][index])
        if previous is not None:
            if (block, paragraph) != previous[:2]:
                parts.append("\n\n")
            elif line != previous[2]:
                parts.append("\n")
            else:
                parts.append(" ")
        previous = (block, paragraph, line)
        parts.append(word)
        x, y = int(data["left"][index]), int(data["top"][index])
        words.append(OcrWord(word, x, y, x + int(data["width"][index]), y + int(data["height"][index])))
    return "".join(parts), OcrPage(width=width, height=height, words=words)
