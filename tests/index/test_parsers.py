"""The parsing layer on real files written by real writers (reportlab, python-docx), hostile files, and random
input: every file either parses into text whose page and section offsets are exact, or is refused with a reason."""

from __future__ import annotations

import functools
import io
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citeqa.index.parsing.dispatch import ParsedDocument, ParseLimits, Section, page_at, parse_document, section_at
from citeqa.index.parsing.formats import MEDIA_TYPES, Format, detect_format
from citeqa.index.parsing.parsed import MIB
from citeqa.index.parsing.zipguard import READ_CHUNK, UnpackLimitExceeded, read_capped
from citeqa.index.text.documents import DocumentError
from citeqa.index.text.normalize import normalize_text
from tests import files


def assert_offsets_valid(parsed: ParsedDocument) -> None:
    """The invariants every parsed document keeps, whatever it came from."""
    assert parsed.text and parsed.text == parsed.text.strip()
    assert parsed.title and "\n" not in parsed.title
    if parsed.pages is not None:
        assert parsed.pages[0] == 0
        assert parsed.pages == sorted(parsed.pages)
        assert all(0 <= start <= len(parsed.text) for start in parsed.pages)
    if parsed.sections is not None:
        previous_end = 0
        for section in parsed.sections:
            assert previous_end <= section.start <= section.end <= len(parsed.text)
            assert section.path
            previous_end = section.end


def refusal(raw: bytes, filename: str, limits: ParseLimits | None = None) -> str:
    with pytest.raises(DocumentError) as caught:
        parse_document(raw, filename, limits or ParseLimits())
    return str(caught.value)


# --- PDF ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report() -> ParsedDocument:
    return parse_document(files.report_pdf(), "survey.pdf")


def test_pdf_page_table_maps_a_known_sentence_to_its_page(report: ParsedDocument) -> None:
    assert_offsets_valid(report)
    assert report.media_type == "application/pdf"
    assert len(report.pages) == 5
    start = report.text.index(files.PAGE_THREE_SENTENCE)
    end = start + len(files.PAGE_THREE_SENTENCE)
    assert page_at(report, start) == 3
    assert page_at(report, end - 1) == 3
    # Page 3 is exactly that sentence: the page span indexes the text with no separator inside it.
    assert report.text[report.pages[2] : end] == files.PAGE_THREE_SENTENCE
    assert report.text[report.pages[4] :].startswith(files.CLOSING_SENTENCE + "\n")
    assert page_at(report, len(report.text) - 1) == 5
    assert page_at(report, len(report.text)) is None
    assert page_at(report, -1) is None


def test_pdf_image_only_page_has_an_empty_span(report: ParsedDocument) -> None:
    assert report.pages[3] == report.pages[4]  # page 4 holds only a picture
    assert page_at(report.pages, report.pages[3]) == 5  # an empty page never holds a character


def test_pdf_two_columns_keep_their_words_and_order(report: ParsedDocument) -> None:
    page_one = report.text[report.pages[0] : report.pages[1]]
    for word in (files.LEFT_COLUMN + " " + files.RIGHT_COLUMN).split():
        assert word in page_one
    # The left column is read to its end before the right column begins.
    assert page_one.index("annual balance") < page_one.index("network continues") < page_one.index("Sediment cores")


def test_pdf_columns_interleaved_in_the_stream_are_read_column_by_column(report: ParsedDocument) -> None:
    page_two = report.text[report.pages[1] : report.pages[2]]
    # The writer emitted left line, right line, left line ...; the text reads each column through.
    assert " ".join(page_two.split()) == files.PAGE_TWO_LEFT + " " + files.PAGE_TWO_RIGHT


def test_pdf_table_rows_stay_rows(report: ParsedDocument) -> None:
    last_page = report.text[report.pages[4] :]
    for row in files.PDF_TABLE:
        assert " ".join(row) in last_page.splitlines()


def test_pdf_word_hyphenated_across_a_line_is_rejoined(report: ParsedDocument) -> None:
    assert f"the {files.HYPHENATED_WORD} monitoring" in report.text
    assert "inter-" not in report.text


def test_pdf_metadata_gives_title_and_author(report: ParsedDocument) -> None:
    assert report.title == files.TITLE
    assert report.metadata["author"] == "Valley Survey"
    assert report.metadata["pages"] == "5"
    assert "subject" not in report.metadata  # reportlab's placeholder "unspecified" says nothing


def test_pdf_without_text_layer_is_refused() -> None:
    assert refusal(files.scanned_pdf(), "scan.pdf") == "no text: no text layer, and OCR found no words"


