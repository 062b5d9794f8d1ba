"""Boxes of a span of a PDF's text: read back from the page by PDFium, the text under them is the span."""

from __future__ import annotations

import hashlib

import pypdfium2 as pdfium
import pytesseract
import pytest

from citeqa.index.parsing.dispatch import parse_document
from citeqa.index.parsing.layout import Box, PageLayout, merge_boxes, skeleton, span_boxes
from citeqa.index.parsing.locate import Original, meta_of
from citeqa.index.parsing.page_view import PageViews
from citeqa.index.text.documents import Document, content_hash
from tests import files


def text_under(raw: bytes, boxes: list[Box]) -> str:
    """What PDFium finds inside the boxes (boxes are from the page's top left; PDFium counts from its bottom)."""
    pdf = pdfium.PdfDocument(raw)
    found = []
    for box in boxes:
        page = pdf[box.page - 1]
        left, _, _, top = page.get_cropbox()
        textpage = page.get_textpage()
        # half a point of slack: a glyph's box and the rectangle PDFium tests it against round differently
        found.append(textpage.get_text_bounded(left + box.x0 - 0.5, top - box.y1 - 0.5, left + box.x1 + 0.5, top - box.y0 + 0.5))
    return " ".join(found)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Document, PageViews]:
    raw = files.report_pdf()
    parsed = parse_document(raw, "report.pdf")
    stored = tmp_path_factory.mktemp("originals") / "report.pdf"
    stored.write_bytes(raw)
    sha = hashlib.sha256(raw).hexdigest()
    original = Original(sha, "report.pdf", parsed.media_type, len(raw))
    meta = meta_of(parsed, original)
    document = Document("report.pdf", parsed.title, "files/report.pdf", parsed.text, content_hash(parsed.text), meta)
    return raw, document, PageViews(lambda asked: stored if asked == sha else None)


def letters(text: str) -> str:
    return skeleton(text)[0]


@pytest.mark.parametrize("sentence", [files.PAGE_THREE_SENTENCE, files.CLOSING_SENTENCE])
def test_a_sentence_is_boxed_on_its_page_and_the_boxes_hold_it(report, sentence: str) -> None:
    raw, document, views = report
    start = document.text.index(sentence)
    boxes = views.boxes(document, start, start + len(sentence))
    assert len(boxes) == 1  # one line, one rectangle
    assert boxes[0].page == (3 if sentence == files.PAGE_THREE_SENTENCE else 5)
    assert letters(text_under(raw, boxes)) == letters(sentence)


def test_a_word_hyphenated_across_lines_gets_a_box_on_each_line(report) -> None:
    raw, document, views = report
    start = document.text.index(files.HYPHENATED_WORD)
    boxes = views.boxes(document, start, start + len(files.HYPHENATED_WORD))
    assert [box.page for box in boxes] == [1, 1]
    assert boxes[0].y1 <= boxes[1].y0 + 1  # the first half above the second
    assert letters(text_under(raw, boxes)) == letters(files.HYPHENATED_WORD)


def test_columns_interleaved_in_the_stream_are_boxed_column_by_column(report) -> None:
    """Page 2 is read column by column although its stream alternates between the columns: a span of the left
    column must not be boxed across the gutter into the right one."""
    raw, document, views = report
    pages = document.meta["pages"]
    page_text = document.text[pages[1] : pages[2]]
    sentence = files.PAGE_TWO_LEFT.split(". ")[0]
    start = pages[1] + page_text.index(sentence.split()[0])
    end = start + len(sentence)
    boxes = views.boxes(document, start, end)
    assert boxes and {box.page for box in boxes} == {2}
    assert all(box.x1 < files.RIGHT_X for box in boxes)  # never into the right column
    assert letters(text_under(raw, boxes)) == letters(document.text[start:end])


def test_a_span_across_two_pages_is_boxed_on_both(report) -> None:
    _, document, views = report
    pages = document.meta["pages"]
    start, end = pages[2] - 10, pages[2] + 10  # the end of page 2 into page 3
    boxes = views.boxes(document, start, end)
    assert {box.page for box in boxes} == {2, 3}


