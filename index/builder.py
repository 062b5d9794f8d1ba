"""Building or refreshing an index from a set of documents.

Unchanged documents (same content hash) keep their chunks and vectors; changed ones are re-split and
re-embedded; documents no longer present are dropped. The result is saved as a new version.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from index.chunking import Chunk, ChunkerSettings, split_document
from index.documents import Document, SkippedFile
from index.embedding import Embedder
from index.lexical import LexicalSettings
from index.manifest import IndexConfig
from index.store import IndexStore


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
    old_vectors = previous.vectors if previous else None
    seen: set[str] = set()
    kept: list[Document] = []

    chunks: list[Chunk] = []
    vector_rows: list[np.ndarray | None] = []
    to_embed: list[int] = []
    for document in documents:
        if document.id in seen:
            summary.skipped.append(SkippedFile(document.source, f"duplicate document id '{document.id}'"))
            continue
        seen.add(document.id)
        kept.append(document)
        if previous is not None and old_hashes.get(document.id) == document.sha256:
            summary.unchanged.append(document.id)
            for row in previous.chunks_of(document.id):
                chunks.append(previous.chunks[row])
                vector_rows.append(old_vectors[row])
            continue
        (summary.updated if document.id in old_hashes else summary.added).append(document.id)
        for chunk in split_document(document, settings.chunker):
            to_embed.append(len(chunks))
            chunks.append(chunk)
            vector_rows.append(None)
    summary.removed = sorted(set(old_hashes) - seen)
    by_id = {d.id: d for d in kept}
    passages = [passage_text(by_id[c.doc_id], c, settings.title_in_passages) for c in chunks]

    fresh = embedder.embed([passages[i] for i in to_embed], show_progress=show_progress)
    for position, row in enumerate(to_embed):
        vector_rows[row] = fresh[position]
    vectors = np.vstack(vector_rows) if vector_rows else np.zeros((0, embedder.dimension), np.float32)

    store = IndexStore.assemble(
        settings.config_for(embedder), kept, chunks, vectors, passages, datetime.now(UTC).isoformat(timespec="seconds")
    )
    summary.chunks = len(chunks)
    summary.seconds = time.perf_counter() - started
    return store, summary


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
