"""Hybrid retrieval: FAISS (dense) and BM25 (lexical) candidates fused into one ranking."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

import numpy as np

from citeqa.index.storage.dense_query import DenseQuery
from citeqa.index.storage.lexical_query import LexicalQuery
from citeqa.index.storage.rows import expand_ranges, sorted_union
from citeqa.index.storage.rows import top_rows as _top
from citeqa.index.storage.snapshot import Snapshot
from citeqa.index.text.chunking import Chunk


class SearchMode(StrEnum):
    HYBRID = "hybrid"
    DENSE = "dense"
    LEXICAL = "lexical"


class FusionMethod(StrEnum):
    RRF = "rrf"  # reciprocal rank fusion: sum of 1 / (k + rank)
    WEIGHTED = "weighted"  # convex combination of per-query normalised scores


@dataclass(frozen=True, kw_only=True)
class RetrievalSettings:
    mode: SearchMode = SearchMode.HYBRID
    fusion: FusionMethod = FusionMethod.WEIGHTED
    dense_weight: float = 0.5  # weight of the dense side in fusion; the lexical side gets the rest
    rrf_k: int = 60
    # Taken from each retriever before fusion, whatever the number of results asked for: the fused order of the
    # first results is then the same for /v1/search (top_k 5) and the evaluation (depth 300).
    candidates: int = 300
    # A chunk's dense score mixes the chunk's own vector with its best sentence's: a question usually
    # matches one sentence, whose signal a whole-chunk vector dilutes.
    sentence_weight: float = 0.5
    # Pseudo-relevance feedback on the dense side (0 turns it off): query + weight * mean(top chunks).
    feedback_weight: float = 0.0
    feedback_depth: int = 3

    def __post_init__(self) -> None:
        if not 0.0 <= self.dense_weight <= 1.0 or not 0.0 <= self.sentence_weight <= 1.0:
            raise ValueError("dense_weight and sentence_weight must be between 0 and 1")
        if self.candidates < 1 or self.rrf_k < 1 or self.feedback_depth < 1:
            raise ValueError("candidates, rrf_k and feedback_depth must be positive")
        if self.feedback_weight < 0:
            raise ValueError("feedback_weight must be >= 0")


@dataclass(frozen=True)
class Hit:
    row: int  # the chunk's global row in the snapshot it came from
    score: float  # the fused score that ranks hits (or the single retriever's score)
    dense: float  # cosine similarity of query and passage (its own vector mixed with its best sentence's)
    lexical: float  # BM25 score of the passage
    snapshot: Snapshot = field(repr=False, compare=False)
    # What the learned head ranking (index/ranking/head_ranker.py) reads besides the quote: the two sides of `dense`, and
    # each side's score normalised as weighted fusion normalises it (0 to 1 over the query's candidates).
    chunk_cosine: float = 0.0
    sentence_cosine: float = 0.0
    dense_share: float = 0.0
    lexical_share: float = 0.0

    @cached_property
    def chunk(self) -> Chunk:
        return self.snapshot.chunk(self.row)

    @property
    def doc_id(self) -> str:
        return self.snapshot.doc_id(self.row)


def fuse(
    rows: np.ndarray,
    dense: np.ndarray,
    lexical: np.ndarray,
    dense_ranked: np.ndarray,
    lexical_ranked: np.ndarray,
    settings: RetrievalSettings,
    shares: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Fused scores for `rows` (sorted candidate rows; `dense`/`lexical` are their component scores).

    `dense_ranked`/`lexical_ranked` are each retriever's own ranked candidate list (subsets of rows). `shares`, when
    the caller has them, are `normalised(rows, dense, lexical, dense_ranked)`, not computed again.
    """
    weight = settings.dense_weight
    if settings.fusion is FusionMethod.RRF:
        fused = np.zeros(len(rows))
        for ranked, side_weight in ((dense_ranked, weight), (lexical_ranked, 1.0 - weight)):
            positions = np.searchsorted(rows, ranked)
            fused[positions] += side_weight / (settings.rrf_k + np.arange(1, len(ranked) + 1))
        return fused
    dense_norm, lexical_norm = shares if shares is not None else normalised(rows, dense, lexical, dense_ranked)
    return weight * dense_norm + (1.0 - weight) * lexical_norm