def test_encrypted_pdf_is_refused() -> None:
    assert refusal(files.report_pdf(encrypt_with="secret"), "locked.pdf") == "encrypted PDF (password-protected)"


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_pdf_is_refused(keep: float) -> None:
    raw = files.report_pdf()
    assert refusal(raw[: int(len(raw) * keep)], "cut.pdf").startswith("corrupt or truncated PDF: ")


def test_pdf_with_damaged_body_is_refused() -> None:
    raw = files.report_pdf()
    damaged = raw[:9] + bytes(len(raw) - 200) + raw[-191:]  # header and trailer intact, objects zeroed
    assert refusal(damaged, "damaged.pdf").startswith("corrupt or truncated PDF: ")


def test_executable_renamed_pdf_is_refused() -> None:
    reason = refusal(files.windows_executable(), "invoice.pdf")
    assert "Windows executable" in reason and ".pdf" in reason


def test_pdf_page_and_text_limits() -> None:
    raw = files.report_pdf()
    assert "over the limit of 3" in refusal(raw, "survey.pdf", ParseLimits(max_pages=3))
    assert "longer than the limit of 100 characters" in refusal(raw, "survey.pdf", ParseLimits(max_text_chars=100))


# --- DOCX --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def word() -> ParsedDocument:
    return parse_document(files.report_docx(), "season.docx")


def test_docx_headings_become_section_paths(word: ParsedDocument) -> None:
    assert_offsets_valid(word)
    assert word.media_type == MEDIA_TYPES[Format.DOCX]
    text, sections = word.text, word.sections
    assert [section.path for section in sections] == ["Methods", "Results", "Results > Table 2", "Discussion"]
    assert section_at(sections, text.index("Prepared for the regional archive")) is None
    assert section_at(sections, text.index(files.DOCX_RESULTS_SENTENCE)) == "Results"
    assert section_at(sections, text.index("East valley")) == "Results > Table 2"
    assert section_at(sections, text.index("Altitudes are above")) == "Results > Table 2"
    assert section_at(sections, len(text) - 1) == "Discussion"
    for section in sections:
        assert text[section.start : section.end].startswith(section.path.split(" > ")[-1])
        assert not text[section.start : section.end].endswith("\n")


def test_docx_list_items_are_lines(word: ParsedDocument) -> None:
    assert "\n".join(f"- {item}" for item in files.DOCX_LIST) in word.text


def test_docx_table_rows_read_as_labelled_lines(word: ParsedDocument) -> None:
    header, *rows = files.DOCX_TABLE
    expected = "\n".join("; ".join(f"{name}: {value}" for name, value in zip(header, row, strict=True)) for row in rows)
    assert expected in word.text
    assert "|" not in word.text


def test_docx_metadata_gives_title_and_author(word: ParsedDocument) -> None:
    assert word.title == files.DOCX_TITLE
    assert word.metadata["author"] == "Valley Survey"


def test_docx_zip_bomb_is_refused_by_its_declared_size() -> None:
    bomb = files.docx_with_extra_member("word/media/padding.bin", 8 * MIB)
    assert len(bomb) < MIB // 4  # small on disk ...
    reason = refusal(bomb, "bomb.docx", ParseLimits(max_unpacked_bytes=2 * MIB))
    assert reason.startswith("zip container declares 8.") and "limit of 2.0 MiB" in reason


def test_unpacking_stops_at_the_limit_whatever_the_sizes_declared() -> None:
    bomb = files.docx_with_extra_member("word/media/padding.bin", 8 * MIB)
    with zipfile.ZipFile(io.BytesIO(bomb)) as archive, pytest.raises(UnpackLimitExceeded) as caught:
        read_capped(archive, MIB)
    assert MIB < caught.value.bytes_read <= MIB + READ_CHUNK  # ... and never unpacked past the limit
    assert "unpacks to more than the limit of 1.0 MiB" in str(caught.value)


def test_docx_within_a_tight_limit_still_parses() -> None:
    parsed = parse_document(files.report_docx(), "season.docx", ParseLimits(max_unpacked_bytes=MIB))
    assert files.DOCX_RESULTS_SENTENCE in parsed.text


def test_zip_that_is_not_word_is_refused_as_docx() -> None:
    reason = refusal(files.plain_zip({"notes.txt": b"hello"}), "notes.docx")
    assert "zip archive" in reason and ".docx" in reason


# --- HTML --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page() -> ParsedDocument:
    return parse_document(files.article_html(), "glacier.html")


