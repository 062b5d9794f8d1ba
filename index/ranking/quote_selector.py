"""A learned quote selector: which evidence unit of a chunk is the one to quote.

Every candidate unit gets a row of cheap features available at query time (cosines from vectors made at
index time, term statistics from the lexical tokenizer, a few answer-type patterns), and a logistic model
turns the row into a probability that the unit holds the answer. The model is a JSON file shipped beside
this module (`quote_model.json`, written by `python -m citeqa.eval.train_quote_selector`); inference is
numpy only.

The probability is meant to compare across chunks, not just within one: the model was fitted on the units
of the paragraph that answers a question together with the units of the closest wrong paragraph of the same
article, so the best unit of an off-target chunk still scores low. On SQuAD that makes it the better signal
of which paragraph answers (see the model file's cross-validation figures). Its training questions were
written while looking at the paragraph, so it leans on shared words more than today's score does; on
paraphrased questions its probabilities run low, and an abstention threshold must be calibrated on it
afresh (eval/calibrate.py), not carried over from the cosine + overlap score.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import pairwise
from pathlib import Path

import numpy as np

from citeqa.index.models.model_files import check_model, read_model

MODEL_FILE = "quote_model.json"
MODEL_FORMAT = 1

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

# BM25 constants for scoring a single unit: the index's defaults (LexicalSettings) and the mean stemmed length
# of an evidence unit on the training data (a unit is scored against a fixed norm, not its store's average,
# so a score means the same in every index).
BM25_K1 = 0.9
BM25_B = 0.75
MEAN_UNIT_TERMS = 16.7

# First words that make a sentence lean on the one before it ("He accused …", "This claim …");
# two-word openers are matched on the first two words.
REFERENCE_OPENERS = frozenset(
    {"he", "she", "it", "they", "his", "her", "its", "their", "them", "this", "these", "those", "that", "such", "both"}
    | {"the latter", "the former"}
)

_WORD = re.compile(r"[A-Za-z][\w’'-]*")
_NUMBER = re.compile(r"\d[\d,.]*")
_NUMBER_WORDS = frozenset(
    {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"}
    | {"thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "trillion"}
    | {"thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred", "thousand", "million", "billion"}
    | {"dozen", "dozens", "hundreds", "thousands", "millions", "billions", "half", "quarter", "percent"}
)
_MONTHS = frozenset(
    {"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november"}
    | {"december", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
)
_YEAR = re.compile(r"\b(?:1\d{3}|20\d{2})s?\b|\b\d{1,2}(?:st|nd|rd|th)\b|\bcentur(?:y|ies)\b|\bBC\b|\bAD\b")
_PLACE = re.compile(r"\b(?:in|at|from|near|to|into|across|outside|inside|throughout)\s+(?:the\s+)?([A-Z][\w’'-]+)")

# Question types, matched on the lower-cased question.
_ASKS_NUMBER = re.compile(
    r"\bhow (?:many|much|long|far|old|large|big|tall|high|often|fast|deep|wide|heavy)\b"
    r"|\bwhat (?:percentage|percent|proportion|number|amount|fraction|share)\b"
)
_ASKS_DATE = re.compile(
    r"\bwhen\b|\b(?:what|which) (?:year|years|date|day|month|century|decade|era|period|season)\b|\bhow long ago\b"
)
_ASKS_PERSON = re.compile(r"\bwho(?:m|se)?\b")
_ASKS_PLACE = re.compile(
    r"\bwhere\b|\b(?:what|which) (?:country|countries|city|cities|state|place|region|continent|town|area|county|nation)\b"
)


# Question words the stop-word list keeps. They say what kind of answer is wanted (the answer-type features read
# them from the raw question), not which words the answer shares; and a small index that never saw "when" gives
# it the highest IDF of all, so left in they would outweigh the words that matter.
QUESTION_WORDS = re.compile(r"\b(?:who|whom|whose|what|when|where|why|how|which|do|does|did|many|much)\b", re.IGNORECASE)


def content_text(question: str) -> str:
    """The question without its question words: what its terms for overlap and BM25 are taken from."""
    return QUESTION_WORDS.sub(" ", question)


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


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _question_types(question: str) -> tuple[bool, bool, bool, bool]:
    lowered = question.lower()
    return (
        bool(_ASKS_PERSON.search(lowered)),
        bool(_ASKS_DATE.search(lowered)),
        bool(_ASKS_NUMBER.search(lowered)),
        bool(_ASKS_PLACE.search(lowered)),
    )


@dataclass(frozen=True)
class TextFacts:
    """What the answer-type features read off a unit's text, whatever the question: computed once per text."""

    names: frozenset[str]  # lower-cased capitalised words after the first, months aside ("Shoygu", "Kyiv")
    has_date: bool  # a year, an ordinal, a century, a capitalised month or weekday
    numbers: frozenset[str]  # digit runs ("1,200", "3.5")
    number_words: frozenset[str]  # lower-cased number words ("twelve", "million")
    places: frozenset[str]  # lower-cased capitalised words after in/at/from/…
    leans_back: bool  # opens with a word that points at the sentence before ("He …", "This claim …")
    log_length: float  # log of the length in characters


