"""OCR with the system's Tesseract on scans made here (tests/scans.py): characters read correctly, images of each
kind and scanned or mixed PDFs parsed with a page table and word boxes, the boxes of a quote on its page, page
progress, and the limits (pages, time, language) failing a file with its reason."""

from __future__ import annotations

import hashlib
import io
from difflib import SequenceMatcher
from pathlib import Path

import pypdfium2 as pdfium
import pytesseract
import pytest
from PIL import Image

from citeqa.index.parsing.dispatch import parse_document
from citeqa.index.parsing.layout import skeleton
from citeqa.index.parsing.locate import Original, meta_of
from citeqa.index.parsing.ocr_layout import OcrSettings
from citeqa.index.parsing.page_view import PageViews
from citeqa.index.parsing.parsed import ParseLimits
from citeqa.index.text.documents import Document, DocumentError, content_hash
from tests import files, scans

# Fifteen lines of words in no order a language model could guess, so what is measured is reading, not guessing.
TRUTH_LINES = [scans.shuffled_words(seed, 11) for seed in range(15)]


def accuracy(truth: str, read: str) -> float:
    """The share of the true characters (spaces apart) that OCR read correctly, in order (1 - edit distance share,
    from the longest matching blocks)."""
    want, got = "".join(truth.split()), "".join(read.split())
    matched = sum(block.size for block in SequenceMatcher(None, want, got, autojunk=False).get_matching_blocks())
    return matched / len(want)


def document_of(raw: bytes, name: str, tmp_path: Path, limits: ParseLimits = ParseLimits()) -> tuple[Document, PageViews]:  # noqa: B008
    parsed = parse_document(raw, name, limits)
    stored = tmp_path / name
    stored.write_bytes(raw)
    original = Original(hashlib.sha256(raw).hexdigest(), name, parsed.media_type, len(raw))
    meta = meta_of(parsed, original)
    document = Document(name, parsed.title, name, parsed.text, content_hash(parsed.text), meta)
    return document, PageViews(lambda _: stored)


@pytest.mark.parametrize(("dpi", "skew"), [(300, 0.8), (200, -0.6)])
def test_characters_read_correctly_on_a_skewed_noisy_scan(dpi: int, skew: float) -> None:
    scan = scans.scanned_page(scans.text_pdf([TRUTH_LINES]), dpi=dpi, skew=skew, noise=0.004)
    parsed = parse_document(scans.image_bytes(scan, "PNG", dpi), "scan.png")
    assert accuracy(" ".join(TRUTH_LINES), parsed.text) >= 0.98


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "TIFF"])
def test_an_image_becomes_a_cited_page_whose_quote_has_boxes(kind: str, tmp_path: Path) -> None:
    scan = scans.scanned_page(scans.text_pdf([scans.SCAN_PARAGRAPHS]))
    raw = scans.image_bytes(scan, kind)
    document, views = document_of(raw, f"scan.{kind.lower()}", tmp_path)
    assert document.meta["media_type"] == f"image/{kind.lower()}"
    assert document.meta["pages"] == [0] and document.meta["ocr"]["language"] == "eng"
    start = document.text.index(scans.SCAN_QUOTE)
    boxes = views.boxes(document, start, start + len(scans.SCAN_QUOTE))
    assert boxes and {box.page for box in boxes} == {1}
    if kind == "PNG":  # the text under the boxes, read again from the picture itself, is the quote
        under = " ".join(
            pytesseract.image_to_string(scan.crop((b.x0 - 4, b.y0 - 4, b.x1 + 4, b.y1 + 4)), config="--psm 7") for b in boxes
        )
        assert accuracy(scans.SCAN_QUOTE, under) >= 0.95
        # and nothing of the paragraphs before or after the quote is inside them
        assert "northern" not in under and "Salmon" not in under


def test_a_multi_page_tiff_is_read_page_by_page_with_progress(tmp_path: Path) -> None:
    pages = [scans.scanned_page(scans.text_pdf([[paragraph]]), dpi=200) for paragraph in scans.SCAN_PARAGRAPHS[:2]]
    out = io.BytesIO()
    pages[0].save(out, "TIFF", save_all=True, append_images=pages[1:])
    heard: list[tuple[int, int]] = []
    parsed = parse_document(out.getvalue(), "two.tiff", ParseLimits(), lambda done, total: heard.append((done, total)))
    assert heard == [(1, 2), (2, 2)]
    assert len(parsed.pages or []) == 2 and parsed.pages[1] > 0
    second = parsed.text[parsed.pages[1] :]
    assert "fish pass" in second and "fish pass" not in parsed.text[: parsed.pages[1]]
    assert "northern weir" in parsed.text[: parsed.pages[1]]


