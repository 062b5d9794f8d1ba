"""Building or refreshing an index from a set of documents.

Unchanged documents (same content hash) keep their chunks and vectors; changed ones are re-split and
re-embedded; documents no longer present are dropped. The result is saved as a new version.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from citeqa.index.chunking import Chunk, ChunkerSettings, split_document
from citeqa.index.documents import Document, SkippedFile
from citeqa.index.embedding import Embedder
from citeqa.index.lexical import LexicalSettings
from citeqa.index.manifest import IndexConfig
from citeqa.index.spans import evidence_units
from citeqa.index.store import IndexStore, Unit


@dataclass(frozen=True)
class IndexSettings:
    """The settings that shape an index's contents (recorded in its manifest)."""

    chunker: ChunkerSettings = field(default_factory=ChunkerSettings)
    lexical: LexicalSettings = field(default_factory=LexicalSettings)
    # Embed each chunk after its document's title, so a chunk deep in a document still carries its topic.
    title_in_passages: bool = True

    def config_for(self, embedder: Embedder) -> IndexConfig:
        chunker = self.chunker.as_dict() | {"title_in_passages": self.title_in_passages}
        return IndexConfig(embedder.model_name, embedder.fingerprint, embedder.dimension, chunker, self.lexical.as_dict())


@dataclass
class BuildSummary:
    documents: int = 0
    chunks: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    seconds: float = 0.0
    written: bool = False


def passage_text(document: Document, chunk: Chunk, title_in_passages: bool) -> str:
    """What the embedder and BM25 see for a chunk (the citation still points at chunk.text only)."""
    if title_in_passages and chunk.start > 0 and document.title not in chunk.text:
        return f"{document.title}\n{chunk.text}"
    return chunk.text


def build_store(
    documents: list[Document],
    embedder: Embedder,
    settings: IndexSettings,
    previous: IndexStore | None = None,
    show_progress: bool = False,
) -> tuple[IndexStore, BuildSummary]:
    """Assemble a store for `documents`, reusing chunks and vectors of unchanged ones from `previous`."""
    started = time.perf_counter()
    summary = BuildSummary(documents=len(documents))
    old_hashes = previous.manifest.documents if previous else {}
    kept: list[Document] = []
    seen: set[str] = set()
    chunks, units = _Rows[Chunk](), _Rows[Unit]()
    for document in documents:
        if document.id in seen:
            summary.skipped.append(SkippedFile(document.source, f"duplicate document id '{document.id}'"))
            continue
        seen.add(document.id)
        kept.append(document)
        if previous is not None and old_hashes.get(document.id) == document.sha256:
            summary.unchanged.append(document.id)
            chunk_rows = previous.chunks_of(document.id)
            unit_rows = previous.units_by_document.get(document.id, [])
            chunks.reuse([previous.chunks[r] for r in chunk_rows], chunk_rows)
            units.reuse([previous.units[r] for r in unit_rows], unit_rows)
            continue
        (summary.updated if document.id in old_hashes else summary.added).append(document.id)
        chunks.fresh(split_document(document, settings.chunker))
        units.fresh([Unit(document.id, s.start, s.end) for s in evidence_units(document.text)])
    summary.removed = sorted(set(old_hashes) - seen)

    by_id = {d.id: d for d in kept}
    passages = [passage_text(by_id[c.doc_id], c, settings.title_in_passages) for c in chunks.items]
    unit_texts = [by_id[u.doc_id].text[u.start : u.end] for u in units.items]
    chunk_vectors = chunks.vectors(embedder, passages, previous.vectors if previous else None, show_progress)
    unit_vectors = units.vectors(embedder, unit_texts, previous.unit_vectors if previous else None, show_progress)
    store = IndexStore.assemble(
        settings.config_for(embedder),
        kept,
        chunks.items,
        chunk_vectors,
        passages,
        units.items,
        unit_vectors,
        datetime.now(UTC).isoformat(timespec="seconds"),
    )
    summary.chunks = len(chunks.items)
    summary.seconds = time.perf_counter() - started
    return store, summary


T = TypeVar("T")


class _Rows(Generic[T]):
    """Rows of a new store: each either reused from the previous store (with its vector) or fresh."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self.sources: list[int | None] = []  # row in the previous store, or None to embed

    def reuse(self, items: list[T], previous_rows: list[int]) -> None:
        self.items.extend(items)
        self.sources.extend(previous_rows)

    def fresh(self, items: list[T]) -> None:
        self.items.extend(items)
        self.sources.extend([None] * len(items))

    def vectors(self, embedder: Embedder, texts: list[str], previous: np.ndarray | None, show_progress: bool) -> np.ndarray:
        result = np.zeros((len(self.items), embedder.dimension), dtype=np.float32)
        new_rows = [i for i, source in enumerate(self.sources) if source is None]
        old_rows = [i for i, source in enumerate(self.sources) if source is not None]
        if old_rows and previous is not None:
            result[old_rows] = previous[[self.sources[i] for i in old_rows]]
        if new_rows:
            result[new_rows] = embedder.embed([texts[i] for i in new_rows], show_progress=show_progress)
        return result


def refresh_index(
    index_dir: Path,
    documents: list[Document],
    embedder: Embedder,
    settings: IndexSettings,
    rebuild: bool = False,
    show_progress: bool = False,
) -> BuildSummary:
    """Bring the index at index_dir in line with `documents`; a no-op (nothing written) if nothing changed.

    Raises IndexMismatchError when the existing index was built with other settings and rebuild is False.
    """
    previous = None
    if not rebuild and IndexStore.exists(index_dir):
        previous = IndexStore.load(index_dir, settings.config_for(embedder))
    store, summary = build_store(documents, embedder, settings, previous, show_progress)
    if previous is None or summary.added or summary.updated or summary.removed:
        store.save(index_dir)
        summary.written = True
    return summary
