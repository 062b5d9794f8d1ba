"""The lexical side's words: tokenisation (lower-case, stop words, Snowball stemming) and BM25 settings.

Scoring lives with the postings (index/snapshot.py): segments carry their own postings and the statistics
are collection-wide, which no off-the-shelf BM25 library offers for an index that grows by segments.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from functools import cached_property

import bm25s
import Stemmer

logging.getLogger("bm25s").setLevel(logging.WARNING)


@dataclass(frozen=True)
class LexicalSettings:
    method: str = "lucene"  # BM25 as Lucene scores it: idf = ln(1 + (N - df + 0.5) / (df + 0.5)), no (k1 + 1) factor
    k1: float = 0.9
    b: float = 0.75
    stemmer: str = "english"  # a PyStemmer (Snowball) language, or "" for none
    stopwords: str = "en"  # a bm25s stop-word list name, or "" for none

    def __post_init__(self) -> None:
        if self.method != "lucene":
            raise ValueError("bm25_method: only 'lucene' is supported")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class LexicalTokenizer:
    def __init__(self, settings: LexicalSettings) -> None:
        self.settings = settings

    @cached_property
    def _stemmer(self) -> Stemmer.Stemmer | None:
        return Stemmer.Stemmer(self.settings.stemmer) if self.settings.stemmer else None

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        if not texts:
            return []
        stemmer = self._stemmer
        return bm25s.tokenize(
            texts,
            stopwords=self.settings.stopwords or None,
            stemmer=stemmer.stemWords if stemmer else None,
            return_ids=False,
            show_progress=False,
        )