def test_a_mixed_pdf_reads_its_text_layer_and_its_scanned_page(tmp_path: Path) -> None:
    typed = scans.text_pdf([[files.PAGE_THREE_SENTENCE]])
    scan = scans.scanned_page(scans.text_pdf([scans.SCAN_PARAGRAPHS]), dpi=300)
    mixed = _concatenate([typed, scans.scanned_pdf_of([scan])])
    document, views = document_of(mixed, "mixed.pdf", tmp_path)
    pages = document.meta["pages"]
    assert len(pages) == 2
    assert document.text[: pages[1]].strip() == files.PAGE_THREE_SENTENCE
    assert scans.SCAN_QUOTE in document.text[pages[1] :]
    assert list(document.meta["ocr"]["pages"]) == ["2"]  # page 1 had a text layer
    typed_start = document.text.index(files.PAGE_THREE_SENTENCE)
    [typed_box] = views.boxes(document, typed_start, typed_start + len(files.PAGE_THREE_SENTENCE))
    start = document.text.index(scans.SCAN_QUOTE)
    boxes = views.boxes(document, start, start + len(scans.SCAN_QUOTE))
    assert typed_box.page == 1 and {box.page for box in boxes} == {2}
    # the scan's boxes are in points like the text layer's: the quote's lines lie within a letter page's width
    assert all(0 < box.x0 < box.x1 < 640 and 0 < box.y0 < box.y1 < 800 for box in boxes)
    png, scale = views.image(document, 2, boxes)
    drawn = Image.open(io.BytesIO(png)).convert("RGB")
    box = boxes[0]
    row = [drawn.getpixel((int(x * scale), int((box.y0 + box.y1) / 2 * scale))) for x in range(int(box.x0), int(box.x1))]
    assert sum(1 for r, g, b in row if r > 200 and g > 150 and b < 170) > len(row) // 3  # highlighted


def _concatenate(pdfs: list[bytes]) -> bytes:
    target = pdfium.PdfDocument.new()
    for raw in pdfs:
        target.import_pages(pdfium.PdfDocument(raw))
    out = io.BytesIO()
    target.save(out)
    return out.getvalue()


def test_the_page_limit_fails_a_long_scan_before_reading_it() -> None:
    scan = scans.scanned_page(scans.text_pdf([["A short page."]]), dpi=100)
    pdf = scans.scanned_pdf_of([scan] * 3, dpi=100)
    limits = ParseLimits(ocr=OcrSettings(max_pages=2))
    with pytest.raises(DocumentError, match="3 pages have no text layer and need OCR, over the limit of 2"):
        parse_document(pdf, "long.pdf", limits)


def test_the_time_limit_fails_a_file_saying_so() -> None:
    scan = scans.scanned_page(scans.text_pdf([scans.SCAN_PARAGRAPHS]), dpi=300)
    limits = ParseLimits(ocr=OcrSettings(seconds_per_file=0.000001))
    with pytest.raises(DocumentError, match="OCR took longer than the limit"):
        parse_document(scans.image_bytes(scan, "PNG"), "slow.png", limits)


def test_a_language_without_its_data_fails_saying_what_to_install() -> None:
    scan = scans.scanned_page(scans.text_pdf([["Eine Seite."]]), dpi=100)
    limits = ParseLimits(ocr=OcrSettings(language="eng+zzz"))
    with pytest.raises(DocumentError, match=r"OCR language zzz is not installed \(install tesseract-ocr-zzz\)"):
        parse_document(scans.image_bytes(scan, "PNG"), "page.png", limits)


def test_ocr_turned_off_refuses_images_but_keeps_the_text_of_mixed_pdfs() -> None:
    off = ParseLimits(ocr=OcrSettings(enabled=False))
    with pytest.raises(DocumentError, match="OCR is turned off"):
        parse_document(files.scanned_pdf(), "scan.pdf", off)
    report = parse_document(files.report_pdf(), "report.pdf", off)  # page 4 is a picture; the rest is text
    assert report.ocr is None and files.PAGE_THREE_SENTENCE in report.text


def test_skeleton_of_ocr_text_matches_its_layout(tmp_path: Path) -> None:
    scan = scans.scanned_page(scans.text_pdf([scans.SCAN_PARAGRAPHS]), dpi=200)
    document, views = document_of(scans.image_bytes(scan, "PNG"), "scan.png", tmp_path)
    layout = views.layout(document, 1)
    assert layout is not None and skeleton(document.text)[0] == skeleton(layout.chars)[0]