def normalised(
    rows: np.ndarray, dense: np.ndarray, lexical: np.ndarray, dense_ranked: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each side's scores on a common scale: dense min-max over the dense side's own candidate list (a row
    outside it clips to 0), BM25 divided by the query's best."""
    dense_of_ranked = dense[np.searchsorted(rows, dense_ranked)] if len(dense_ranked) else dense
    low, spread = float(dense_of_ranked.min()), float(np.ptp(dense_of_ranked))
    dense_norm = np.clip((dense - low) / spread, 0.0, None) if spread > 0 else np.ones(len(rows))
    lexical_top = float(lexical.max()) if len(lexical) else 0.0
    lexical_norm = lexical / lexical_top if lexical_top > 0 else np.zeros(len(rows))
    return dense_norm, lexical_norm


class Retriever:
    """Candidates from both sides of one snapshot, fused into one ranking."""

    def __init__(self, snapshot: Snapshot, settings: RetrievalSettings) -> None:
        self.snapshot = snapshot
        self.settings = settings

    def dense_sides(self, rows: np.ndarray, dense: DenseQuery) -> tuple[np.ndarray, np.ndarray]:
        """Each chunk row's own cosine and its best evidence unit's (its own again when sentences are off)."""
        chunk_cosines = dense.chunk_cosines(rows)
        if self.settings.sentence_weight == 0.0 or len(rows) == 0:
            return chunk_cosines, chunk_cosines
        first, last = self.snapshot.unit_ranges(rows)
        sizes = last - first
        best_units = chunk_cosines.copy()  # a chunk with no unit (none can be empty in practice) keeps its own
        if sizes.sum():
            cosines = dense.unit_cosines(expand_ranges(first, last))
            starts = np.cumsum(sizes) - sizes  # where each chunk's units begin among them
            has_units = sizes > 0
            best_units[has_units] = np.maximum.reduceat(cosines, starts[has_units])
        return chunk_cosines, best_units

    def _dense_pool(self, dense: DenseQuery, count: int) -> np.ndarray:
        """Sorted unique rows the dense side ranks: the nearest chunks and the chunks of the nearest sentences."""
        pool = dense.nearest_chunks(count)
        if self.settings.sentence_weight > 0:
            return sorted_union(pool, dense.chunks_of_nearest_units(count))
        return sorted_union(pool)

    def search(self, terms: list[str], vector: np.ndarray, top_k: int, mode: SearchMode) -> list[Hit]:
        if self.snapshot.live_chunks == 0:
            return []
        lexical = self._lexical_side(terms)
        hits = self._search(vector, *lexical, top_k, mode)
        if self.settings.feedback_weight > 0 and mode is SearchMode.HYBRID and hits:
            hits = self._search(self._with_feedback(vector, hits), *lexical, top_k, mode)
        return hits

    def _lexical_side(self, terms: list[str]) -> tuple[LexicalQuery, np.ndarray]:
        """The query's BM25 and its ranked candidate rows (those with a positive score)."""
        query = self.snapshot.lexical_query(terms)
        rows, scores = query.candidates(self.settings.candidates)
        ranked = _top(scores, self.settings.candidates)
        return query, rows[ranked][scores[ranked] > 0]

    def _with_feedback(self, vector: np.ndarray, hits: list[Hit]) -> np.ndarray:
        """Pseudo-relevance feedback (Rocchio): move the query vector toward the mean of the first pass's
        best chunks, so the second pass also finds passages that answer in other words."""
        top = np.array([hit.row for hit in hits[: self.settings.feedback_depth]])
        moved = vector + self.settings.feedback_weight * self.snapshot.chunk_vectors(top).mean(axis=0)
        return (moved / max(float(np.linalg.norm(moved)), 1e-9)).astype(np.float32)

    def _search(
        self, vector: np.ndarray, lexical_query: LexicalQuery, lexical_ranked: np.ndarray, top_k: int, mode: SearchMode
    ) -> list[Hit]:
        candidates = self.settings.candidates
        dense_query = self.snapshot.dense_query(vector)
        pool = self._dense_pool(dense_query, candidates)
        rows = sorted_union(pool, lexical_ranked)
        # Once, for every candidate, whichever side found it: a chunk's dense score mixes its own cosine with its
        # best evidence unit's.
        chunk_cosines, unit_cosines = self.dense_sides(rows, dense_query)
        weight = self.settings.sentence_weight
        dense = (1.0 - weight) * chunk_cosines + weight * unit_cosines
        dense_ranked = pool[_top(dense[np.searchsorted(rows, pool)], candidates)]
        lexical = lexical_query.scores_of(rows)
        dense_share, lexical_share = normalised(rows, dense, lexical, dense_ranked)
        if mode is SearchMode.DENSE:
            scores = np.where(np.isin(rows, dense_ranked), dense, -np.inf)
        elif mode is SearchMode.LEXICAL:
            scores = np.where(np.isin(rows, lexical_ranked), lexical, -np.inf)
        else:
            scores = fuse(rows, dense, lexical, dense_ranked, lexical_ranked, self.settings, (dense_share, lexical_share))
        order = np.lexsort((rows, -scores))
        order = order[np.isfinite(scores[order])][:top_k]
        # Each column taken for the chosen rows and made Python numbers at once (an eval asks for hundreds of hits).
        columns = (rows, scores, dense, lexical, chunk_cosines, unit_cosines, dense_share, lexical_share)
        return [
            Hit(row, score, dense_score, lexical_score, self.snapshot, chunk, unit, dense_part, lexical_part)
            for row, score, dense_score, lexical_score, chunk, unit, dense_part, lexical_part in zip(
                *(column[order].tolist() for column in columns), strict=True
            )
        ]