def test_no_boxes_without_pages_or_original(report) -> None:
    _, document, _ = report
    views = PageViews(lambda _: None)
    assert views.boxes(document, 0, 10) == []  # the original is gone
    plain = Document("a.txt", "a", "a", "some text", content_hash("some text"), {})
    assert views.boxes(plain, 0, 4) == []


def test_an_image_only_page_has_no_boxes(report) -> None:
    _, document, views = report
    pages = document.meta["pages"]
    assert pages[3] == pages[4]  # page 4 is a picture: an empty span
    assert views.layout(document, 4) is not None and views.boxes(document, pages[3], pages[4]) == []


def test_merging_boxes_keeps_lines_and_columns_apart() -> None:
    chars = [(10.0, 10.0, 15.0, 20.0), (15.0, 10.0, 20.0, 20.0), (0.0, 0.0, 0.0, 0.0), (22.0, 10.0, 27.0, 20.0)]
    assert merge_boxes(1, chars) == [Box(1, 10.0, 10.0, 27.0, 20.0)]
    next_line = [*chars, (10.0, 24.0, 15.0, 34.0)]
    assert merge_boxes(1, next_line)[1] == Box(1, 10.0, 24.0, 15.0, 34.0)
    across_gutter = [*chars, (80.0, 10.0, 85.0, 20.0)]  # 53 units to the right: another column
    assert len(merge_boxes(1, across_gutter)) == 2


def test_skeleton_ignores_what_normalisation_changes() -> None:
    layout = PageLayout(100, 100, list("\ufb01ne cafe\u0301"), [(i * 5.0, 0.0, i * 5.0 + 5, 10.0) for i in range(10)])
    text = "fine café"  # ligature expanded, accent composed, as normalize.py leaves them
    assert skeleton(text)[0] == skeleton(layout.chars)[0] == "finecafe"
    boxes = span_boxes(layout, 1, text, 5, 9)  # "café"
    assert boxes == [Box(1, 20.0, 0.0, 40.0, 10.0)]


def test_boxes_of_a_text_layer_need_no_stored_layout(report) -> None:
    _, document, views = report
    assert "ocr" not in document.meta
    assert views.layout(document, 3) is views.layout(document, 3)  # read once, then kept


ROTATED_LINES = ["The committee approved the northern bridge repairs.", "Work starts in the spring of next year."]


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_boxes_on_a_rotated_page_cover_the_quote_as_the_page_is_shown(rotation: int, tmp_path) -> None:
    """A page with /Rotate is shown turned; its boxes must be on the page as rendered (and shown by the page
    endpoint), not on the page as stored. Checked by reading the rendered page inside the boxes with Tesseract."""
    raw = files.rotated_pdf(rotation, ROTATED_LINES)
    parsed = parse_document(raw, "rotated.pdf")
    stored = tmp_path / "rotated.pdf"
    stored.write_bytes(raw)
    sha = hashlib.sha256(raw).hexdigest()
    meta = meta_of(parsed, Original(sha, "rotated.pdf", parsed.media_type, len(raw)))
    document = Document("rotated.pdf", parsed.title, "files/rotated.pdf", parsed.text, content_hash(parsed.text), meta)
    quote = "northern bridge repairs"
    start = document.text.index(quote)
    boxes = PageViews(lambda asked: stored if asked == sha else None).boxes(document, start, start + len(quote))
    assert len(boxes) == 1
    page = pdfium.PdfDocument(raw)[0]
    scale = 3.0
    shown = page.render(scale=scale).to_pil()
    box = boxes[0]
    assert box.x1 * scale <= shown.width and box.y1 * scale <= shown.height
    crop = shown.crop((box.x0 * scale - 6, box.y0 * scale - 6, box.x1 * scale + 6, box.y1 * scale + 6))
    assert letters(pytesseract.image_to_string(crop, config="--psm 7")) == letters(quote)
