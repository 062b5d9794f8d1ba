"""One committed state of a collection, as searches see it from start to end.

A snapshot is a list of immutable segments plus, for each, which of its chunks are still live. Chunks are
addressed by a global row: segment offset + local row, in snapshot order. BM25 statistics (live chunk count,
average length, document frequency) are collection-wide and exact over live chunks, so a score does not
depend on how the collection happens to be split into segments.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import faiss
import numpy as np

from citeqa.index.storage.dense_query import DenseQuery
from citeqa.index.storage.hnsw import live_selector
from citeqa.index.storage.lexical_query import LexicalQuery, TermPostings
from citeqa.index.storage.segment_reader import SegmentReader
from citeqa.index.text.chunking import Chunk
from citeqa.index.text.documents import Document
from citeqa.index.text.lexical import LexicalSettings, bm25_idf, bm25_length_norms


@dataclass(frozen=True)
class LiveSegment:
    reader: SegmentReader
    live: np.ndarray | None  # bool per chunk; None when every chunk is live
    live_units: np.ndarray | None
    selector: faiss.IDSelector | None = field(init=False, default=None)  # the live rows, for approximate search

    def __post_init__(self) -> None:
        if self.live is not None and self.reader.ann is not None:
            object.__setattr__(self, "selector", live_selector(self.live))


IDF_CACHED_TERMS = 100_000  # terms whose IDF a snapshot keeps (about 100 bytes each)


class Snapshot:
    def __init__(self, generation: int, segments: list[LiveSegment], lexical: LexicalSettings) -> None:
        self.generation = generation
        self.segments = segments
        self.lexical = lexical
        sizes = [s.reader.chunk_count for s in segments]
        unit_sizes = [len(s.reader.units) for s in segments]
        self.offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        self.unit_offsets = np.concatenate(([0], np.cumsum(unit_sizes))).astype(np.int64)
        self.live_chunks = sum(int(s.live.sum()) if s.live is not None else s.reader.chunk_count for s in segments)
        total_length = sum(
            float(s.reader.lengths[s.live].sum()) if s.live is not None else float(s.reader.lengths.sum()) for s in segments
        )
        self.average_length = total_length / self.live_chunks if self.live_chunks else 1.0
        self._norms: dict[int, np.ndarray] = {}
        # Term → IDF over this snapshot's live chunks. A query asks for its terms' IDF up to four times (BM25, quote
        # scores, the quote selector, a speaker's name); each answer would walk the term's postings again.
        self._idf: dict[str, float] = {}
        self._readers = {s.reader.name: s.reader for s in segments}

    # -- addressing -------------------------------------------------------------------------------

    def split_rows(self, rows: np.ndarray, offsets: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """(segment index, positions in `rows`, local rows) for each segment that `rows` touch."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(self.segments) == 1:  # the common case after a merge: every row is the one segment's
            return [(0, np.arange(len(rows)), rows - offsets[0])] if len(rows) else []
        which = np.searchsorted(offsets, rows, side="right") - 1
        return [(int(s), np.flatnonzero(which == s), rows[which == s] - offsets[s]) for s in np.unique(which)]

    def reader(self, name: str) -> SegmentReader | None:
        """The reader of the segment called `name`, if this snapshot holds it."""
        return self._readers.get(name)

    def _reader_of(self, row: int) -> tuple[SegmentReader, int]:
        """The segment reader holding a global chunk row, and the row's number in it."""
        if len(self.segments) == 1:  # the common case after a merge
            return self.segments[0].reader, int(row)
        s = int(np.searchsorted(self.offsets, row, side="right") - 1)
        return self.segments[s].reader, int(row - self.offsets[s])

    def chunk(self, row: int) -> Chunk:
        reader, local = self._reader_of(row)
        return reader.chunk(local)

    def doc_id(self, row: int) -> str:
        reader, local = self._reader_of(row)
        return reader.doc_id(int(reader.chunks[local, 0]))

    def document_of(self, row: int) -> Document:
        reader, local = self._reader_of(row)
        return reader.document(int(reader.chunks[local, 0]))

    def chunk_vectors(self, rows: np.ndarray) -> np.ndarray:
        return self._gather(rows, self.offsets, "chunk_vectors")

    def unit_vectors(self, unit_rows: np.ndarray) -> np.ndarray:
        return self._gather(unit_rows, self.unit_offsets, "unit_vectors")

    def _gather(self, rows: np.ndarray, offsets: np.ndarray, table: str) -> np.ndarray:
        """Rows of a per-segment vector table (chunk_vectors or unit_vectors), as one float32 array."""
        if len(self.segments) == 1:  # one fancy index, no copy through a staging array
            return np.asarray(getattr(self.segments[0].reader, table)[np.asarray(rows, dtype=np.int64)], dtype=np.float32)
        out = np.zeros((len(rows), self._dimension()), dtype=np.float32)
        for s, positions, local in self.split_rows(rows, offsets):
            out[positions] = getattr(self.segments[s].reader, table)[local]
        return out

    def unit_ranges(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each chunk row, [first, last) global rows of the evidence units that overlap it (in text order)."""
        first = np.zeros(len(rows), dtype=np.int64)
        last = np.zeros(len(rows), dtype=np.int64)
        for s, positions, local in self.split_rows(rows, self.offsets):
            bounds = self.segments[s].reader.chunks[local, 4:6] + self.unit_offsets[s]
            first[positions], last[positions] = bounds[:, 0], bounds[:, 1]
        return first, last

    def chunk_spans(self, rows: np.ndarray) -> np.ndarray:
        """(n, 2) int64: start and end of each chunk row in its document's text."""
        out = np.zeros((len(rows), 2), dtype=np.int64)
        for s, positions, local in self.split_rows(rows, self.offsets):
            out[positions] = self.segments[s].reader.chunks[local, 2:4]
        return out

    def unit_spans(self, unit_rows: np.ndarray) -> np.ndarray:
        """(n, 2) int64: start and end of each unit in its document's text."""
        out = np.zeros((len(unit_rows), 2), dtype=np.int64)
        for s, positions, local in self.split_rows(unit_rows, self.unit_offsets):
            out[positions] = self.segments[s].reader.units[local, 1:3]
        return out

    def previous_units(self, unit_rows: np.ndarray) -> np.ndarray:
        """The global row of the unit before each one in the same document, -1 for a document's first (the units
        of a document are stored in text order)."""
        out = np.full(len(unit_rows), -1, dtype=np.int64)
        for s, positions, local in self.split_rows(unit_rows, self.unit_offsets):
            documents = self.segments[s].reader.units[:, 0]
            before = np.maximum(local - 1, 0)
            same = (local > 0) & (documents[before] == documents[local])
            out[positions[same]] = local[same] - 1 + self.unit_offsets[s]
        return out

    def unit_terms(self, unit_rows: np.ndarray, tokenize: Callable[[list[str]], list[list[str]]]) -> list[tuple[str, ...]]:
        """The stemmed terms of each unit, tokenised once per segment and kept (segments never change; see
        SegmentReader.unit_terms)."""
        out: list[tuple[str, ...]] = [() for _ in range(len(unit_rows))]
        for s, positions, local in self.split_rows(unit_rows, self.unit_offsets):
            for position, terms in zip(
                positions.tolist(), self.segments[s].reader.unit_terms(local.tolist(), tokenize), strict=True
            ):
                out[position] = terms
        return out

    def _dimension(self) -> int:
        for s in self.segments:
            return int(s.reader.chunk_vectors.shape[1])
        return 0

    # -- dense ------------------------------------------------------------------------------------

    def dense_query(self, vector: np.ndarray) -> DenseQuery:
        return DenseQuery(self, vector)

    def nearest_chunks(self, vector: np.ndarray, count: int) -> np.ndarray:
        return self.dense_query(vector).nearest_chunks(count)

    def chunks_of_nearest_units(self, vector: np.ndarray, count: int) -> np.ndarray:
        return self.dense_query(vector).chunks_of_nearest_units(count)

    # -- lexical ----------------------------------------------------------------------------------

    def lexical_query(self, terms: list[str]) -> LexicalQuery:
        """BM25 (Lucene form) of the query `terms` over live chunks. Only postings of the query's terms are read,
        so the cost follows the terms' frequency, not the collection's size."""
        postings = []
        for term, repeats in Counter(terms).items():  # a term asked twice counts twice, as in classic BM25
            rows, tfs, norms = [], [], []
            for s, segment in enumerate(self.segments):
                reader = segment.reader
                term_id = reader.vocabulary.get(term)
                if term_id is None:
                    continue
                lo, hi = int(reader.term_ptr[term_id]), int(reader.term_ptr[term_id + 1])
                local, term_tfs = np.asarray(reader.post_rows[lo:hi]), np.asarray(reader.post_tfs[lo:hi])
                if segment.live is not None:
                    alive = segment.live[local]
                    local, term_tfs = local[alive], term_tfs[alive]
                rows.append(local.astype(np.int64) + self.offsets[s])
                tfs.append(term_tfs)
                norms.append(self._length_norms(s)[local])
            frequency = sum(len(r) for r in rows)
            self._remember_idf(term, frequency)
            if frequency:
                weight = repeats * self.idf_from(frequency)
                postings.append(TermPostings(weight, np.concatenate(rows), np.concatenate(tfs), np.concatenate(norms)))
        return LexicalQuery(postings, int(self.offsets[-1]))

    def _length_norms(self, s: int) -> np.ndarray:
        """BM25's length normalisation k1 * (1 - b + b * length / average) of each chunk of segment s, computed
        once per snapshot (the average is the snapshot's) rather than for each posting of each query."""
        norms = self._norms.get(s)
        if norms is None:
            settings, lengths = self.lexical, self.segments[s].reader.lengths
            norms = self._norms[s] = bm25_length_norms(lengths, self.average_length, settings.k1, settings.b)
        return norms

    def idf_from(self, frequency: int) -> float:
        """BM25's IDF of a term held by `frequency` live chunks."""
        return bm25_idf(self.live_chunks, frequency)

    def idf(self, terms: set[str]) -> dict[str, float]:
        """Collection-wide inverse document frequency of each term over live chunks (unseen terms get the most)."""
        weights = {}
        for term in terms:
            weight = self._idf.get(term)
            weights[term] = weight if weight is not None else self._remember_idf(term, self._live_frequency(term))
        return weights

    def _live_frequency(self, term: str) -> int:
        """How many live chunks hold `term`."""
        frequency = 0
        for segment in self.segments:
            term_id = segment.reader.vocabulary.get(term)
            if term_id is None:
                continue
            local = np.asarray(segment.reader.post_rows[segment.reader.term_ptr[term_id] : segment.reader.term_ptr[term_id + 1]])
            frequency += int(segment.live[local].sum()) if segment.live is not None else len(local)
        return frequency

    def _remember_idf(self, term: str, frequency: int) -> float:
        weight = self.idf_from(frequency)
        if len(self._idf) >= IDF_CACHED_TERMS:  # queries bring arbitrary words: start over rather than grow
            self._idf.clear()
        self._idf[term] = weight
        return weight