@lru_cache(maxsize=65536)
def text_facts(text: str) -> TextFacts:
    """The question-independent facts of one unit text. A query scores a few dozen units, mostly the same ones
    as recent queries, so the regular expressions run once per text rather than once per query (bounded cache)."""
    words = _words(text)
    lowered = [w.lower() for w in words]
    opener = lowered[:2]
    # Month names count as dates only capitalised, so "may be carried over" is not a date.
    return TextFacts(
        names=frozenset(lw for w, lw in zip(words[1:], lowered[1:], strict=True) if w[0].isupper() and lw not in _MONTHS),
        has_date=bool(_YEAR.search(text)) or any(w[0].isupper() and lw in _MONTHS for w, lw in zip(words, lowered, strict=True)),
        numbers=frozenset(_NUMBER.findall(text)),
        number_words=frozenset(lw for lw in lowered if lw in _NUMBER_WORDS),
        places=frozenset(m.group(1).lower() for m in _PLACE.finditer(text)),
        leans_back=bool(opener) and (opener[0] in REFERENCE_OPENERS or " ".join(opener) in REFERENCE_OPENERS),
        log_length=math.log(max(len(text), 1)),
    )


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
        norm = BM25_K1 * (1.0 - BM25_B + BM25_B * np.asarray(lengths, dtype=np.float64) / MEAN_UNIT_TERMS)
        saturation = self.counts * (BM25_K1 + 1.0) / (self.counts + norm[:, None])
        scores = (saturation * self.weights).sum(axis=1) / (total * (BM25_K1 + 1.0))
        return np.where(np.asarray(lengths) > 0, scores, 0.0)


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

    asks_person, asks_date, asks_number, asks_place = _question_types(question.text)
    question_words = {w.lower() for w in _words(question.text)}
    question_numbers = set(_NUMBER.findall(question.text))
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


class QuoteSelector:
    """Scores candidate units with the shipped logistic model: P(unit holds the answer), in (0, 1)."""

    def __init__(self, model: Mapping[str, object]) -> None:
        check_model(model, "quote", MODEL_FORMAT, FEATURE_NAMES)
        self.model = dict(model)
        self.mean = np.asarray(model["mean"], dtype=np.float64)
        self.scale = np.asarray(model["scale"], dtype=np.float64)
        self.coefficients = np.asarray(model["coefficients"], dtype=np.float64)
        self.intercept = float(model["intercept"])  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path | None = None) -> QuoteSelector:
        """The model shipped in the package, or the JSON file at `path`."""
        return cls(read_model(MODEL_FILE, path))

    @cached_property
    def weights(self) -> dict[str, float]:
        """Coefficients per standardised feature: the change in log-odds for one standard deviation."""
        return dict(zip(FEATURE_NAMES, self.coefficients.tolist(), strict=True))

    def logits(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.scale) @ self.coefficients + self.intercept

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Probability per row of `features` (quote_features output); higher is better."""
        return 1.0 / (1.0 + np.exp(-self.logits(features)))

    def score(self, question: QuestionInput, candidates: CandidateUnits) -> np.ndarray:
        return self.scores(quote_features(question, candidates))
