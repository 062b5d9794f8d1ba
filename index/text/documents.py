"""Documents: what one is, checks on ids and on text that arrives as text, and the report of loading a folder."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from citeqa.index.text.normalize import normalize_text


@dataclass(frozen=True)
class Document:
    """A source text. Every offset citeqa ever reports indexes into `text`."""

    id: str
    title: str
    source: str
    text: str
    sha256: str
    # Where the text came from, for locating a quote in the original: media type, page offsets, sections.
    meta: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class SkippedFile:
    source: str
    reason: str


@dataclass
class LoadReport:
    documents: list[Document] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    # The source prefix of documents read from this folder ("<folder name>/"), so indexing the folder again can
    # remove the ones whose files are gone; None when a single file was read.
    origin: str | None = None


class DocumentError(ValueError):
    """A file or text that cannot become a document; the message says why."""


class UnsupportedFormatError(DocumentError):
    """The file is not a kind of document citeqa reads (or its content contradicts its extension)."""


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


TITLE_MAX_CHARS = 300


def title_of(text: str, name: str) -> str:
    """The one rule for a title read from a document's text, whichever way the text arrived (sent as text, or parsed
    from a file that declares no title of its own): its first non-empty line without markdown heading marks, so
    "# Note" is titled "Note" either way. `name` (the document's id or file name) gives the title, without folders
    or extension, when no line has anything left."""
    for line in text.splitlines():
        stripped = line.strip().lstrip("#").strip()
        if stripped:
            return stripped[:TITLE_MAX_CHARS]
    return PurePath(name).stem or "untitled"


def clean_title(title: str | None) -> str | None:
    """A title a file declares (metadata, <title>, its first heading) on one line, or None when nothing is left."""
    if title is None:
        return None
    cleaned = " ".join(title.split())[:TITLE_MAX_CHARS]
    return cleaned or None


def _refuse_non_text(text: str) -> None:
    if "\x00" in text:
        raise DocumentError("binary content (NUL bytes)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: not text in any encoding, and it cannot be hashed or stored
        code_point = ord(text[exc.start])
        raise DocumentError(f"invalid Unicode: a lone surrogate (U+{code_point:04X}) at character {exc.start}") from None


def make_document(doc_id: str, text: str, source: str) -> Document:
    """Validate text and wrap it as a Document, the text kept exactly as given (the evaluation's datasets and tests
    build documents this way). Raises DocumentError with a reason."""
    if not doc_id or doc_id.strip() != doc_id:
        raise DocumentError("document id must be non-empty with no surrounding whitespace")
    _refuse_non_text(text)
    if not text.strip():
        raise DocumentError("empty document")
    return Document(
        id=doc_id,
        title=title_of(text, doc_id),
        source=source,
        text=text,
        sha256=content_hash(text),
    )


def document_from_text(doc_id: str, text: str, source: str) -> Document:
    """Text that arrives as text (the API's JSON, not a file): normalised as every parsed file is (normalize.py),
    so the same words sent as JSON or uploaded as a .txt file become the same document text, hash and title."""
    _refuse_non_text(text)  # before normalising, which would silently drop what makes it not text
    return make_document(doc_id, normalize_text(text), source)


MAX_ID_CHARS = 200
_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:")


def check_document_id(doc_id: str) -> str:
    """An id as a name a person or a client chose (a file name, an `ids` field); raises DocumentError unless it is a
    clean relative path. Ids become parts of URLs and are shown to readers, so anything that could climb out of a
    folder, look absolute, or hide characters is refused rather than rewritten."""
    if not doc_id:
        raise DocumentError("the id is empty")
    if len(doc_id) > MAX_ID_CHARS:
        raise DocumentError(f"the id has {len(doc_id)} characters, more than {MAX_ID_CHARS}")
    if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in doc_id):
        raise DocumentError("the id contains NUL or control characters")
    if doc_id.strip() != doc_id:
        raise DocumentError("the id has leading or trailing whitespace")
    if "\\" in doc_id:
        raise DocumentError("the id contains a backslash; use '/' between folders")
    if doc_id.startswith("/") or _WINDOWS_DRIVE.match(doc_id):
        raise DocumentError("the id is an absolute path; use a relative one such as 'notes/a.pdf'")
    if any(part in ("", ".", "..") for part in doc_id.split("/")):
        raise DocumentError("the id has an empty, '.' or '..' path segment")
    return doc_id


def document_id_for(path: Path, root: Path) -> str:
    """Stable id: the path relative to the corpus root, with forward slashes."""
    return path.relative_to(root).as_posix()
