"""One committed state of a collection, as searches see it from start to end.

A snapshot is a list of immutable segments plus, for each, which of its chunks are still live. Chunks are
addressed by a global row: segment offset + local row, in snapshot order. BM25 statistics (live chunk count,
average length, document frequency) are collection-wide and exact over live chunks, so a score does not
depend on how the collection happens to be split into segments.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import faiss
import numpy as np

from citeqa.index.storage.segment import SegmentReader, expand_ranges, live_selector
from citeqa.index.text.chunking import Chunk
from citeqa.index.text.documents import Document
from citeqa.index.text.lexical import LexicalSettings


@dataclass(frozen=True)
class LiveSegment:
    reader: SegmentReader
    live: np.ndarray | None  # bool per chunk; None when every chunk is live
    live_units: np.ndarray | None
    selector: faiss.IDSelector | None = field(init=False, default=None)  # the live rows, for approximate search

    def __post_init__(self) -> None:
        if self.live is not None and self.reader.ann is not None:
            object.__setattr__(self, "selector", live_selector(self.live))


def top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def sorted_union(*arrays: np.ndarray) -> np.ndarray:
    """The distinct values of the arrays, ascending (np.union1d / np.unique of their concatenation). A sort is used:
    np.unique's hashing path costs about five times as much on the few hundred rows a query handles."""
    values = np.sort(np.concatenate(arrays)) if arrays else np.zeros(0, dtype=np.int64)
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if len(values) else values


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

    # -- addressing -------------------------------------------------------------------------------

    def _split(self, rows: np.ndarray, offsets: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """(segment index, positions in `rows`, local rows) for each segment that `rows` touch."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(self.segments) == 1:  # the common case after a merge: every row is the one segment's
            return [(0, np.arange(len(rows)), rows - offsets[0])] if len(rows) else []
        which = np.searchsorted(offsets, rows, side="right") - 1
        return [(int(s), np.flatnonzero(which == s), rows[which == s] - offsets[s]) for s in np.unique(which)]

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
        for s, positions, local in self._split(rows, offsets):
            out[positions] = getattr(self.segments[s].reader, table)[local]
        return out

    def unit_ranges(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each chunk row, [first, last) global rows of the evidence units that overlap it (in text order)."""
        first = np.zeros(len(rows), dtype=np.int64)
        last = np.zeros(len(rows), dtype=np.int64)
        for s, positions, local in self._split(rows, self.offsets):
            bounds = self.segments[s].reader.chunks[local, 4:6] + self.unit_offsets[s]
            first[positions], last[positions] = bounds[:, 0], bounds[:, 1]
        return first, last

    def chunk_spans(self, rows: np.ndarray) -> np.ndarray:
        """(n, 2) int64: start and end of each chunk row in its document's text."""
        out = np.zeros((len(rows), 2), dtype=np.int64)
        for s, positions, local in self._split(rows, self.offsets):
            out[positions] = self.segments[s].reader.chunks[local, 2:4]
        return out

    def unit_spans(self, unit_rows: np.ndarray) -> np.ndarray:
        """(n, 2) int64: start and end of each unit in its document's text."""
        out = np.zeros((len(unit_rows), 2), dtype=np.int64)
        for s, positions, local in self._split(unit_rows, self.unit_offsets):
            out[positions] = self.segments[s].reader.units[local, 1:3]
        return out

    def previous_units(self, unit_rows: np.ndarray) -> np.ndarray:
        """The global row of the unit before each one in the same document, -1 for a document's first (the units
        of a document are stored in text order)."""
        out = np.full(len(unit_rows), -1, dtype=np.int64)
        for s, positions, local in self._split(unit_rows, self.unit_offsets):
            documents = self.segments[s].reader.units[:, 0]
            before = np.maximum(local - 1, 0)
            same = (local > 0) & (documents[before] == documents[local])
            out[positions[same]] = local[same] - 1 + self.unit_offsets[s]
        return out

    def unit_terms(self, unit_rows: np.ndarray, tokenize: Callable[[list[str]], list[list[str]]]) -> list[tuple[str, ...]]:
        """The stemmed terms of each unit, tokenised once per segment and kept (segments never change; see
        SegmentReader.unit_terms)."""
        out: list[tuple[str, ...]] = [() for _ in range(len(unit_rows))]
        for s, positions, local in self._split(unit_rows, self.unit_offsets):
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
            norms = self._norms[s] = settings.k1 * (1 - settings.b + settings.b * lengths / self.average_length)
        return norms

    def idf_from(self, frequency: int) -> float:
        n = self.live_chunks
        return math.log(1.0 + (n - frequency + 0.5) / (frequency + 0.5))

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


class DenseQuery:
    """Cosines of one query vector over a snapshot. A small (exactly searched) segment's chunks and units are each
    scored in one pass over all of them, kept for the query: finding the nearest chunks and units and scoring the
    candidates then read those scores instead of gathering vectors and multiplying again. Large segments are
    searched through their graph and score only the rows asked for (their unit vectors are never scanned; see
    docs/storage.md)."""

    def __init__(self, snapshot: Snapshot, vector: np.ndarray) -> None:
        self.snapshot = snapshot
        self.vector = vector
        self._chunk_scores: dict[int, np.ndarray] = {}
        self._unit_scores: dict[int, np.ndarray] = {}

    def _scanned(self, s: int, table: str) -> np.ndarray | None:
        """Cosines of every row of segment s's `table` (chunk_vectors or unit_vectors); None for a large segment."""
        reader = self.snapshot.segments[s].reader
        if reader.ann is not None:
            return None
        kept = self._chunk_scores if table == "chunk_vectors" else self._unit_scores
        scores = kept.get(s)
        if scores is None:
            scores = kept[s] = np.asarray(getattr(reader, table) @ self.vector)
        return scores

    def _cosines(self, rows: np.ndarray, offsets: np.ndarray, table: str) -> np.ndarray:
        out = np.zeros(len(rows), dtype=np.float32)
        for s, positions, local in self.snapshot._split(rows, offsets):
            scanned = self._scanned(s, table)
            vectors = getattr(self.snapshot.segments[s].reader, table)
            out[positions] = scanned[local] if scanned is not None else np.asarray(vectors[local]) @ self.vector
        return out

    def chunk_cosines(self, rows: np.ndarray) -> np.ndarray:
        return self._cosines(rows, self.snapshot.offsets, "chunk_vectors")

    def unit_cosines(self, unit_rows: np.ndarray) -> np.ndarray:
        return self._cosines(unit_rows, self.snapshot.unit_offsets, "unit_vectors")

    def nearest_chunks(self, count: int) -> np.ndarray:
        """Global rows of the live chunks nearest to the vector, best first (exact, or approximate in large segments)."""
        rows, scores = [], []
        for s, segment in enumerate(self.snapshot.segments):
            all_scores = self._scanned(s, "chunk_vectors")
            if all_scores is None:
                local_scores, local = segment.reader.nearest(self.vector, count, segment.selector)
            else:
                if segment.live is not None:
                    all_scores = np.where(segment.live, all_scores, -np.inf)
                local = top_rows(all_scores, count)
                local = local[np.isfinite(all_scores[local])]
                local_scores = all_scores[local]
            rows.append(local[:count] + self.snapshot.offsets[s])
            scores.append(local_scores[:count])
        if not rows:
            return np.zeros(0, dtype=np.int64)
        merged_rows, merged_scores = np.concatenate(rows), np.concatenate(scores)
        return merged_rows[top_rows(merged_scores, count)]

    def chunks_of_nearest_units(self, count: int) -> np.ndarray:
        """Global chunk rows holding the `count` nearest live units. Large (approximate) segments are left out: their
        unit vectors are read for scoring candidates only, never scanned (see docs/storage.md)."""
        rows, scores = [], []
        for s, segment in enumerate(self.snapshot.segments):
            if not len(segment.reader.units):
                continue
            all_scores = self._scanned(s, "unit_vectors")
            if all_scores is None:
                continue
            if segment.live_units is not None:
                all_scores = np.where(segment.live_units, all_scores, -np.inf)
            local = top_rows(all_scores, count)
            local = local[np.isfinite(all_scores[local])]
            rows.append((s, local))
            scores.append(all_scores[local])
        if not rows:
            return np.zeros(0, dtype=np.int64)
        segments = np.concatenate([np.full(len(local), s, dtype=np.int64) for s, local in rows])
        units = np.concatenate([local for _, local in rows])
        best = top_rows(np.concatenate(scores), count)
        chunk_rows = []
        for s in np.unique(segments[best]).tolist():
            bounds = self.snapshot.segments[s].reader.units[units[best][segments[best] == s], 3:5] + self.snapshot.offsets[s]
            chunk_rows.append(expand_ranges(bounds[:, 0], bounds[:, 1]))
        return sorted_union(*chunk_rows)


# Below this many postings in all, a query's terms are scored exhaustively; above it, terms that cannot lift a chunk
# into the candidates on their own are only looked up for the chunks the others found (see LexicalQuery).
EXHAUSTIVE_POSTINGS = 20_000


@dataclass(frozen=True)
class TermPostings:
    """One query term's live postings across the snapshot: global rows ascending, raw tf and length norm of each."""

    weight: float  # repeats * idf: the most the term adds to a chunk's score, as tf / (tf + norm) < 1
    rows: np.ndarray
    tfs: np.ndarray
    norms: np.ndarray

    def contributions(self, positions: slice | np.ndarray = slice(None)) -> np.ndarray:
        tfs = self.tfs[positions]
        return self.weight * (tfs / (tfs + self.norms[positions]))

    def scores_of(self, rows: np.ndarray) -> np.ndarray:
        """The term's contribution to each of `rows` (sorted or not), 0 where the chunk lacks the term."""
        positions = np.minimum(np.searchsorted(self.rows, rows), len(self.rows) - 1)
        found = self.rows[positions] == rows
        out = np.zeros(len(rows), dtype=np.float64)
        out[found] = self.contributions(positions[found])
        return out


class LexicalQuery:
    """BM25 of one query's terms: its best candidates, and the exact score of any chunk.

    Candidates prune as MaxScore does (Turtle and Flood, 1995): the full scores of the chunks holding the rarest
    terms give a score that the `count`-th best chunk reaches at least; the terms whose most possible contribution
    sums below it ("optional" terms: the most frequent, with the lowest idf) cannot bring a chunk into the top
    `count` alone, so only chunks holding another term are scored, the optional terms looked up for them. The
    candidates hold the exact top `count` with exact scores; common query words at 1M chunks no longer cost a pass
    over all their postings."""

    def __init__(self, postings: list[TermPostings], total_rows: int) -> None:
        self.postings = postings
        self.total_rows = total_rows

    def scores_of(self, rows: np.ndarray) -> np.ndarray:
        scores = np.zeros(len(rows), dtype=np.float64)
        for term in self.postings:
            scores += term.scores_of(rows)
        return scores.astype(np.float32)

    def candidates(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows ascending, exact scores) of chunks including the `count` best (every matching chunk when few)."""
        if not self.postings:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if sum(len(t.rows) for t in self.postings) <= EXHAUSTIVE_POSTINGS:
            return self._accumulate(self.postings)
        seed, seen = [], 0
        for term in sorted(self.postings, key=lambda t: len(t.rows)):  # rarest first, until `count` chunks are in
            seed.append(term.rows)
            seen += len(term.rows)
            if seen >= count:
                break
        seed_rows = sorted_union(*seed)
        if len(seed_rows) < count:
            return self._accumulate(self.postings)
        floor = float(np.partition(self.scores_of(seed_rows), len(seed_rows) - count)[len(seed_rows) - count])
        optional, bound = [], 0.0
        for term in sorted(self.postings, key=lambda t: t.weight):
            if bound + term.weight >= floor:
                break
            optional.append(term)
            bound += term.weight
        if not optional:
            return self._accumulate(self.postings)
        rows, scores = self._accumulate([t for t in self.postings if not any(t is o for o in optional)])
        if len(rows) >= count:  # scores so far are lower bounds of the full ones: the count-th best is a floor too
            floor = max(floor, float(np.partition(scores, len(rows) - count)[len(rows) - count]))
        scores = scores.astype(np.float64)
        for term in reversed(optional):  # the largest possible contributions first, pruning as the bound shrinks
            reachable = scores + bound >= floor  # the rest stay below the floor whatever optional terms they hold
            rows, scores = rows[reachable], scores[reachable]
            scores += term.scores_of(rows)
            bound -= term.weight
        return rows, scores.astype(np.float32)

    def _accumulate(self, postings: list[TermPostings]) -> tuple[np.ndarray, np.ndarray]:
        """Every chunk holding one of `postings`' terms, with the sum of those terms' contributions."""
        rows = np.concatenate([t.rows for t in postings])
        scores = np.concatenate([t.contributions() for t in postings])
        if len(rows) * 16 < self.total_rows:  # few postings: sorting them is cheaper than a pass over every row
            unique, inverse = np.unique(rows, return_inverse=True)
            return unique, np.bincount(inverse, weights=scores).astype(np.float32)
        # Many postings in a large collection: one accumulator over all rows (sorting 250k postings took 20 ms at 1M)
        summed = np.bincount(rows, weights=scores, minlength=self.total_rows)
        found = np.flatnonzero(summed)
        return found, summed[found].astype(np.float32)
