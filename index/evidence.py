"""Evidence: the sentence (or short run of sentences) inside a hit that best answers the question."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from citeqa.index.documents import Document
from citeqa.index.lexical import LexicalTokenizer
from citeqa.index.quote_selector import CandidateUnits, QuestionInput, QuoteSelector
from citeqa.index.search import Hit
from citeqa.index.snapshot import Snapshot
from citeqa.index.spans import Span, trim


@dataclass(frozen=True)
class Quote:
    start: int
    end: int
    text: str
    score: float  # combined sentence score
    dense: float  # cosine similarity of question and quote
    # Other sentences of the same chunk that answer nearly as well (a question with a two-part answer), in
    # document order; an extractive answer quotes them too (index/answering.py).
    companions: tuple[Quote, ...] = ()
    # The quote selector's probability that this sentence holds the answer (None without a selector).
    probability: float | None = None


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its document and the quote that cites it."""

    rank: int
    hit: Hit
    document: Document
    quote: Quote


def term_overlap(query_weights: dict[str, float], sentence_terms: list[str]) -> float:
    """IDF-weighted share of the question's content terms (stemmed) that the sentence contains:
    sharing a rare name ("Peskov") counts for more than sharing a common word ("western")."""
    total = sum(query_weights.values())
    if total <= 0:
        return 0.0
    return sum(query_weights[t] for t in set(sentence_terms) if t in query_weights) / total


def close_to_best(
    score: np.ndarray | float,
    probability: np.ndarray | float | None,
    best_score: float,
    best_probability: float | None,
    ratio: float,
    least_probability: float,
) -> np.ndarray | bool:
    """Whether a sentence (or each of an array of them) answers nearly as well as the best one: its score (the one
    abstention and re-scoring use) is at least `ratio` of the best's, and the quote selector judges it likely to
    hold an answer (at least `least_probability`), or as likely as the best, when the selector is unsure of the
    best too (at least `ratio` of its probability)."""
    close = np.asarray(score) >= ratio * best_score
    if probability is not None and best_probability is not None:
        close = close & (np.asarray(probability) >= min(least_probability, ratio * best_probability))
    return close


class EvidenceFinder:
    """Chooses the quote of each hit among its evidence units (embedded at index time), clipped to the chunk.

    With a selector, the unit it gives the highest probability of holding the answer is quoted; without one, the
    unit with the best score. Either way the quote's `score` is that unit's cosine to the question plus the
    IDF-weighted share of the question's terms it contains: the signal abstention and re-scoring are calibrated on.
    """

    def __init__(
        self,
        snapshot: Snapshot,
        tokenizer: LexicalTokenizer,
        lexical_weight: float = 0.3,
        selector: QuoteSelector | None = None,
        companion_ratio: float = 0.7,
        companion_probability: float = 0.4,
    ) -> None:
        self.snapshot = snapshot
        self.tokenizer = tokenizer
        self.lexical_weight = lexical_weight
        self.selector = selector
        self.companion_ratio = companion_ratio
        self.companion_probability = companion_probability

    def quotes(self, query: str, query_terms: list[str], query_vector: np.ndarray, hits: list[Hit]) -> list[Quote]:
        """One quote per hit, in hit order; each lies inside its hit's chunk."""
        if not hits:
            return []
        query_weights = self.snapshot.idf(set(query_terms))
        question = None
        if self.selector is not None:
            question = QuestionInput.build(query, query_vector, self.tokenizer.tokenize, self.snapshot.idf)
        unit_lists = self.snapshot.units_of(np.array([hit.row for hit in hits], dtype=np.int64))
        return [
            self._best_quote(hit, units, query_weights, query_vector, question)
            for hit, units in zip(hits, unit_lists, strict=True)
        ]

    def _best_quote(
        self,
        hit: Hit,
        unit_rows: np.ndarray,
        query_weights: dict[str, float],
        query_vector: np.ndarray,
        question: QuestionInput | None,
    ) -> Quote:
        chunk = hit.chunk
        document = self.snapshot.document_of(hit.row)
        spans = []
        for row in unit_rows.tolist():
            _, start, end = self.snapshot.unit_span(row)
            spans.append(trim(document.text, Span(max(start, chunk.start), min(end, chunk.end))))
        if not spans:
            return Quote(chunk.start, chunk.end, chunk.text, hit.dense, hit.dense)
        vectors = self.snapshot.unit_vectors(unit_rows)
        cosines = vectors @ query_vector
        texts = [document.text[span.start : span.end] for span in spans]
        terms = [self.snapshot.unit_terms(row, self.tokenizer.tokenize) for row in unit_rows.tolist()]
        overlaps = np.array([term_overlap(query_weights, unit_terms) for unit_terms in terms])
        scores = cosines + self.lexical_weight * overlaps
        if question is not None and self.selector is not None:
            previous = [self.snapshot.previous_unit(row) for row in unit_rows.tolist()]
            previous_vectors = np.zeros_like(vectors)
            known = [i for i, row in enumerate(previous) if row is not None]
            if known:
                previous_vectors[known] = self.snapshot.unit_vectors(np.array([previous[i] for i in known], dtype=np.int64))
            previous_terms = [
                self.snapshot.unit_terms(row, self.tokenizer.tokenize) if row is not None else [] for row in previous
            ]
            candidates = CandidateUnits(texts, terms, vectors, previous_vectors, previous_terms)
            chooser = probabilities = self.selector.score(question, candidates)
        else:
            chooser, probabilities = scores, None
        best = int(np.argmax(chooser))
        best_probability = None if probabilities is None else float(probabilities[best])
        close = close_to_best(
            scores, probabilities, float(scores[best]), best_probability, self.companion_ratio, self.companion_probability
        )

        def quote(i: int, companions: tuple[Quote, ...] = ()) -> Quote:
            probability = None if probabilities is None else float(probabilities[i])
            return Quote(spans[i].start, spans[i].end, texts[i], float(scores[i]), float(cosines[i]), companions, probability)

        companions = tuple(
            quote(i)
            for i in sorted(np.flatnonzero(close).tolist(), key=lambda i: spans[i].start)
            if i != best and (spans[i].end <= spans[best].start or spans[best].end <= spans[i].start)  # other words
        )
        return quote(best, companions)
