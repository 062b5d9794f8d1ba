"""`citeqa index` and `citeqa add` on real files, as real subprocesses: ten good files of every type indexed, five
bad ones reported with their reasons, the same outcome per file as one multipart upload of the same bytes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from citeqa.index.models.embedding import Embedder
from tests import files
from tests.helpers import citeqa_env, run_citeqa
from tests.upload_helpers import files_form, upload_app


@pytest.fixture(scope="module")
def mixed() -> tuple[dict[str, bytes], dict[str, str]]:
    return files.mixed_folder_files()


def write_folder(folder: Path, contents: dict[str, bytes]) -> Path:
    for name, data in contents.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def test_index_reports_ten_documents_and_five_reasons_like_an_upload_of_the_same_files(
    tmp_path: Path, embedder: Embedder, mixed
) -> None:
    contents, reasons = mixed
    corpus = write_folder(tmp_path / "corpus", contents)
    result = run_citeqa("index", str(corpus), env=citeqa_env(tmp_path / "index"))
    assert result.returncode == 0, result.stderr
    assert "documents: 10 (10 added, 0 updated, 0 unchanged, 0 removed)" in result.stdout
    assert "skipped: 5" in result.stdout
    skipped = dict(re.findall(r"^  (\S+): (.+)$", result.stdout, flags=re.MULTILINE))
    by_name = {Path(path).relative_to(corpus).as_posix(): reason for path, reason in skipped.items()}
    assert set(by_name) == set(reasons)
    for name, words in reasons.items():
        assert words in by_name[name]
    # Not a terminal: plain progress lines on stderr, one per stage start and end, no bar drawing.
    assert "parsing: 15 files" in result.stderr and "embedding: done in" in result.stderr
    assert "\r" not in result.stderr

    with upload_app(tmp_path / "upload-index", embedder) as client:
        reply = client.post("/v1/documents", files=files_form(contents)).json()
    uploaded = {f["filename"]: (f["status"], f["reason"]) for f in reply["files"]}
    indexed = {name: ("failed", by_name[name]) if name in by_name else ("added", None) for name in contents}
    assert uploaded == indexed  # the same outcome, and the same reason, for every file


def test_add_puts_files_in_with_one_commit_and_reports_each(tmp_path: Path, mixed) -> None:
    contents, _ = mixed
    folder = write_folder(tmp_path / "files", {name: contents[name] for name in ("survey.pdf", "field.docx", "picture.png")})
    env = citeqa_env(tmp_path / "index")
    paths = [str(folder / "survey.pdf"), str(folder / "field.docx"), str(folder / "picture.png"), str(folder / "gone.txt")]
    first = run_citeqa("add", *paths, env=env)
    assert first.returncode == 1, first.stderr  # some files failed; the others are in
    assert f"  {folder / 'survey.pdf'}: added" in first.stdout and f"  {folder / 'field.docx'}: added" in first.stdout
    assert re.search(r"picture\.png: failed: no text: OCR found no words", first.stdout)
    assert re.search(r"gone\.txt: failed: no such file", first.stdout)
    assert "files: 4 (2 added, 0 updated, 0 unchanged, 2 failed)" in first.stdout
    assert "committing: 1 commit" in first.stderr

    again = run_citeqa("add", str(folder / "survey.pdf"), env=env)
    assert again.returncode == 0 and "survey.pdf: unchanged" in again.stdout
    assert "files: 1 (0 added, 0 updated, 1 unchanged, 0 failed)" in again.stdout
