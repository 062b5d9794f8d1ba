"""Evidence: the sentence (or short run of sentences) inside a hit that best answers the question."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index.documents import Document
from index.embedding import Embedder
from index.lexical import LexicalTokenizer
from index.search import Hit
from index.spans import Span, sentence_spans

# A sentence this short ("No, we cannot.") rarely stands alone; the quote then runs on to the next one.
SHORT_SENTENCE_CHARS = 40


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


def term_overlap(query_terms: set[str], sentence_terms: list[str]) -> float:
    """Share of the question's content terms (stemmed) that the sentence contains."""
    if not query_terms:
        return 0.0
    return len(query_terms.intersection(sentence_terms)) / len(query_terms)


class EvidenceFinder:
    def __init__(self, embedder: Embedder, tokenizer: LexicalTokenizer, lexical_weight: float = 0.3) -> None:
        self.embedder = embedder
        self.tokenizer = tokenizer
        self.lexical_weight = lexical_weight

    def candidate_spans(self, document: Document, hit: Hit) -> list[Span]:
        sentences = sentence_spans(document.text, hit.chunk.start, hit.chunk.end)
        runs: list[Span] = []
        for i, sentence in enumerate(sentences):
            if sentence.end - sentence.start < SHORT_SENTENCE_CHARS and i + 1 < len(sentences):
                runs.append(Span(sentence.start, sentences[i + 1].end))
            else:
                runs.append(sentence)
        return runs or [Span(hit.chunk.start, hit.chunk.end)]

    def quotes(self, query: str, query_vector: np.ndarray, hits: list[Hit], documents: dict[str, Document]) -> list[Quote]:
        """One quote per hit, in hit order; each lies inside its hit's chunk."""
        spans_per_hit = [self.candidate_spans(documents[hit.chunk.doc_id], hit) for hit in hits]
        texts = [
            documents[hit.chunk.doc_id].text[s.start : s.end]
            for hit, spans in zip(hits, spans_per_hit, strict=True)
            for s in spans
        ]
        if not texts:
            return []
        cosines = self.embedder.embed(texts) @ query_vector
        query_terms = set(self.tokenizer.tokenize([query])[0])
        overlaps = np.array([term_overlap(query_terms, terms) for terms in self.tokenizer.tokenize(texts)])
        scores = cosines + self.lexical_weight * overlaps

        quotes: list[Quote] = []
        offset = 0
        for spans in spans_per_hit:
            local = scores[offset : offset + len(spans)]
            best = int(np.argmax(local))
            position = offset + best
            quotes.append(
                Quote(spans[best].start, spans[best].end, texts[position], float(scores[position]), float(cosines[position]))
            )
            offset += len(spans)
        return quotes
