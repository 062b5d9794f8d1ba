"""One way in for text: the same words sent as text (the API's JSON) or uploaded as a file become the same document
text, hash and title, under one title rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from citeqa.index.text.documents import DocumentError, content_hash, document_from_text, make_document, title_of
from citeqa.index.text.normalize import normalize_text
from citeqa.index.writing.ingest import document_from_bytes, load_folder

# Everything the normalisation touches: a byte order mark, CRLF, a heading mark, a ligature, a no-break space, double
# spaces, a decomposed "é", a word hyphenated across a line, trailing spaces and blank lines at the end.
RAW = "\ufeff# Note\r\n\r\nThe \ufb01rst  line\u00a0of the cafe\u0301 inter-\nnational report.   \r\n\r\n\r\n"


def test_the_same_bytes_sent_as_text_and_uploaded_as_a_txt_file_make_the_same_document() -> None:
    sent = document_from_text("note.txt", RAW, source="api/note.txt")
    uploaded, _ = document_from_bytes(RAW.encode("utf-8"), "note.txt", "note.txt", "upload/note.txt")

    assert sent.text == uploaded.text == "# Note\n\nThe first line of the café international report."
    assert sent.sha256 == uploaded.sha256 == content_hash(sent.text)
    assert sent.title == uploaded.title == "Note"


def test_a_heading_line_gives_the_same_title_whatever_the_way_in(tmp_path: Path) -> None:
    text = "# Note\n\nBody text about the weir."
    (tmp_path / "note.txt").write_text(text, encoding="utf-8")
    (tmp_path / "note.md").write_text(text, encoding="utf-8")
    titles = {d.id: d.title for d in load_folder(tmp_path).documents}
    assert titles == {"note.txt": "Note", "note.md": "Note"}
    assert document_from_text("note.txt", text, "api/note.txt").title == "Note"
    assert make_document("note.txt", text, "t").title == "Note"


def test_text_sent_as_text_is_normalised_but_make_document_keeps_text_as_given() -> None:
    assert document_from_text("a", RAW, "api/a").text == normalize_text(RAW)
    assert make_document("a", RAW, "t").text == RAW  # the evaluation's datasets are built this way, unchanged


def test_text_sent_as_text_is_refused_as_a_file_would_be() -> None:
    with pytest.raises(DocumentError, match="NUL"):
        document_from_text("a", "text\x00more", "api/a")  # normalising would have dropped the NUL silently
    with pytest.raises(DocumentError, match="lone surrogate"):
        document_from_text("a", "text \ud800", "api/a")
    with pytest.raises(DocumentError, match="empty"):
        document_from_text("a", "\ufeff \r\n\u00a0\t\n", "api/a")  # only what normalisation removes


def test_a_title_falls_back_to_the_name_without_folders_or_extension() -> None:
    assert title_of("#\n##\n", "notes/minutes.txt") == "minutes"
    assert document_from_text("notes/minutes.txt", "#\n\n##", "api/x").title == "minutes"
    uploaded, _ = document_from_bytes(b"#\n\n##", "minutes.txt", "notes/minutes.txt", "upload/x")
    assert uploaded.title == "minutes"
    assert title_of("x" * 400, "n") == "x" * 300
