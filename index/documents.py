"""Loading documents from a corpus folder: one function per step, and a report of what was skipped."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

SUPPORTED_SUFFIXES = frozenset({".txt", ".md"})
# A document larger than this is almost certainly not prose someone wants to ask questions of.
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Document:
    """A source text. Every offset citeqa ever reports indexes into `text`."""

    id: str
    title: str
    source: str
    text: str
    sha256: str


@dataclass(frozen=True)
class SkippedFile:
    source: str
    reason: str


@dataclass
class LoadReport:
    documents: list[Document] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


class DocumentError(ValueError):
    """A file or text that cannot become a document; the message says why."""


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def title_of(text: str, fallback: str) -> str:
    """The first non-empty line, without markdown heading marks."""
    for line in text.splitlines():
        stripped = line.strip().lstrip("#").strip()
        if stripped:
            return stripped[:300]
    return fallback


def make_document(doc_id: str, text: str, source: str) -> Document:
    """Validate text and wrap it as a Document. Raises DocumentError with a reason."""
    if not doc_id or doc_id.strip() != doc_id:
        raise DocumentError("document id must be non-empty with no surrounding whitespace")
    if "\x00" in text:
        raise DocumentError("binary content (NUL bytes)")
    if not text.strip():
        raise DocumentError("empty document")
    return Document(
        id=doc_id,
        title=title_of(text, fallback=doc_id),
        source=source,
        text=text,
        sha256=content_hash(text),
    )


def decode_bytes(raw: bytes) -> str:
    """Strict UTF-8 (a leading BOM is dropped); anything else is refused rather than guessed at."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise DocumentError(f"larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB")
    if b"\x00" in raw:
        raise DocumentError("binary content (NUL bytes)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"not valid UTF-8 (byte {exc.start})") from exc


def document_id_for(path: Path, root: Path) -> str:
    """Stable id: the path relative to the corpus root, with forward slashes."""
    return path.relative_to(root).as_posix()


def load_file(path: Path, root: Path) -> Document:
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise DocumentError(f"unsupported type '{path.suffix or '(none)'}' (supported: .txt, .md)")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"unreadable: {exc.strerror or exc}") from exc
    # The source names the file as "<corpus folder>/<relative path>": readable, and no absolute paths leak out.
    return make_document(document_id_for(path, root), decode_bytes(raw), source=f"{root.name}/{document_id_for(path, root)}")


def load_corpus(root: Path) -> LoadReport:
    """Every .txt/.md file under root (recursively, sorted); a bad file is skipped with its reason."""
    root = Path(root)
    if not root.exists():
        raise DocumentError(f"corpus folder {root} does not exist")
    report = LoadReport()
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    base = root.parent if root.is_file() else root
    for path in paths:
        if any(part.startswith(".") for part in path.relative_to(base).parts):
            continue  # hidden files and folders (.git, editor swap files) are never documents
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            report.skipped.append(SkippedFile(str(path), f"unsupported type '{path.suffix or '(none)'}'"))
            continue
        try:
            report.documents.append(load_file(path, base))
        except DocumentError as exc:
            report.skipped.append(SkippedFile(str(path), str(exc)))
    return report
