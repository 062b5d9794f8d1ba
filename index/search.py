"""Hybrid retrieval: FAISS (dense) and BM25 (lexical) candidates fused into one ranking."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from citeqa.index.chunking import Chunk
from citeqa.index.embedding import Embedder
from citeqa.index.store import IndexStore


class SearchMode(StrEnum):
    HYBRID = "hybrid"
    DENSE = "dense"
    LEXICAL = "lexical"


class FusionMethod(StrEnum):
    RRF = "rrf"  # reciprocal rank fusion: sum of 1 / (k + rank)
    WEIGHTED = "weighted"  # convex combination of per-query normalised scores


@dataclass(frozen=True)
class RetrievalSettings:
    mode: SearchMode = SearchMode.HYBRID
    fusion: FusionMethod = FusionMethod.WEIGHTED
    dense_weight: float = 0.5  # weight of the dense side in fusion; the lexical side gets the rest
    rrf_k: int = 60
    candidates: int = 100  # taken from each retriever before fusion
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
    row: int  # the chunk's row in the store (FAISS id)
    chunk: Chunk
    score: float  # the fused score that ranks hits (or the single retriever's score)
    dense: float  # cosine similarity of query and passage
    lexical: float  # BM25 score of the passage


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(scores))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def _minmax(values: np.ndarray) -> np.ndarray:
    spread = float(values.max() - values.min()) if len(values) else 0.0
    return (values - values.min()) / spread if spread > 0 else np.ones_like(values)


def fuse(
    rows: np.ndarray,
    dense: np.ndarray,
    lexical: np.ndarray,
    dense_ranked: np.ndarray,
    lexical_ranked: np.ndarray,
    settings: RetrievalSettings,
) -> np.ndarray:
    """Fused scores for `rows` (sorted candidate rows; `dense`/`lexical` are their component scores).

    `dense_ranked`/`lexical_ranked` are each retriever's own ranked candidate list (subsets of rows).
    """
    weight = settings.dense_weight
    if settings.fusion is FusionMethod.RRF:
        fused = np.zeros(len(rows))
        for ranked, side_weight in ((dense_ranked, weight), (lexical_ranked, 1.0 - weight)):
            positions = np.searchsorted(rows, ranked)
            fused[positions] += side_weight / (settings.rrf_k + np.arange(1, len(ranked) + 1))
        return fused
    # Normalise against each retriever's own candidate list; a row outside the dense list clips to 0.
    dense_of_ranked = dense[np.searchsorted(rows, dense_ranked)] if len(dense_ranked) else dense
    low, spread = float(dense_of_ranked.min()), float(np.ptp(dense_of_ranked))
    dense_norm = np.clip((dense - low) / spread, 0.0, None) if spread > 0 else np.ones(len(rows))
    lexical_top = float(lexical.max()) if len(lexical) else 0.0
    lexical_norm = lexical / lexical_top if lexical_top > 0 else np.zeros(len(rows))
    return weight * dense_norm + (1.0 - weight) * lexical_norm


class Retriever:
    def __init__(self, store: IndexStore, embedder: Embedder, settings: RetrievalSettings | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings or RetrievalSettings()

    def dense_scores(self, rows: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """Dense score of each chunk row: its own cosine mixed with its best evidence unit's."""
        chunk_cosines = self.store.vectors[rows] @ vector
        weight = self.settings.sentence_weight
        if weight == 0.0 or len(rows) == 0:
            return chunk_cosines
        unit_lists = [self.store.units_of_chunk[r] for r in rows.tolist()]
        sizes = np.array([len(units) for units in unit_lists])
        best_units = chunk_cosines.copy()  # a chunk with no unit (none can be empty in practice) keeps its own
        if sizes.sum():
            cosines = self.store.unit_vectors[np.concatenate(unit_lists)] @ vector
            starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
            has_units = sizes > 0
            best_units[has_units] = np.maximum.reduceat(cosines, starts[has_units])
        return (1.0 - weight) * chunk_cosines + weight * best_units

    def _dense_candidates(self, vector: np.ndarray, count: int) -> np.ndarray:
        """Rows ranked by dense score, from the nearest chunks and the chunks of the nearest sentences."""
        query = vector.reshape(1, -1)
        _, chunk_rows = self.store.dense.search(query, min(count, self.store.dense.ntotal))
        pool = set(chunk_rows[0][chunk_rows[0] >= 0].tolist())
        if self.settings.sentence_weight > 0 and self.store.unit_dense.ntotal:
            _, unit_rows = self.store.unit_dense.search(query, min(count, self.store.unit_dense.ntotal))
            for unit_row in unit_rows[0][unit_rows[0] >= 0].tolist():
                pool.update(self.store.chunks_of_unit[unit_row])
        rows = np.array(sorted(pool), dtype=np.int64)
        return rows[_top(self.dense_scores(rows, vector), count)]

    def search(self, query: str, top_k: int, mode: SearchMode | None = None, query_vector: np.ndarray | None = None) -> list[Hit]:
        mode = mode or self.settings.mode
        if not self.store.chunks:
            return []
        vector = self.embedder.embed_query(query) if query_vector is None else query_vector
        lexical_all = self.store.lexical.scores(query)
        hits = self._search(vector, lexical_all, top_k, mode)
        if self.settings.feedback_weight > 0 and mode is SearchMode.HYBRID and hits:
            hits = self._search(self._with_feedback(vector, hits), lexical_all, top_k, mode)
        return hits

    def _with_feedback(self, vector: np.ndarray, hits: list[Hit]) -> np.ndarray:
        """Pseudo-relevance feedback (Rocchio): move the query vector toward the mean of the first pass's
        best chunks, so the second pass also finds passages that answer in other words."""
        top_rows = [hit.row for hit in hits[: self.settings.feedback_depth]]
        centroid = self.store.vectors[top_rows].mean(axis=0)
        moved = vector + self.settings.feedback_weight * centroid
        return (moved / max(float(np.linalg.norm(moved)), 1e-9)).astype(np.float32)

    def _search(self, vector: np.ndarray, lexical_all: np.ndarray, top_k: int, mode: SearchMode) -> list[Hit]:
        candidates = max(self.settings.candidates, top_k)
        dense_ranked = self._dense_candidates(vector, candidates)
        lexical_ranked = _top(lexical_all, candidates)
        lexical_ranked = lexical_ranked[lexical_all[lexical_ranked] > 0]

        rows = np.union1d(dense_ranked, lexical_ranked)
        dense = self.dense_scores(rows, vector)  # for every candidate, whichever side found it
        lexical = lexical_all[rows]
        if mode is SearchMode.DENSE:
            scores = np.where(np.isin(rows, dense_ranked), dense, -np.inf)
        elif mode is SearchMode.LEXICAL:
            scores = np.where(np.isin(rows, lexical_ranked), lexical, -np.inf)
        else:
            scores = fuse(rows, dense, lexical, dense_ranked, lexical_ranked, self.settings)
        order = [i for i in np.lexsort((rows, -scores)) if np.isfinite(scores[i])][:top_k]
        return [
            Hit(int(rows[i]), self.store.chunks[int(rows[i])], float(scores[i]), float(dense[i]), float(lexical[i]))
            for i in order
        ]
