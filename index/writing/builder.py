"""Turning documents into prepared segments rows (split, units, embed, tokenise) and syncing a collection.

Preparing is the expensive part of a write (the encoder) and needs no lock; the commit that follows is quick.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from citeqa.index.models.embedding import Embedder
from citeqa.index.progress import NO_PROGRESS, Progress, Stage
from citeqa.index.storage.collection import WriteResult
from citeqa.index.storage.manifest import IndexConfig
from citeqa.index.storage.segment_writer import PreparedDocument
from citeqa.index.text.chunking import Chunk, ChunkerSettings, split_document
from citeqa.index.text.documents import Document, SkippedFile
from citeqa.index.text.lexical import LexicalSettings, LexicalTokenizer
from citeqa.index.text.spans import Span, evidence_units

# Characters per encoder call when progress is reported (see progress_slices): about two seconds of encoding on two
# cores, so a write that is asked to stop (a server shutting down, whose grace is 10 s) ends within seconds; a slice
# counted in texts rather than characters could run far past the grace (docs/tuning.md, "Figures behind the code's
# constants").
PROGRESS_SLICE_CHARACTERS = 50_000
ChunkVectors = Literal["encoded", "derived"]
UnitVectors = Literal["encoded", "pooled"]
CHUNK_VECTORS: tuple[ChunkVectors, ...] = ("encoded", "derived")
UNIT_VECTORS: tuple[UnitVectors, ...] = ("encoded", "pooled")
# How much of its chunk's vector a pooled sentence vector gives back (v − share × chunk, renormalised): tokens read in
# context carry the chunk's topic, which pulls a chunk's sentences together. 0 to 0.6 were measured on all five
# datasets in ../shared/data; 0.3 lost least on the worst of them (docs/tuning.md §8).
POOLED_CONTEXT_SHARE = 0.3
# A document with its chunks and its evidence units (sentences), as the preparer splits it.
SplitDocument = tuple[Document, list[Chunk], list[Span]]


@dataclass(frozen=True, kw_only=True)
class IndexSettings:
    """The settings that shape an index's contents (recorded in its manifest)."""

    chunker: ChunkerSettings = field(default_factory=ChunkerSettings)
    lexical: LexicalSettings = field(default_factory=LexicalSettings)
    # Embed each chunk after its document's title, so a chunk deep in a document still carries its topic.
    title_in_passages: bool = True
    # "encoded": each chunk's passage goes through the encoder; "derived": a chunk's vector is the length-weighted
    # mean of its sentences' vectors (and its title's), so only sentences are encoded.
    chunk_vectors: ChunkVectors = "encoded"
    # "encoded": each sentence goes through the encoder on its own; "pooled": a sentence's vector is the mean of its
    # tokens' vectors in the forward pass over the chunk that holds it, so sentences cost no second pass.
    unit_vectors: UnitVectors = "encoded"

    def __post_init__(self) -> None:
        if self.chunk_vectors not in CHUNK_VECTORS:
            raise ValueError(f"chunk_vectors must be one of {', '.join(CHUNK_VECTORS)}, not {self.chunk_vectors!r}")
        if self.unit_vectors not in UNIT_VECTORS:
            raise ValueError(f"unit_vectors must be one of {', '.join(UNIT_VECTORS)}, not {self.unit_vectors!r}")
        if self.chunk_vectors == "derived" and self.unit_vectors == "pooled":
            raise ValueError("CITEQA_UNIT_VECTORS=pooled cannot go with CITEQA_CHUNK_VECTORS=derived")

    def config_for(self, embedder: Embedder) -> IndexConfig:
        chunker: dict[str, object] = {**self.chunker.as_dict(), "title_in_passages": self.title_in_passages}
        if self.chunk_vectors != "encoded":  # recorded only when not the default, so older manifests still agree
            chunker["chunk_vectors"] = self.chunk_vectors
        if self.unit_vectors != "encoded":  # absent in manifests written before pooling: those are encoded
            chunker["unit_vectors"] = self.unit_vectors
            chunker["pooled_context_share"] = POOLED_CONTEXT_SHARE
        return IndexConfig(
            embedder.model_name,
            embedder.fingerprint,
            embedder.dimension,
            chunker,
            self.lexical.as_dict(),
            encoder=embedder.encoder_id,
        )


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