def test_html_keeps_the_article_and_drops_the_site_around_it(page: ParsedDocument) -> None:
    assert_offsets_valid(page)
    for sentence in files.HTML_ARTICLE_SENTENCES:
        assert sentence in page.text
    for boilerplate in files.HTML_BOILERPLATE:
        assert boilerplate not in page.text, boilerplate


def test_html_title_sections_lists_and_tables(page: ParsedDocument) -> None:
    assert page.title == files.HTML_TITLE
    assert page.metadata["author"] == "A. Writer"
    top = "Glacier retreat in the northern valley"
    assert [s.path for s in page.sections] == [top, f"{top} > Methods", f"{top} > Methods > Table 2", f"{top} > Results"]
    assert section_at(page.sections, page.text.index("12 m")) == f"{top} > Methods > Table 2"
    assert "- Gauges were read daily.\n- Photographs were taken weekly." in page.text
    assert "Site: North cirque; Ice loss: 12 m\nSite: East valley; Ice loss: 31 m" in page.text


def test_html_list_numbers_and_empty_items() -> None:
    raw = b'<ol start="3"><li>Third</li><li>Fourth</li></ol><ul><li></li></ul><p>After the lists.</p>'
    assert parse_document(raw, "list.html").text == "3. Third\n4. Fourth\n\nAfter the lists."


def test_html_over_the_byte_limit_is_refused_before_parsing() -> None:
    huge = b"<html><body><p>" + b"ice " * (13 * MIB) + b"</p></body></html>"  # 52 MiB
    assert "over the limit of 50.0 MiB" in refusal(huge, "huge.html")


def test_html_title_falls_back_to_h1_and_charset_is_honoured() -> None:
    raw = '<html><head><meta charset="windows-1252"></head><body><h1>Café “Glacier”</h1><p>Text.</p></body></html>'
    parsed = parse_document(raw.encode("cp1252"), "cafe.htm")
    assert parsed.title == "Café “Glacier”"
    assert parsed.metadata["encoding"] == "cp1252"


# --- Markdown ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def notes() -> ParsedDocument:
    return parse_document(files.MARKDOWN_DOCUMENT.encode(), "notes.md")


def test_markdown_front_matter_becomes_metadata_and_title(notes: ParsedDocument) -> None:
    assert_offsets_valid(notes)
    assert notes.title == "Ice Survey Notes"
    assert notes.metadata["author"] == "Valley Survey"
    assert notes.metadata["tags"] == "glaciers, hares"
    assert "title:" not in notes.text and "---" not in notes.text


def test_markdown_renders_as_a_reader_sees_it(notes: ParsedDocument) -> None:
    overview = (
        "The survey ran for three seasons and every gauge was read by hand, as the protocol asks.\n\n"
        "Second paragraph of the overview."
    )
    assert overview in notes.text
    assert "Site: North cirque; Ice loss: 12 m\nSite: East valley; Ice loss: 31 m" in notes.text
    assert "1. Read the gauges.\n2. Photograph the ice." in notes.text
    for mark in ("|", "**", "*", "](", "#"):
        assert mark not in notes.text
    assert [s.path for s in notes.sections] == ["Overview", "Overview > Sites"]
    assert section_at(notes.sections, notes.text.index("East valley")) == "Overview > Sites"


def test_markdown_without_front_matter_takes_its_first_heading_as_title() -> None:
    parsed = parse_document(b"Intro line.\n\n## Findings\n\nIce melts.\n", "f.markdown")
    assert parsed.title == "Findings"
    assert section_at(parsed.sections, 0) is None


# --- Plain text --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "reported"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8"), ("utf-16", "utf-16"), ("latin-1", "cp1252"), ("cp1252", "cp1252")],
)
def test_text_in_common_encodings_is_decoded(encoding: str, reported: str) -> None:
    parsed = parse_document(files.LATIN_TEXT.encode(encoding), "hotel.txt")
    assert parsed.text == files.LATIN_TEXT
    assert parsed.metadata["encoding"] == reported
    assert parsed.pages is None and parsed.sections is None
    assert parsed.title == "Le garçon a mangé une pâtisserie à côté de la fenêtre."


def test_windows_1252_punctuation_is_decoded() -> None:
    text = "He said “hello” – and paid 5 € for the café’s crème brûlée."
    assert parse_document(text.encode("cp1252"), "receipt.txt").text == text


def test_nul_bytes_in_text_mean_binary() -> None:
    assert "binary" in refusal(b"plain words\x00\x01\x02 more words", "data.txt")


