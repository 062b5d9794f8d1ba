"""The lexical side's words and weights: tokenisation (lower-case, stop words, Snowball stemming), BM25 settings,
and the BM25 formula itself (IDF, length norm, term saturation), the one every scorer of terms uses.

The postings are read where they live (index/storage/lexical_query.py): segments carry their own postings and the
statistics are collection-wide, which no off-the-shelf BM25 library offers for an index that grows by segments.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import Stemmer

# The English stop words the tokens were made with (bm25s's list, itself NLTK's), written out so that tokens stay
# exactly as they were without bm25s at run time; tests/index/test_search.py still compares them with bm25s.
# fmt: off
STOPWORDS_EN = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
    "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
})
# fmt: on
# A setting names its list; "english" is kept as the other name the setting has always accepted for it.
STOPWORD_LISTS: dict[str, frozenset[str]] = {"en": STOPWORDS_EN, "english": STOPWORDS_EN, "": frozenset()}


@dataclass(frozen=True, kw_only=True)
class LexicalSettings:
    method: str = "lucene"  # BM25 as Lucene scores it: idf = ln(1 + (N - df + 0.5) / (df + 0.5)), no (k1 + 1) factor
    k1: float = 0.9
    b: float = 0.75
    stemmer: str = "english"  # a PyStemmer (Snowball) language, or "" for none
    stopwords: str = "en"  # a name in STOPWORD_LISTS: "en", or "" for none

    def __post_init__(self) -> None:
        if self.method != "lucene":
            raise ValueError("bm25_method: only 'lucene' is supported")
        if self.stopwords not in STOPWORD_LISTS:
            raise ValueError(f"stopwords: {self.stopwords!r} is not a list citeqa has ('en', or '' for none)")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


# BM25 in Lucene's form: a term adds idf * tf / (tf + norm) to a text's score, norm = k1 * (1 - b + b * length /
# average length). Lucene's (k1 + 1) factor is left out: it scales every score alike and moves no ranking.


def bm25_idf(texts: int, frequency: int) -> float:
    """Inverse document frequency of a term held by `frequency` of `texts` texts: ln(1 + (N - df + 0.5) / (df + 0.5)),
    never negative, highest for a term no text holds."""
    return math.log(1.0 + (texts - frequency + 0.5) / (frequency + 0.5))


def bm25_length_norms(lengths: np.ndarray, average: float, k1: float, b: float) -> np.ndarray:
    """k1 * (1 - b + b * length / average) of each text length: the term frequency at which a term gives half its
    most, higher in long texts, which repeat words by being long."""
    return k1 * (1 - b + b * lengths / average)


def bm25_saturation(tfs: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """tf / (tf + norm): the share of its idf a term gives a text, below 1 however often it is repeated."""
    return tfs / (tfs + norms)


# Words of two or more word characters, as scikit-learn's CountVectorizer and bm25s split them.
_WORD = re.compile(r"(?u)\b\w\w+\b")


class LexicalTokenizer:
    """Lower-case, split into words, drop stop words, stem: the tokens bm25s.tokenize gives, without its per-call
    costs (three progress bars and a fresh stop-word set per text), which weighed on every query (docs/tuning.md)."""

    def __init__(self, settings: LexicalSettings) -> None:
        self.settings = settings

    @cached_property
    def _stemmer(self) -> Stemmer.Stemmer | None:
        return Stemmer.Stemmer(self.settings.stemmer) if self.settings.stemmer else None

    @cached_property
    def _stopwords(self) -> frozenset[str]:
        return STOPWORD_LISTS[self.settings.stopwords]

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        stopwords = self._stopwords
        words = [[w for w in _WORD.findall(text.lower()) if w not in stopwords] for text in texts]
        stemmer = self._stemmer
        if stemmer is None:
            return words
        vocabulary = list({w for text_words in words for w in text_words})  # each distinct word stemmed once
        stems = dict(zip(vocabulary, stemmer.stemWords(vocabulary), strict=True))
        return [[stems[w] for w in text_words] for text_words in words]