class Preparer:
    """Splits, embeds and tokenises documents for a collection with given index settings."""

    def __init__(self, embedder: Embedder, settings: IndexSettings) -> None:
        self.embedder = embedder
        self.settings = settings
        self.tokenizer = LexicalTokenizer(settings.lexical)

    def prepare(
        self, documents: list[Document], show_progress: bool = False, progress: Progress = NO_PROGRESS
    ) -> list[PreparedDocument]:
        """Split, embed and tokenise `documents`, reporting the splitting and embedding stages to `progress`."""
        if not documents:
            return []
        return self.prepare_split(self.split(documents, progress), show_progress, progress)

    def split(self, documents: list[Document], progress: Progress = NO_PROGRESS) -> list[SplitDocument]:
        """Each document with its chunks and evidence units: the part of preparing that needs no encoder (a Ray
        ingestion runs it in tasks apart from the encoders, index/cluster/)."""
        return split_documents(documents, self.settings, progress)

    def prepare_split(
        self, split: list[SplitDocument], show_progress: bool = False, progress: Progress = NO_PROGRESS
    ) -> list[PreparedDocument]:
        """Embed and tokenise documents already split (`split`), in their order."""
        if not split:
            return []
        ids = [d.id for d, _, _ in split]
        passages = [passage_text(d, c, self.settings.title_in_passages) for d, chunks, _ in split for c in chunks]
        progress.files(ids, Stage.EMBEDDING)
        if self.settings.unit_vectors == "pooled":
            chunk_vectors, unit_vectors = self._pooled(split, passages, progress)
        else:
            chunk_vectors, unit_vectors = self._encoded(split, passages, show_progress, progress)
        terms = self.tokenizer.tokenize(passages)
        prepared, c, u = [], 0, 0
        for document, chunks, units in split:
            prepared.append(
                PreparedDocument(
                    document,
                    chunks,
                    units,
                    np.ascontiguousarray(chunk_vectors[c : c + len(chunks)]),
                    np.ascontiguousarray(unit_vectors[u : u + len(units)]),
                    terms[c : c + len(chunks)],
                )
            )
            c, u = c + len(chunks), u + len(units)
        return prepared

    def _encoded(
        self, split: list[SplitDocument], passages: list[str], show_progress: bool, progress: Progress
    ) -> tuple[np.ndarray, np.ndarray]:
        """Chunk and sentence vectors with every sentence encoded on its own (chunks encoded too, or derived)."""
        unit_texts = [d.text[u.start : u.end] for d, _, units in split for u in units]
        derived = self.settings.chunk_vectors == "derived"
        # Derived chunk vectors need only the sentences, and each document's title once.
        encoded = ([d.title for d, _, _ in split] if derived else passages) + unit_texts
        progress.begin(Stage.EMBEDDING, len(encoded))
        vectors = self._embed(encoded, show_progress, progress)
        progress.end(Stage.EMBEDDING)
        head = len(split) if derived else len(passages)
        unit_vectors = vectors[head:]
        return (self._derive(split, vectors[:head], unit_vectors) if derived else vectors[:head]), unit_vectors

    def _pooled(self, split: list[SplitDocument], passages: list[str], progress: Progress) -> tuple[np.ndarray, np.ndarray]:
        """Chunk vectors, and each sentence's vector pooled from the pass over the chunk that holds it whole with the
        most context around it. A sentence no chunk holds whole, or that falls past the encoder's token limit, is
        encoded on its own."""
        spans: list[list[tuple[int, int]]] = [[] for _ in passages]
        owners: list[tuple[int, int] | None] = []  # per sentence: (passage, its place among that passage's spans)
        unit_texts: list[str] = []
        base = 0
        for document, chunks, units in split:
            starts = [chunk.start for chunk in chunks]
            for unit in units:
                unit_texts.append(document.text[unit.start : unit.end])
                holder = best_holder(chunks, starts, unit)
                if holder is None:
                    owners.append(None)
                    continue
                passage = base + holder
                shift = len(passages[passage]) - len(chunks[holder].text) - chunks[holder].start  # title prefix
                owners.append((passage, len(spans[passage])))
                spans[passage].append((unit.start + shift, unit.end + shift))
            base += len(chunks)
        progress.begin(Stage.EMBEDDING, len(passages))
        chunk_parts, pooled = [], []
        for start, end in progress_slices(passages, progress):
            vectors, span_vectors = self.embedder.embed_spans(passages[start:end], spans[start:end])
            chunk_parts.append(vectors)
            pooled.extend(span_vectors)
            progress.advance(Stage.EMBEDDING, len(vectors))
        progress.end(Stage.EMBEDDING)
        chunk_vectors = np.concatenate(chunk_parts) if chunk_parts else self.embedder.embed([])
        unit_vectors = np.full((len(owners), chunk_vectors.shape[1]), np.nan, dtype=np.float32)
        for u, owner in enumerate(owners):
            if owner is None:  # a sentence no chunk's pass covered: encoded on its own below
                continue
            span_vector = pooled[owner[0]][owner[1]]
            if span_vector is not None and not np.isnan(span_vector[0]):
                # A sentence's tokens carry the chunk's context; giving some back keeps a chunk's sentences apart.
                vector = span_vector - POOLED_CONTEXT_SHARE * chunk_vectors[owner[0]]
                unit_vectors[u] = vector / max(float(np.linalg.norm(vector)), 1e-12)
        alone = np.flatnonzero(np.isnan(unit_vectors[:, 0]))
        if len(alone):
            unit_vectors[alone] = self.embedder.embed([unit_texts[u] for u in alone.tolist()])
        return chunk_vectors, unit_vectors

    def _derive(self, split: list[SplitDocument], title_vectors: np.ndarray, unit_vectors: np.ndarray) -> np.ndarray:
        """Each chunk's vector as the mean of the vectors of the sentences it holds, each weighted by how many of its
        characters lie in the chunk, plus its title's when the passage carries the title; then normalised."""
        rows, u = [], 0
        for (document, chunks, units), title_vector in zip(split, title_vectors, strict=True):
            starts = np.array([unit.start for unit in units], dtype=np.int64)
            ends = np.array([unit.end for unit in units], dtype=np.int64)
            vectors = unit_vectors[u : u + len(units)]
            for chunk in chunks:
                weights = np.clip(np.minimum(ends, chunk.end) - np.maximum(starts, chunk.start), 0, None).astype(np.float32)
                vector = weights @ vectors if len(units) else np.zeros(unit_vectors.shape[1], dtype=np.float32)
                if passage_text(document, chunk, self.settings.title_in_passages) != chunk.text:
                    vector = vector + len(document.title) * title_vector
                rows.append(vector / max(float(np.linalg.norm(vector)), 1e-12))
            u += len(units)
        return np.array(rows, dtype=np.float32).reshape(-1, unit_vectors.shape[1])

    def _embed(self, texts: list[str], show_progress: bool, progress: Progress) -> np.ndarray:
        if progress is NO_PROGRESS:
            # One encoder call for chunks and units together: the encoder sorts the batch by length itself.
            return self.embedder.embed(texts, show_progress=show_progress)
        parts = []
        for start, end in progress_slices(texts, progress):
            parts.append(self.embedder.embed(texts[start:end]))
            progress.advance(Stage.EMBEDDING, len(parts[-1]))
        return np.concatenate(parts) if parts else self.embedder.embed([])


