"""Files in: parsed (parsing/dispatch.py), their originals stored (originals.py), and committed together in one write.

Two entry points share the per-file work:

- `load_folder(root)`: every file of a corpus folder, for `citeqa index` (which then mirrors the folder);
- `parse_files(originals, files)`: a list of files for one collection, for `citeqa add`, uploads and upload jobs;
  `Engine.ingest_files` commits what parsed in one write and reports an outcome per file (added, updated,
  unchanged, failed with a reason); a bad file fails alone and never stops the others.

A document's id is its path relative to the folder (`load_folder`) or the name it was given (`parse_files`).
Its text hash (`Document.sha256`) decides whether it changed: an original whose bytes differ but whose text comes
out the same is `unchanged`, and the stored original stays the one that text was indexed from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from citeqa.index.parsing.dispatch import ParseLimits, parse_document
from citeqa.index.parsing.locate import Original, meta_of
from citeqa.index.progress import NO_PROGRESS, Progress, Stage
from citeqa.index.storage.collection import WriteResult
from citeqa.index.storage.originals import OriginalStore
from citeqa.index.text.documents import (
    Document,
    DocumentError,
    LoadReport,
    SkippedFile,
    UnsupportedFormatError,
    content_hash,
    document_id_for,
)

Status = Literal["added", "updated", "unchanged", "failed"]
DEFAULT_LIMITS = ParseLimits()


def document_from_bytes(
    raw: bytes,
    filename: str,
    doc_id: str,
    source: str,
    limits: ParseLimits = DEFAULT_LIMITS,
    progress: Progress = NO_PROGRESS,
) -> tuple[Document, Original]:
    """Parse one file into a Document whose meta carries its media type, page and section tables, metadata and
    original (hash, name, type, size). Raises DocumentError (UnsupportedFormatError for a kind citeqa does not
    read) with the reason. The original's bytes are not stored here. `progress` hears of each page OCR reads."""

    def on_page(done: int, total: int) -> None:
        progress.pages(doc_id, done, total)

    parsed = parse_document(raw, filename, limits, on_page)
    original = Original(hashlib.sha256(raw).hexdigest(), Path(filename).name, parsed.media_type, len(raw))
    document = Document(
        id=doc_id,
        title=parsed.title,
        source=source,
        text=parsed.text,
        sha256=content_hash(parsed.text),
        meta=meta_of(parsed, original),
    )
    return document, original


