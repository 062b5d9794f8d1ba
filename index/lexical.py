"""The lexical side: tokenisation (lower-case, stop words, Snowball stemming) and a bm25s index."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

logging.getLogger("bm25s").setLevel(logging.WARNING)


@dataclass(frozen=True)
class LexicalSettings:
    method: str = "lucene"  # bm25s variants: robertson, lucene, atire, bm25l, bm25+
    k1: float = 0.9
    b: float = 0.75
    stemmer: str = "english"  # a PyStemmer (Snowball) language, or "" for none
    stopwords: str = "en"  # a bm25s stop-word list name, or "" for none

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


class LexicalIndex:
    """BM25 over chunk texts; row i of the index is chunk i of the store."""

    def __init__(self, settings: LexicalSettings, retriever: bm25s.BM25, size: int) -> None:
        self.settings = settings
        self.tokenizer = LexicalTokenizer(settings)
        self._retriever = retriever
        self.size = size

    @classmethod
    def build(cls, texts: list[str], settings: LexicalSettings) -> LexicalIndex:
        retriever = bm25s.BM25(method=settings.method, k1=settings.k1, b=settings.b)
        tokens = LexicalTokenizer(settings).tokenize(texts)
        if texts:
            retriever.index(tokens, show_progress=False)
        return cls(settings, retriever, len(texts))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self.size:
            self._retriever.save(str(directory), show_progress=False)

    @classmethod
    def load(cls, directory: Path, settings: LexicalSettings, size: int) -> LexicalIndex:
        if size == 0:
            return cls.build([], settings)
        retriever = bm25s.BM25.load(str(directory), show_progress=False)
        return cls(settings, retriever, size)

    def idf(self, terms: set[str]) -> dict[str, float]:
        """Inverse document frequency over the chunks (the BM25 form); a term never seen gets the most."""
        if not self.size:
            return dict.fromkeys(terms, 1.0)
        indptr, vocab = self._retriever.scores["indptr"], self._retriever.vocab_dict
        weights = {}
        for term in terms:
            row = vocab.get(term)
            frequency = int(indptr[row + 1] - indptr[row]) if row is not None else 0
            weights[term] = math.log(1.0 + (self.size - frequency + 0.5) / (frequency + 0.5))
        return weights

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for the query (zeros when no query term is in the vocabulary)."""
        tokens = self.tokenizer.tokenize([query])[0] if self.size else []
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(tokens), dtype=np.float32)
