"""The quote selector's input: the question and the candidate units as the store holds them, and the feature row
each candidate gets (quote_features), from its cosines, its lexical signals (quote_terms.py) and its answer-type
signals (quote_facts.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from citeqa.index.ranking.quote_facts import NUMBER, question_types, text_facts, words_of
from citeqa.index.ranking.quote_terms import TermMatches, content_text, term_stats

# The columns of quote_features, in order; the model file names them too and must agree.
FEATURE_NAMES: tuple[str, ...] = (
    "cosine",  # question · unit vector
    "cosine_in_context",  # question · normalised (previous unit + unit): "He accused …" read after "Shoygu alleged …"
    "reference_context_gain",  # for a unit opening with a pronoun, how much reading it in context raises the cosine
    "overlap",  # IDF-weighted share of the question's stemmed terms in the unit (today's lexical quote score)
    "overlap_in_context",  # the same share over the previous unit and the unit together
    "bm25",  # BM25 of the unit against the question, divided by its ceiling (every term present, saturated)
    "bigram_overlap",  # share of the question's adjacent term pairs that the unit repeats in order
    "answer_person",  # who/whom/whose question, and the unit names someone the question does not
    "answer_date",  # when/what year question, and the unit has a year, month, weekday or century
    "answer_number",  # how many/much question, and the unit has a number the question does not
    "answer_place",  # where question, and the unit has a capitalised word after in/at/from/… the question lacks
    "position",  # 0 for the chunk's first candidate, 1 for its last
    "first_in_document",  # no previous unit (the opening of a document, often its title)
    "log_length",  # log of the unit's length in characters
    "cosine_margin",  # cosine minus the best cosine among the candidates (0 for the best)
    "overlap_margin",  # overlap minus the best overlap among the candidates
    "bm25_margin",  # bm25 minus the best bm25 among the candidates
)


@dataclass(frozen=True)
class QuestionInput:
    """What the selector needs of the question: its text, vector and stemmed content terms with their IDF."""

    text: str
    vector: np.ndarray  # L2-normalised, as Embedder.embed_query returns it
    terms: Sequence[str]  # stemmed terms of content_text(text) in order (LexicalTokenizer.tokenize)
    weights: Mapping[str, float]  # IDF of each distinct term, as the index's BM25 computes it

    @classmethod
    def build(
        cls,
        text: str,
        vector: np.ndarray,
        tokenize: Callable[[list[str]], list[list[str]]],
        idf: Callable[[set[str]], Mapping[str, float]],
    ) -> QuestionInput:
        """From the index's tokenizer (LexicalTokenizer.tokenize) and IDF (terms -> weights)."""
        terms = tokenize([content_text(text)])[0]
        return cls(text, vector, terms, dict(idf(set(terms))))


@dataclass(frozen=True)
class CandidateUnits:
    """The evidence units of one chunk (or of several, in `groups`), in text order, with what the store holds for each."""

    texts: Sequence[str]  # the unit texts as they would be quoted
    terms: Sequence[Sequence[str]]  # stemmed terms of each text
    vectors: np.ndarray  # (n, d) unit vectors (store.unit_vectors rows)
    previous_vectors: np.ndarray  # (n, d) vector of the unit before each in its document; a zero row for the first
    previous_terms: Sequence[Sequence[str]]  # stemmed terms of that previous unit; empty for the first
    # Sizes of consecutive groups of units that are each one chunk's candidates (they add up to len(texts));
    # empty: all of them are one chunk's.
    groups: Sequence[int] = ()

    def __len__(self) -> int:
        return len(self.texts)


def _group_starts(sizes: Sequence[int], n: int) -> np.ndarray:
    """Start row of each non-empty group of consecutive rows (the whole matrix when no sizes are given)."""
    if not sizes:
        return np.zeros(1, dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
    if int(np.sum(sizes)) != n:
        raise ValueError(f"group sizes add up to {int(np.sum(sizes))}, not to the {n} candidates")
    return starts[np.asarray(sizes) > 0]


def quote_features(question: QuestionInput, candidates: CandidateUnits) -> np.ndarray:
    """A float64 matrix of shape (len(candidates), len(FEATURE_NAMES)): one row per candidate unit.

    Position and the margins are taken within each chunk's group of candidates (`candidates.groups`), so the
    units of many chunks are scored in one call with the rows they would get one chunk at a time."""
    n = len(candidates)
    features = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float64)
    if n == 0:
        return features
    q = np.asarray(question.vector, dtype=np.float64)
    vectors = np.asarray(candidates.vectors, dtype=np.float64)
    previous = np.asarray(candidates.previous_vectors, dtype=np.float64)
    cosine = vectors @ q
    # A zero previous row leaves the unit's own vector, so a first unit's context cosine is its cosine.
    context = vectors + previous
    context /= np.maximum(np.linalg.norm(context, axis=1, keepdims=True), 1e-12)
    cosine_in_context = context @ q
    first = ~np.any(previous != 0.0, axis=1)

    asks_person, asks_date, asks_number, asks_place = question_types(question.text)
    question_words = {w.lower() for w in words_of(question.text)}
    question_numbers = set(NUMBER.findall(question.text))
    question_bigrams = set(pairwise(question.terms))
    starts = _group_starts(candidates.groups, n)
    sizes = np.diff(np.append(starts, n))
    position = np.arange(n) - np.repeat(starts, sizes)
    last = np.repeat(np.maximum(sizes - 1, 1), sizes)

    stats = [term_stats(tuple(terms)) for terms in candidates.terms]
    before = [term_stats(tuple(terms)).distinct for terms in candidates.previous_terms]
    matches = TermMatches.of(question.weights, stats)
    facts = [text_facts(text) for text in candidates.texts]
    leans_back = np.array([f.leans_back for f in facts], dtype=bool) & ~first
    new_number = [bool(f.numbers - question_numbers) or bool(f.number_words - question_words) for f in facts]
    column = {name: features[:, k] for k, name in enumerate(FEATURE_NAMES)}  # views: writing one fills `features`
    column["cosine"][:] = cosine
    column["cosine_in_context"][:] = cosine_in_context
    column["reference_context_gain"][:] = np.where(leans_back, np.maximum(0.0, cosine_in_context - cosine), 0.0)
    column["overlap"][:] = matches.shares()
    column["overlap_in_context"][:] = matches.shares(also=matches.present_in(before))
    column["bm25"][:] = matches.bm25(np.array([unit.length for unit in stats]))
    if question_bigrams:
        column["bigram_overlap"][:] = [len(question_bigrams & unit.pairs) / len(question_bigrams) for unit in stats]
    column["answer_person"][:] = [asks_person and bool(f.names - question_words) for f in facts]
    column["answer_date"][:] = [asks_date and f.has_date for f in facts]
    column["answer_number"][:] = [asks_number and new for new in new_number]
    column["answer_place"][:] = [asks_place and bool(f.places - question_words) for f in facts]
    column["position"][:] = position / last
    column["first_in_document"][:] = first
    column["log_length"][:] = [f.log_length for f in facts]
    for margin, source in (("cosine_margin", "cosine"), ("overlap_margin", "overlap"), ("bm25_margin", "bm25")):
        column[margin][:] = column[source] - np.repeat(np.maximum.reduceat(column[source], starts), sizes)
    return features