def read_file(path: Path) -> bytes:
    """A file's bytes, or DocumentError saying why not."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"unreadable: {exc.strerror or exc}") from exc


# -- a folder ---------------------------------------------------------------------------------------------------


def list_folder(root: Path) -> tuple[Path, list[Path], str | None]:
    """The files a folder build reads, in a stable order: (the folder ids are relative to, the files sorted, the
    source prefix of the folder's documents, None for a single file). Hidden files and folders are left out."""
    root = Path(root)
    if not root.exists():
        raise DocumentError(f"corpus folder {root} does not exist")
    base = root.parent if root.is_file() else root
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    # Hidden files and folders (.git, editor swap files) are never documents.
    paths = [p for p in paths if not any(part.startswith(".") for part in p.relative_to(base).parts)]
    return base, paths, None if root.is_file() else f"{base.name}/"


def load_folder(
    root: Path,
    limits: ParseLimits = DEFAULT_LIMITS,
    originals: OriginalStore | None = None,
    progress: Progress = NO_PROGRESS,
) -> LoadReport:
    """Every file under root (recursively, sorted; hidden files and folders left out) as a Document, or skipped
    with its reason. With `originals`, each parsed file's bytes are stored there as they are read (so a large
    folder is never held in memory at once)."""
    base, paths, origin = list_folder(root)
    report = LoadReport(origin=origin)
    progress.begin(Stage.PARSING, len(paths))
    for path in paths:
        doc_id = document_id_for(path, base)
        progress.files([doc_id], Stage.PARSING)
        try:
            raw = read_file(path)
            # The source names the file as "<corpus folder>/<relative path>": readable, and no absolute path leaks.
            document, _ = document_from_bytes(raw, path.name, doc_id, f"{base.name}/{doc_id}", limits, progress)
            if originals is not None:
                originals.put_bytes(raw)
            report.documents.append(document)
        except DocumentError as exc:
            report.skipped.append(SkippedFile(str(path), str(exc)))
            progress.files([doc_id], Stage.FAILED, str(exc))
        progress.advance(Stage.PARSING)
    progress.end(Stage.PARSING)
    return report


# -- a list of files, one commit --------------------------------------------------------------------------------


@dataclass
class IncomingFile:
    """One file to add: where its bytes are, the name it came with, and the id it is to have."""

    path: Path
    filename: str
    doc_id: str | None  # None when the name was refused; `refused` says why
    size: int
    sha256: str | None = None  # known when the bytes were hashed on the way in
    refused: str | None = None
    temporary: bool = False  # an upload's temporary file: moved into the store rather than copied


@dataclass
class FileOutcome:
    filename: str
    doc_id: str | None
    size: int
    status: Status
    reason: str | None = None
    media_type: str | None = None
    unsupported: bool = False  # failed because the file is not a kind of document citeqa reads


@dataclass
class IngestReport:
    outcomes: list[FileOutcome] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def changed(self) -> bool:
        return any(o.status in ("added", "updated") for o in self.outcomes)


@dataclass
class ParsedFiles:
    """What parsing a list of files gave: the documents to commit, and the outcome of each file that failed."""

    files: Sequence[IncomingFile]
    documents: list[Document]
    failed: dict[int, FileOutcome]  # by the file's position
    positions: dict[str, int]  # a parsed document's id -> its file's position

    def report(self, result: WriteResult | None) -> IngestReport:
        """One outcome per file, in order, once `result` (the commit of `documents`) is known."""
        statuses: dict[str, Status] = {}
        if result is not None:
            statuses.update(dict.fromkeys(result.added, "added"))
            statuses.update(dict.fromkeys(result.updated, "updated"))
            statuses.update(dict.fromkeys(result.unchanged, "unchanged"))
        outcomes = dict(self.failed)
        for document in self.documents:
            position = self.positions[document.id]
            incoming = self.files[position]
            status = statuses.get(document.id, "unchanged")
            outcomes[position] = FileOutcome(
                incoming.filename, document.id, incoming.size, status, None, document.meta["media_type"]
            )
        return IngestReport([outcomes[position] for position in sorted(outcomes)])


def parse_files(
    originals: OriginalStore,
    files: Sequence[IncomingFile],
    source_prefix: str,
    limits: ParseLimits = DEFAULT_LIMITS,
    progress: Progress = NO_PROGRESS,
) -> ParsedFiles:
    """Parse `files` and store their originals (before the commit that will name them). Nothing is committed."""
    failed: dict[int, FileOutcome] = {}
    documents: dict[str, tuple[int, Document]] = {}
    progress.begin(Stage.PARSING, len(files))
    for index, incoming in enumerate(files):
        outcome_or_document = _parse_one(originals, incoming, documents, source_prefix, limits, progress)
        if isinstance(outcome_or_document, FileOutcome):
            failed[index] = outcome_or_document
        else:
            documents[outcome_or_document.id] = (index, outcome_or_document)
        progress.advance(Stage.PARSING)
    progress.end(Stage.PARSING)
    return ParsedFiles(files, [document for _, document in documents.values()], failed, {d: i for d, (i, _) in documents.items()})


def _parse_one(
    originals: OriginalStore,
    incoming: IncomingFile,
    seen: dict[str, tuple[int, Document]],
    source_prefix: str,
    limits: ParseLimits,
    progress: Progress,
) -> Document | FileOutcome:
    def failed(reason: str, unsupported: bool = False) -> FileOutcome:
        return FileOutcome(incoming.filename, incoming.doc_id, incoming.size, "failed", reason, unsupported=unsupported)

    if incoming.refused or incoming.doc_id is None:
        return failed(incoming.refused or "no id")
    if incoming.doc_id in seen:
        return failed(f"another file in this request has the id '{incoming.doc_id}'")
    progress.files([incoming.doc_id], Stage.PARSING)
    try:
        raw = read_file(incoming.path)
        document, original = document_from_bytes(
            raw, incoming.filename, incoming.doc_id, f"{source_prefix}{incoming.doc_id}", limits, progress
        )
    except DocumentError as exc:
        # Only a file that got as far as parsing is reported by id: a refused or repeated id names no file uniquely.
        progress.files([incoming.doc_id], Stage.FAILED, str(exc))
        return failed(str(exc), unsupported=isinstance(exc, UnsupportedFormatError))
    # Stored before the commit that will name it (a sweep keeps unreferenced files for a grace period).
    originals.put_file(incoming.path, original.sha256, move=incoming.temporary)
    return document