def test_empty_and_blank_files_are_refused() -> None:
    assert refusal(b"", "empty.txt") == "empty file"
    assert "empty" in refusal(b"\x00" * 0 + b"\xef\xbb\xbf \n\t\n", "blank.md")


# --- Detection ---------------------------------------------------------------------------------------------------


def test_content_decides_and_contradictions_are_refused() -> None:
    pdf = files.report_pdf()
    assert detect_format(pdf, "report") is Format.PDF  # no extension: the content says PDF
    assert detect_format(files.report_docx(), "download.bin") is Format.DOCX
    assert detect_format(b"<!DOCTYPE html><p>hi</p>", "page") is Format.HTML
    assert detect_format(b"# Title\n", "README.md") is Format.MARKDOWN
    assert detect_format(b"<p>markup kept as text</p>", "snippet.txt") is Format.TEXT
    with pytest.raises(DocumentError, match=r"the content is a PDF, not what the extension \.txt says"):
        detect_format(pdf, "report.txt")
    with pytest.raises(DocumentError, match="legacy Office"):
        detect_format(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "old.docx")
    with pytest.raises(DocumentError, match="Linux executable"):
        detect_format(b"\x7fELF\x02\x01\x01" + bytes(64), "tool")
    assert MEDIA_TYPES[Format.MARKDOWN] == "text/markdown"


# --- Normalisation -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("inter-\nnational", "international"),
        ("Anglo-\nSaxon and Well-\nknown", "Anglo-\nSaxon and Well-\nknown"),  # a capital: a real hyphen
        ("ten-\n12", "ten-\n12"),
        ("o\ufb03ce \ufb01sh", "office fish"),
        ("co\u00adop\u00ad\neration", "cooperation"),
        ("a\r\nb\rc", "a\nb\nc"),
        ("  one \t  two  \n\n\n\n three  ", "one two\n\nthree"),
        ("bell\x07 and nul\x00", "bell and nul"),
        ("cafe\u0301", "café"),
        ("non\u00a0breaking", "non breaking"),
    ],
)
def test_normalisation_rules(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


@given(st.text())
def test_normalisation_is_a_fixed_point(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once


def test_section_and_page_helpers_without_tables() -> None:
    assert section_at(None, 5) is None and page_at(None, 5) is None
    sections = [Section(0, 4, "A"), Section(10, 12, "B")]
    assert [section_at(sections, offset) for offset in (0, 3, 4, 9, 10, 12)] == ["A", "A", None, None, "B", None]


# --- Anything at all ---------------------------------------------------------------------------------------------

FILENAMES = st.sampled_from(["x.pdf", "x.docx", "x.html", "x.md", "x.txt", "x", "x.bin"])
SMALL = ParseLimits(max_file_bytes=MIB, max_unpacked_bytes=4 * MIB, max_pages=50, max_text_chars=200_000)


def parses_or_refuses(raw: bytes, filename: str) -> None:
    try:
        parsed = parse_document(raw, filename, SMALL)
    except DocumentError as exc:
        assert str(exc)
        return
    assert_offsets_valid(parsed)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=2048), filename=FILENAMES)
def test_arbitrary_bytes_parse_or_are_refused(raw: bytes, filename: str) -> None:
    parses_or_refuses(raw, filename)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=2000), filename=FILENAMES)
def test_arbitrary_text_parses_or_is_refused(text: str, filename: str) -> None:
    parses_or_refuses(text.encode("utf-8"), filename)


@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(
        st.one_of(
            st.sampled_from(["# A", "## B", "### C", "- item", "1. one", "| a | b |", "|---|---|", "---", "", "> q"]),
            st.text(max_size=40),
        ),
        max_size=30,
    ),
    filename=st.sampled_from(["x.md", "x.html"]),
)
def test_structured_text_keeps_sections_inside_the_text(lines: list[str], filename: str) -> None:
    source = "\n".join(lines)
    if filename.endswith(".html"):
        source = "".join(f"<h{1 + len(line) % 6}>{line}</h{1 + len(line) % 6}><p>{line}</p>" for line in lines)
    parses_or_refuses(source.encode(), filename)


ORIGINALS = {"pdf": functools.cache(files.report_pdf), "docx": functools.cache(files.report_docx)}


@settings(max_examples=60, deadline=None)
@given(data=st.data(), source=st.sampled_from(["pdf", "docx"]))
def test_damaged_real_files_parse_or_are_refused(data: st.DataObject, source: str) -> None:
    raw = bytearray(ORIGINALS[source]())
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    parses_or_refuses(bytes(raw), f"damaged.{source}")
