"""Files in, below HTTP: a folder of real files parsed into documents with their meta, originals kept by content,
one commit for a list of files, and where a span lies in its original."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from citeqa.index.engine import Engine
from citeqa.index.models.embedding import Embedder
from citeqa.index.parsing.locate import locate, original_of
from citeqa.index.parsing.pdf import unwrap_lines
from citeqa.index.progress import Progress, Stage
from citeqa.index.storage.originals import ORIGINALS_DIR, OriginalStore
from citeqa.index.text.documents import DocumentError, check_document_id
from citeqa.index.writing.ingest import IncomingFile, load_folder
from citeqa.settings import Settings
from tests import files


@pytest.fixture(scope="module")
def mixed() -> tuple[dict[str, bytes], dict[str, str]]:
    return files.mixed_folder_files()


def write_folder(folder: Path, contents: dict[str, bytes]) -> Path:
    for name, data in contents.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def test_a_folder_of_every_type_loads_ten_documents_and_skips_five_with_reasons(tmp_path: Path, mixed) -> None:
    contents, reasons = mixed
    store = OriginalStore(tmp_path / "collection")
    report = load_folder(write_folder(tmp_path / "corpus", contents), originals=store)

    good = {name for name in contents if name not in reasons}
    assert {d.id for d in report.documents} == good
    skipped = {Path(s.source).name: s.reason for s in report.skipped}
    assert set(skipped) == set(reasons)
    for name, words in reasons.items():
        assert words in skipped[name], (name, skipped[name])
    by_id = {d.id: d for d in report.documents}
    assert by_id["notes/plan.md"].source == "corpus/notes/plan.md"
    assert by_id["survey.pdf"].title == files.TITLE
    for doc_id, document in by_id.items():
        original = original_of(document.meta)
        assert original is not None and original.sha256 == hashlib.sha256(contents[doc_id]).hexdigest()
        assert original.filename == Path(doc_id).name and original.bytes == len(contents[doc_id])
        assert original.media_type == document.meta["media_type"]
        # Stored as it was read: the bytes a reader downloads are the bytes that were indexed.
        assert store.path(original.sha256).read_bytes() == contents[doc_id]
    assert by_id["survey.pdf"].meta["media_type"] == "application/pdf" and len(by_id["survey.pdf"].meta["pages"]) == 5
    assert [s[2] for s in by_id["field.docx"].meta["sections"]] == ["Methods", "Results", "Results > Table 2", "Discussion"]
    assert by_id["latin.txt"].meta["metadata"]["encoding"] == "cp1252"
    assert "pages" not in by_id["ice.md"].meta and by_id["ice.md"].meta["metadata"]["author"] == "Valley Survey"
    # Only the ten good files were kept: a refused file is never stored.
    assert len(list((tmp_path / "collection" / ORIGINALS_DIR).iterdir())) == 10


def test_locate_gives_pages_of_both_ends_and_the_section_of_the_start(mixed) -> None:
    contents, _ = mixed
    report_pdf, report_docx = contents["survey.pdf"], contents["field.docx"]
    from citeqa.index.writing.ingest import document_from_bytes

    pdf, _ = document_from_bytes(report_pdf, "survey.pdf", "survey.pdf", "t/survey.pdf")
    start = pdf.text.index(files.PAGE_THREE_SENTENCE)
    assert locate(pdf.meta, start, start + len(files.PAGE_THREE_SENTENCE)) == locate(pdf.meta, start, start + 1)
    assert locate(pdf.meta, start, start + 1).page_start == 3
    pages = pdf.meta["pages"]
    across = locate(pdf.meta, pages[1] + 3, pages[2] + 3)  # from page 2 into page 3
    assert (across.page_start, across.page_end, across.section) == (2, 3, None)

    docx, _ = document_from_bytes(report_docx, "field.docx", "field.docx", "t/field.docx")
    start = docx.text.index(files.DOCX_RESULTS_SENTENCE)
    assert locate(docx.meta, start, start + 10).section == "Results"
    row = docx.text.index("North cirque")
    assert locate(docx.meta, row, row + 5).section == "Results > Table 2"
    assert locate(docx.meta, 0, 5).page_start is None
    assert locate({}, 0, 5) == locate({"pages": None}, 0, 5)


def test_pdf_lines_broken_by_the_column_are_joined_and_real_lines_stay() -> None:
    text = (
        "Title of the page\n"
        "running text that is long enough to fill its column and goes\n"
        "on here after the break, ending a sentence on this line.\n"
        "Next sentence starts with a capital and stays on its line\n"
        "- a list item is not joined to what comes before it.\n"
        "A word broken across the column, written with inter-\n"
        "national stays for the hyphen rule, and a full line of running text names\n"
        "CITEQA_HOME on the next line, which goes on.\n"
        "North cirque 2,410 m 12 m\n"
        "East valley 1,980 m 31 m"
    )
    lines = unwrap_lines(text).split("\n")
    assert lines[0] == "Title of the page"  # too short to be a wrapped line: a heading
    assert (
        lines[1]
        == "running text that is long enough to fill its column and goes on here after the break, ending a sentence on this line."
    )
    assert lines[2].startswith("Next sentence") and lines[3].startswith("- a list item")
    assert lines[4].endswith("inter-")  # the hyphen rule of normalize.py decides, not this one
    assert lines[5].endswith("running text names CITEQA_HOME on the next line, which goes on.")  # a capital after a full line
    assert lines[6:] == ["North cirque 2,410 m 12 m", "East valley 1,980 m 31 m"]  # table rows stay rows


@pytest.mark.parametrize(
    ("doc_id", "words"),
    [
        ("../escape.txt", "'..'"),
        ("notes/../../escape.txt", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:/Windows/win.ini", "absolute"),
        ("a\\b.txt", "backslash"),
        ("nul\x00.txt", "control"),
        ("tab\tname.txt", "control"),
        ("line\nbreak.txt", "control"),
        ("\x85next.txt", "control"),
        (" lead.txt", "whitespace"),
        ("notes//a.txt", "empty"),
        ("", "empty"),
        ("x" * 201, "more than 200"),
    ],
)
def test_hostile_ids_are_refused_with_the_reason(doc_id: str, words: str) -> None:
    with pytest.raises(DocumentError, match=words):
        check_document_id(doc_id)


def test_clean_relative_ids_pass() -> None:
    for doc_id in ("report.pdf", "notes/2024/plan.md", "Été à Genève.docx", "a b.txt"):
        assert check_document_id(doc_id) == doc_id


def test_originals_are_stored_once_by_content_and_swept_when_unreferenced(tmp_path: Path) -> None:
    store = OriginalStore(tmp_path)
    first, again = store.put_bytes(b"same bytes"), store.put_bytes(b"same bytes")
    other = store.put_bytes(b"other bytes")
    assert first == again == hashlib.sha256(b"same bytes").hexdigest()
    assert sorted(p.name for p in store.folder.iterdir()) == sorted([first, other])
    incoming = store.incoming()
    (incoming / "00000").write_bytes(b"half an upload")
    old = time.time() - 10
    os.utime(incoming, (old, old))
    assert store.sweep({first}, grace_seconds=3600) == []  # young files survive any sweep
    os.utime(store.folder / other, (old, old))
    assert store.sweep({first}, grace_seconds=5) == [other]
    assert store.path(first) is not None and store.path(other) is None
    assert not incoming.exists()  # an upload abandoned by a stopped server goes too
    assert store.path("../../etc/passwd") is None


class Recorder(Progress):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def begin(self, stage: Stage, total: int) -> None:
        self.events.append(("begin", stage, total))

    def files(self, doc_ids, stage: Stage, reason: str | None = None) -> None:
        self.events.append(("files", tuple(doc_ids), stage))


def test_ingest_commits_once_reports_every_file_and_sweeps_the_originals_of_deleted_documents(
    tmp_path: Path, embedder: Embedder, mixed
) -> None:
    contents, _ = mixed
    settings = Settings(index_dir=tmp_path / "index")
    engine = Engine.create(settings.index_dir, settings.engine_settings(), embedder)
    engine.background_merges = False
    pdf = tmp_path / "survey.pdf"
    pdf.write_bytes(contents["survey.pdf"])
    png = tmp_path / "picture.gif"
    png.write_bytes(files.gif_image())  # a kind citeqa does not read
    incoming = [
        IncomingFile(pdf, "survey.pdf", "survey.pdf", pdf.stat().st_size),
        IncomingFile(pdf, "survey.pdf", "copy/survey.pdf", pdf.stat().st_size),
        IncomingFile(pdf, "survey.pdf", "survey.pdf", pdf.stat().st_size),
        IncomingFile(png, "picture.gif", "picture.gif", png.stat().st_size),
        IncomingFile(png, "../x.gif", None, 1, refused="file name refused"),
    ]
    generation = engine.collection.generation()
    recorder = Recorder()
    report = engine.ingest_files(incoming, "add/", progress=recorder)

    assert [(o.doc_id, o.status) for o in report.outcomes] == [
        ("survey.pdf", "added"),
        ("copy/survey.pdf", "added"),
        ("survey.pdf", "failed"),
        ("picture.gif", "failed"),
        (None, "failed"),
    ]
    assert "another file in this request" in report.outcomes[2].reason
    assert report.outcomes[3].unsupported and not report.outcomes[4].unsupported
    assert engine.collection.generation() == generation + 1  # one commit for the whole list
    stages = [e[1] for e in recorder.events if e[0] == "begin"]
    assert stages == [Stage.PARSING, Stage.SPLITTING, Stage.EMBEDDING, Stage.COMMITTING]
    assert ("files", ("picture.gif",), Stage.FAILED) in recorder.events
    assert recorder.events[-1] == ("files", ("survey.pdf", "copy/survey.pdf"), Stage.COMMITTED)
    # The same bytes under two ids: one stored file.
    sha = hashlib.sha256(contents["survey.pdf"]).hexdigest()
    assert [p.name for p in engine.originals.folder.iterdir() if not p.name.startswith(".")] == [sha]
    assert engine.document("copy/survey.pdf").source == "add/copy/survey.pdf"

    engine.delete(["survey.pdf"])
    assert engine.collection.sweep_originals(grace_seconds=0) == []  # still named by copy/survey.pdf
    engine.delete(["copy/survey.pdf"])
    assert engine.collection.sweep_originals(grace_seconds=0) == [sha]
    engine.close()