def split_documents(documents: list[Document], settings: IndexSettings, progress: Progress = NO_PROGRESS) -> list[SplitDocument]:
    """Each document with its chunks and evidence units, as `settings` split them (no encoder needed)."""
    progress.begin(Stage.SPLITTING, len(documents))
    progress.files([d.id for d in documents], Stage.SPLITTING)
    split: list[SplitDocument] = []
    for document in documents:
        split.append((document, split_document(document, settings.chunker), evidence_units(document.text)))
        progress.advance(Stage.SPLITTING)
    progress.end(Stage.SPLITTING)
    return split


def progress_slices(texts: list[str], progress: Progress) -> Iterator[tuple[int, int]]:
    """[start, end) ranges of `texts` to encode one call each. Unwatched: one range. Watched (a progress bar, a job):
    ranges of up to PROGRESS_SLICE_CHARACTERS, so progress moves and a write can stop between two of them, while a
    range of short sentences still holds hundreds, enough for sorting by length to keep batches tight."""
    if progress is NO_PROGRESS:
        if texts:
            yield 0, len(texts)
        return
    start, size = 0, 0
    for end, text in enumerate(texts):
        if size and size + len(text) > PROGRESS_SLICE_CHARACTERS:
            yield start, end
            start, size = end, 0
        size += len(text)
    if start < len(texts):
        yield start, len(texts)


def best_holder(chunks: list[Chunk], starts: list[int], unit: Span) -> int | None:
    """The index of the chunk holding `unit` whole with the most characters around it on its shorter side, or None.
    Chunks are sorted by start and overlap only their neighbours, so a few before the unit's start are checked."""
    best, margin = None, -1
    last = bisect.bisect_right(starts, unit.start) - 1
    for i in range(max(last - 3, 0), last + 1):  # on a tie the earlier chunk wins
        chunk = chunks[i]
        if chunk.start <= unit.start and unit.end <= chunk.end:
            room = min(unit.start - chunk.start, chunk.end - unit.end)
            if room > margin:
                best, margin = i, room
    return best


def first_of_each_id(documents: list[Document]) -> tuple[list[Document], list[SkippedFile]]:
    """The first document of each id, and a skipped entry for every later one (a write needs unique ids)."""
    unique: dict[str, Document] = {}
    skipped = []
    for document in documents:
        if document.id in unique:
            skipped.append(SkippedFile(document.source, f"duplicate document id '{document.id}'"))
        else:
            unique[document.id] = document
    return list(unique.values()), skipped


def summarize(result: WriteResult, documents: int, chunks: int, seconds: float) -> BuildSummary:
    """What a folder build reports, from its commit."""
    return BuildSummary(
        documents=documents,
        chunks=chunks,
        added=result.added,
        updated=result.updated,
        unchanged=result.unchanged,
        removed=result.removed,
        seconds=seconds,
        written=result.changed,
    )
