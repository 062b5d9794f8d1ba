"""The quote selector's lexical signals: how much of a question's stemmed terms each candidate unit shares, as an
IDF-weighted share, in order (adjacent pairs) and as BM25 against a fixed norm. Also read by the claims check
(index/answering/claims.py), which asks the same question of a composed answer's sentences."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

import numpy as np

from citeqa.index.text.lexical import bm25_length_norms, bm25_saturation

# BM25 constants for scoring a single unit: the index's defaults (LexicalSettings) and the mean stemmed length
# of an evidence unit on the training data (a unit is scored against a fixed norm, not its store's average,
# so a score means the same in every index).
BM25_K1 = 0.9
BM25_B = 0.75
MEAN_UNIT_TERMS = 16.7


# Question words the stop-word list keeps. They say what kind of answer is wanted (the answer-type features read
# them from the raw question), not which words the answer shares; and a small index that never saw "when" gives
# it the highest IDF of all, so left in they would outweigh the words that matter.
QUESTION_WORDS = re.compile(r"\b(?:who|whom|whose|what|when|where|why|how|which|do|does|did|many|much)\b", re.IGNORECASE)


def content_text(question: str) -> str:
    """The question without its question words: what its terms for overlap and BM25 are taken from."""
    return QUESTION_WORDS.sub(" ", question)


@dataclass(frozen=True)
class TermStats:
    """What the lexical features read off a unit's stemmed terms, whatever the question: computed once per unit."""

    distinct: frozenset[str]
    counts: Mapping[str, int]
    pairs: frozenset[tuple[str, str]]  # adjacent terms, in order
    length: int


@lru_cache(maxsize=65536)
def term_stats(terms: tuple[str, ...]) -> TermStats:
    """A query looks up its few terms in each candidate's stats instead of walking each candidate's terms; the units
    recent queries scored are mostly the ones the next scores, so the stats are kept (bounded cache)."""
    return TermStats(frozenset(terms), Counter(terms), frozenset(pairwise(terms)), len(terms))


@dataclass(frozen=True)
class TermMatches:
    """How often each of the question's distinct terms occurs in each of a list of units: what the lexical features
    of all the candidates are computed from at once (a query's few terms looked up in each unit's TermStats)."""

    terms: tuple[str, ...]
    weights: np.ndarray  # IDF of each term
    counts: np.ndarray  # (units, terms) float64

    @classmethod
    def of(cls, weights: Mapping[str, float], stats: Sequence[TermStats]) -> TermMatches:
        terms = tuple(weights)
        column = {t: k for k, t in enumerate(terms)}
        wanted = frozenset(terms)
        width = len(terms)
        counts = np.zeros((len(stats), width), dtype=np.float64)
        # A unit shares only a term or two with the question: intersecting sets (in C) and filling those cells is
        # several times quicker than looking every term up in every unit.
        shared = [(i * width + column[t], unit.counts[t]) for i, unit in enumerate(stats) for t in unit.distinct & wanted]
        if shared:
            cells, values = zip(*shared, strict=True)
            counts.reshape(-1)[np.array(cells)] = values
        return cls(terms, np.array([weights[t] for t in terms], dtype=np.float64), counts)

    def present_in(self, term_sets: Sequence[AbstractSet[str]]) -> np.ndarray:
        """(units, terms) bool: whether each term is in each unit's set (one set per unit, e.g. its previous unit's)."""
        column = {t: k for k, t in enumerate(self.terms)}
        wanted = frozenset(self.terms)
        width = len(self.terms)
        found = np.zeros((len(term_sets), width), dtype=bool)
        cells = [i * width + column[t] for i, terms in enumerate(term_sets) for t in wanted & terms]
        found.reshape(-1)[np.array(cells, dtype=np.int64)] = True
        return found

    def shares(self, also: np.ndarray | None = None) -> np.ndarray:
        """IDF-weighted share of the question's terms in each unit (or in it or where `also` marks them present):
        sharing a rare name ("Peskov") counts for more than sharing a common word ("western")."""
        total = float(self.weights.sum())
        present = self.counts > 0 if also is None else (self.counts > 0) | also
        return (present * self.weights).sum(axis=1) / total if total > 0 else np.zeros(len(self.counts))

    def bm25(self, lengths: np.ndarray) -> np.ndarray:
        """BM25 of each unit (`lengths`: its number of terms) over its ceiling, so 1.0 means every question term
        present and saturated; a unit is scored against MEAN_UNIT_TERMS, not its store's average length."""
        total = float(self.weights.sum())
        if total <= 0:
            return np.zeros(len(self.counts))
        norm = bm25_length_norms(np.asarray(lengths, dtype=np.float64), MEAN_UNIT_TERMS, BM25_K1, BM25_B)
        scores = (bm25_saturation(self.counts, norm[:, None]) * self.weights).sum(axis=1) / total
        return np.where(np.asarray(lengths) > 0, scores, 0.0)
