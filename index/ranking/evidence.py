"""Evidence: the sentence (or short run of sentences) inside a hit that best answers the question."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from citeqa.index.parsing.layout import Box
from citeqa.index.ranking.attribution import question_speaker
from citeqa.index.ranking.quote_features import CandidateUnits, QuestionInput
from citeqa.index.ranking.quote_selector import QuoteSelector
from citeqa.index.ranking.quote_terms import TermMatches, term_stats
from citeqa.index.ranking.reader import Reader, reader_input
from citeqa.index.ranking.search import Hit
from citeqa.index.storage.rows import expand_ranges
from citeqa.index.storage.snapshot import Snapshot
from citeqa.index.text.chunking import Chunk
from citeqa.index.text.documents import Document
from citeqa.index.text.lexical import LexicalTokenizer
from citeqa.index.text.spans import Span, trim


@dataclass(frozen=True)
class Quote:
    start: int
    end: int
    text: str
    score: float  # combined sentence score
    dense: float  # cosine similarity of question and quote
    # Other sentences of the same chunk that answer nearly as well (a question with a two-part answer), in
    # document order; an extractive answer quotes them too (index/answering/compose.py).
    companions: tuple[Quote, ...] = ()
    # The probability that this sentence holds the answer: the quote selector's, or with the reader on (the first
    # passages only) the combination of the selector's and the reader's (None without a selector).
    probability: float | None = None
    # It states what the person the question asks about said ("What did Shoygu allege?"; index/ranking/attribution.py).
    attributed: bool = False


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its document and the quote that cites it: everything a reply needs, read from one
    snapshot when the passage was made (a reply never reaches back into storage)."""

    rank: int
    hit: Hit  # its scores
    document: Document
    quote: Quote
    chunk: Chunk
    boxes: tuple[Box, ...] = ()  # where the quote is drawn on its pages (PDFs and images); () elsewhere


def close_to_best(
    score: np.ndarray | float,
    probability: np.ndarray | float | None,
    best_score: np.ndarray | float,
    best_probability: np.ndarray | float | None,
    ratio: float,
    least_probability: float,
) -> np.ndarray | bool:
    """Whether a sentence (or each of an array of them) answers nearly as well as the best one: its score (the one
    abstention and re-scoring use) is at least `ratio` of the best's, and the quote selector judges it likely to
    hold an answer (at least `least_probability`), or as likely as the best, when the selector is unsure of the
    best too (at least `ratio` of its probability). Given arrays, each sentence is compared with its own best."""
    close = np.asarray(score) >= ratio * np.asarray(best_score)
    if probability is not None and best_probability is not None:
        close = close & (np.asarray(probability) >= np.minimum(least_probability, ratio * np.asarray(best_probability)))
    return close


