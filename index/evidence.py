"""Evidence: the sentence (or short run of sentences) inside a hit that best answers the question."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from citeqa.index.documents import Document
from citeqa.index.search import Hit
from citeqa.index.spans import Span, trim
from citeqa.index.store import IndexStore


@dataclass(frozen=True)
class Quote:
    start: int
    end: int
    text: str
    score: float  # combined sentence score
    dense: float  # cosine similarity of question and quote


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


class EvidenceFinder:
    """Scores a hit's evidence units (embedded at index time) by cosine similarity to the question plus
    the share of the question's terms they contain, and quotes the best one, clipped to the chunk."""

    def __init__(self, store: IndexStore, lexical_weight: float = 0.3) -> None:
        self.store = store
        self.lexical_weight = lexical_weight
        # Stemmed terms of each quotable span, tokenised once: the same sentences recur across queries.
        self._terms: dict[tuple[str, int, int], list[str]] = {}

    def _terms_of(self, doc_id: str, spans: list[Span], texts: list[str]) -> list[list[str]]:
        missing = [i for i, span in enumerate(spans) if (doc_id, *span) not in self._terms]
        for i, terms in zip(missing, self.store.lexical.tokenizer.tokenize([texts[i] for i in missing]), strict=True):
            self._terms[(doc_id, *spans[i])] = terms
        return [self._terms[(doc_id, *span)] for span in spans]

    def quotes(self, query: str, query_vector: np.ndarray, hits: list[Hit]) -> list[Quote]:
        """One quote per hit, in hit order; each lies inside its hit's chunk."""
        if not hits:
            return []
        query_weights = self.store.lexical.idf(set(self.store.lexical.tokenizer.tokenize([query])[0]))
        return [self._best_quote(hit, self.store.documents[hit.chunk.doc_id], query_weights, query_vector) for hit in hits]

    def _best_quote(self, hit: Hit, document: Document, query_weights: dict[str, float], query_vector: np.ndarray) -> Quote:
        chunk = hit.chunk
        unit_rows = self.store.units_of_chunk[hit.row]
        spans = [
            trim(document.text, Span(max(u.start, chunk.start), min(u.end, chunk.end)))
            for u in (self.store.units[r] for r in unit_rows)
        ]
        if not spans:
            return Quote(chunk.start, chunk.end, chunk.text, hit.dense, hit.dense)
        cosines = self.store.unit_vectors[unit_rows] @ query_vector
        texts = [document.text[span.start : span.end] for span in spans]
        overlaps = np.array([term_overlap(query_weights, terms) for terms in self._terms_of(document.id, spans, texts)])
        scores = cosines + self.lexical_weight * overlaps
        best = int(np.argmax(scores))
        return Quote(spans[best].start, spans[best].end, texts[best], float(scores[best]), float(cosines[best]))
