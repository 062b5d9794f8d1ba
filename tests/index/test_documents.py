from pathlib import Path

import pytest

from citeqa.index.text.documents import DocumentError, content_hash, make_document, title_of
from citeqa.index.writing.ingest import load_folder
from tests.conftest import SEED_ID, SEEDS


def test_seed_document_loads_with_stable_id_title_and_hash() -> None:
    report = load_folder(SEEDS)
    assert report.skipped == []
    [document] = report.documents
    assert document.id == SEED_ID
    assert document.title.startswith("Russia Rejects European Peacekeeper Deployment in Ukraine")
    assert document.sha256 == content_hash((SEEDS / SEED_ID).read_text(encoding="utf-8"))
    assert document.source == f"seeds/{SEED_ID}"


def test_nested_files_get_relative_ids_and_bad_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.md").write_text("# Heading\n\nBody text.", encoding="utf-8")
    (tmp_path / "b.txt").write_text("Plain text.", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02abc")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "empty.txt").write_text("   \n", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / ".hidden.txt").write_text("secret", encoding="utf-8")

    report = load_folder(tmp_path)

    assert sorted(d.id for d in report.documents) == ["b.txt", "latin1.txt", "notes/a.md"]
    by_id = {d.id: d for d in report.documents}
    assert by_id["notes/a.md"].title == "Heading"
    # Legacy single-byte text is read as Windows-1252 (what "Latin-1" files really are), not refused.
    assert by_id["latin1.txt"].text == "café" and by_id["latin1.txt"].meta["metadata"]["encoding"] == "cp1252"
    reasons = {Path(s.source).name: s.reason for s in report.skipped}
    assert "binary" in reasons["binary.txt"]
    assert "empty" in reasons["empty.txt"]
    assert "not what the extension .png says" in reasons["image.png"]  # four bytes are not even a PNG header
    assert ".hidden.txt" not in reasons


def test_missing_corpus_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="does not exist"):
        load_folder(tmp_path / "nowhere")


def test_title_skips_blank_lines_and_heading_marks() -> None:
    assert title_of("\n\n  ## Report  \nbody", "fallback") == "Report"
    assert title_of("   ", "fallback") == "fallback"


def test_make_document_rejects_empty_text() -> None:
    with pytest.raises(DocumentError):
        make_document("x", " \n ", "x")