class EvidenceFinder:
    """Chooses the quote of each hit among its evidence units (embedded at index time), clipped to the chunk.

    With a selector, the unit it gives the highest probability of holding the answer is quoted; without one, the
    unit with the best score. Either way the quote's `score` is that unit's cosine to the question plus the
    IDF-weighted share of the question's terms it contains: the signal abstention and re-scoring are calibrated on.
    """

    # No defaults: every setting comes from the engine (EngineSettings.quote_lexical_weight, AnswerSettings'
    # companion rule), so there is one place a served value is set.
    def __init__(
        self,
        snapshot: Snapshot,
        tokenizer: LexicalTokenizer,
        lexical_weight: float,
        selector: QuoteSelector | None,
        companion_ratio: float,
        companion_probability: float,
    ) -> None:
        self.snapshot = snapshot
        self.tokenizer = tokenizer
        self.lexical_weight = lexical_weight
        self.selector = selector
        self.companion_ratio = companion_ratio
        self.companion_probability = companion_probability

    def quotes(
        self, query: str, query_terms: list[str], query_vector: np.ndarray, hits: list[Hit], reader: Reader | None = None
    ) -> list[Quote]:
        """One quote per hit, in hit order; each lies inside its hit's chunk.

        The candidate units of every hit are gathered and scored together (one matrix product, one pass of the
        selector, one call of the reader when it is given), then each hit takes its best; the result is the same
        as scoring hit by hit."""
        if not hits:
            return []
        snapshot = self.snapshot
        rows = np.array([hit.row for hit in hits], dtype=np.int64)
        first, last = snapshot.unit_ranges(rows)
        units = expand_ranges(first, last)  # every hit's units, one run after another
        sizes = (last - first).tolist()
        ends = np.cumsum(sizes).tolist()
        bounds = list(zip([0, *ends[:-1]], ends, strict=True))  # each hit's run among `units`
        # Each unit clipped to its hit's chunk, then trimmed of the whitespace the clipping may leave.
        chunk_spans = np.repeat(snapshot.chunk_spans(rows), sizes, axis=0)
        clipped = np.clip(snapshot.unit_spans(units), chunk_spans[:, :1], chunk_spans[:, 1:]).tolist()
        spans: list[Span] = []
        texts: list[str] = []
        for hit, (begin, end) in zip(hits, bounds, strict=True):
            text = snapshot.document_of(hit.row).text
            for start, stop in clipped[begin:end]:
                span = trim(text, Span(start, stop))
                spans.append(span)
                texts.append(text[span.start : span.end])
        vectors = snapshot.unit_vectors(units)
        cosines = vectors @ query_vector
        terms = snapshot.unit_terms(units, self.tokenizer.tokenize)
        query_weights = snapshot.idf(set(query_terms))
        overlaps = TermMatches.of(query_weights, [term_stats(tuple(unit_terms)) for unit_terms in terms]).shares()
        scores = cosines + self.lexical_weight * overlaps
        probabilities = None
        if self.selector is not None and len(units):
            question = QuestionInput.build(query, query_vector, self.tokenizer.tokenize, snapshot.idf)
            previous = snapshot.previous_units(units)
            known = previous >= 0
            previous_vectors = np.zeros_like(vectors)
            previous_vectors[known] = snapshot.unit_vectors(previous[known])
            previous_terms: list[tuple[str, ...]] = [() for _ in range(len(units))]
            for i, unit_terms in zip(
                np.flatnonzero(known).tolist(), snapshot.unit_terms(previous[known], self.tokenizer.tokenize), strict=True
            ):
                previous_terms[i] = unit_terms
            candidates = CandidateUnits(texts, terms, vectors, previous_vectors, previous_terms, sizes)
            probabilities = self.selector.score(question, candidates)
            if reader is not None:
                titles = [snapshot.document_of(hit.row).title for hit in hits]
                inputs = [reader_input(titles[k], texts[i]) for k, (begin, end) in enumerate(bounds) for i in range(begin, end)]
                probabilities = reader.probabilities(query, inputs, probabilities, sizes)
        attributed = np.zeros(len(texts), dtype=bool)
        speaker = question_speaker(query, self.tokenizer.tokenize, snapshot.idf, snapshot.idf_from(0))
        if speaker is not None:
            for begin, end in bounds:  # a hit's units are consecutive sentences of one document
                attributed[begin:end] = speaker.attributed(texts[begin:end], terms[begin:end])
        return self._choose(hits, bounds, spans, texts, scores, cosines, probabilities, attributed)

    def _choose(
        self,
        hits: list[Hit],
        bounds: list[tuple[int, int]],
        spans: list[Span],
        texts: list[str],
        scores: np.ndarray,
        cosines: np.ndarray,
        probabilities: np.ndarray | None,
        attributed: np.ndarray,
    ) -> list[Quote]:
        """Each hit's quote among its run [begin, end) of the scored units, with its companions. The best unit of
        every run and which units come close to it are found for all runs at once; only the Quotes are built hit
        by hit."""
        n = len(texts)
        chooser = scores if probabilities is None else probabilities
        sizes = np.array([end - begin for begin, end in bounds], dtype=np.int64)
        run = np.repeat(np.arange(len(bounds)), sizes)  # which hit each unit belongs to
        # The first unit of highest `chooser` in each run (np.argmax's choice): runs in order, best first, ties by position.
        order = np.lexsort((np.arange(n), -chooser, run))
        starts = np.array([begin for begin, _ in bounds], dtype=np.int64)
        has_units = sizes > 0
        best = np.zeros(len(bounds), dtype=np.int64)
        best[has_units] = order[starts[has_units]]
        best_of_unit = np.repeat(best, sizes)
        close = close_to_best(
            scores,
            probabilities,
            scores[best_of_unit],
            None if probabilities is None else probabilities[best_of_unit],
            self.companion_ratio,
            self.companion_probability,
        )
        # A best that states what the asked-about speaker said brings each of their statements along.
        close = close | (attributed & attributed[best_of_unit])
        close[best_of_unit] = False  # the best is the quote itself, not its companion
        close_units = np.flatnonzero(close)
        close_bounds = np.searchsorted(close_units, [starts, starts + sizes]).tolist()
        probability_of = (lambda i: None) if probabilities is None else (lambda i: float(probabilities[i]))

        def quote(i: int, companions: tuple[Quote, ...] = ()) -> Quote:
            span = spans[i]
            return Quote(
                span.start,
                span.end,
                texts[i],
                float(scores[i]),
                float(cosines[i]),
                companions,
                probability_of(i),
                bool(attributed[i]),
            )

        quotes = []
        for k, hit in enumerate(hits):
            if not sizes[k]:
                chunk = hit.chunk
                quotes.append(Quote(chunk.start, chunk.end, chunk.text, hit.dense, hit.dense))
                continue
            chosen = spans[int(best[k])]
            others = close_units[close_bounds[0][k] : close_bounds[1][k]].tolist()
            companions = tuple(
                quote(i)
                for i in sorted(others, key=lambda i: spans[i].start)
                if spans[i].end <= chosen.start or chosen.end <= spans[i].start  # other words
            )
            quotes.append(quote(int(best[k]), companions))
        return quotes
