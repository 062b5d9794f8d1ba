"""Measures OCR on scans made here (tests/scans.py) and prints the figures behind the README's OCR section and
docs/formats.md: characters read correctly at 200 and 300 dpi, turned a little and with noise, and pages per second
of a scanned PDF through the parser citeqa uses; and, when tesserocr is installed beside it, the same page through
the in-process binding, which citeqa does not use (the comparison behind index/parsing/ocr.py).

    python -m bench.ocr            # from the repository root
"""

from __future__ import annotations

import importlib.util
import os
import time

from citeqa.index.parsing.dispatch import parse_document
from tests import scans
from tests.index.test_ocr import accuracy

# Full pages: 9 paragraphs of 34 known words each (about 1,900 letters and 36 lines, what fits a letter page at
# 12 pt with the paragraph gaps), in orders no language model could guess.
PAGE_COUNT = 5
PARAGRAPHS = 9
WORDS = 34


def page_lines(page: int) -> list[str]:
    return [scans.shuffled_words(1000 * page + paragraph, WORDS) for paragraph in range(PARAGRAPHS)]


def main() -> None:
    truths = [page_lines(page) for page in range(PAGE_COUNT)]
    typed = scans.text_pdf(truths)
    print("| dpi | skew | noise | characters | read correctly |")
    print("|---|---|---|---|---|")
    for dpi, skew in ((300, 0.8), (300, -1.5), (200, 0.8), (200, -1.5)):
        got = want = 0.0
        for page in range(PAGE_COUNT):
            scan = scans.scanned_page(typed, page=page, dpi=dpi, skew=skew, noise=0.004, seed=page)
            parsed = parse_document(scans.image_bytes(scan, "PNG", dpi), "scan.png")
            truth = " ".join(truths[page])
            size = len("".join(truth.split()))
            got += accuracy(truth, parsed.text) * size
            want += size
        print(f"| {dpi} | {skew}° | 0.4% | {int(want):,} | {got / want:.4f} |")

    scans_300 = [scans.scanned_page(typed, page=page, dpi=300, skew=0.8, seed=page) for page in range(PAGE_COUNT)]
    pdf = scans.scanned_pdf_of(scans_300, dpi=300)
    start = time.perf_counter()
    parse_document(pdf, "scanned.pdf")
    seconds = time.perf_counter() - start
    print(f"\nscanned PDF, {PAGE_COUNT} dense pages at 300 dpi: {seconds:.1f} s, {PAGE_COUNT / seconds:.2f} pages/s")

    if importlib.util.find_spec("tesserocr") is not None:
        import tesserocr

        os.environ.setdefault("OMP_THREAD_LIMIT", "1")
        start = time.perf_counter()
        with tesserocr.PyTessBaseAPI(lang="eng", path="/usr/share/tesseract-ocr/5/tessdata") as api:
            for scan in scans_300:
                api.SetImage(scan)
                api.GetUTF8Text()
        seconds = time.perf_counter() - start
        print(f"tesserocr (not used), the same {PAGE_COUNT} pictures: {seconds:.1f} s, {PAGE_COUNT / seconds:.2f} pages/s")


if __name__ == "__main__":
    main()
