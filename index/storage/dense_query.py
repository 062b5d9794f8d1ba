"""Cosines of one query vector over a snapshot: small segments scanned exactly (once per query), large ones searched
through their HNSW graph."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from citeqa.index.storage.rows import expand_ranges, sorted_union, top_rows

if TYPE_CHECKING:
    from citeqa.index.storage.snapshot import Snapshot


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
        for s, positions, local in self.snapshot.split_rows(rows, offsets):
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
