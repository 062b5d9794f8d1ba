"""BM25 of one query over a snapshot's live postings: its best candidates, pruned as MaxScore prunes, and the exact
score of any chunk."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from citeqa.index.storage.rows import sorted_union
from citeqa.index.text.lexical import bm25_saturation

# Below this many postings in all, a query's terms are scored exhaustively; above it, terms that cannot lift a chunk
# into the candidates on their own are only looked up for the chunks the others found (see LexicalQuery).
EXHAUSTIVE_POSTINGS = 20_000
# Postings per row below which a query's postings are summed by sorting them rather than by an accumulator over
# every row of the snapshot (one pass over all rows costs more than sorting a few postings; docs/tuning.md).
SORTED_SUM_RATIO = 16


@dataclass(frozen=True)
class TermPostings:
    """One query term's live postings across the snapshot: global rows ascending, raw tf and length norm of each."""

    weight: float  # repeats * idf: the most the term adds to a chunk's score, as tf / (tf + norm) < 1
    rows: np.ndarray
    tfs: np.ndarray
    norms: np.ndarray

    def contributions(self, positions: slice | np.ndarray = slice(None)) -> np.ndarray:
        return self.weight * bm25_saturation(self.tfs[positions], self.norms[positions])

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
        if len(rows) * SORTED_SUM_RATIO < self.total_rows:  # few postings: sorting them beats a pass over every row
            unique, inverse = np.unique(rows, return_inverse=True)
            return unique, np.bincount(inverse, weights=scores).astype(np.float32)
        # Many postings in a large collection: one accumulator over all rows, cheaper than sorting them (docs/tuning.md)
        summed = np.bincount(rows, weights=scores, minlength=self.total_rows)
        found = np.flatnonzero(summed)
        return found, summed[found].astype(np.float32)
