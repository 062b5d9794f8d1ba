"""The question-answering pipeline in one place: load once, then search and ask."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from citeqa.index.answering import AnswerSettings, ComposedAnswer, compose_answer
from citeqa.index.builder import IndexSettings
from citeqa.index.documents import Document
from citeqa.index.embedding import DEFAULT_MODEL, Embedder
from citeqa.index.evidence import EvidenceFinder, Passage, Quote
from citeqa.index.search import Hit, RetrievalSettings, Retriever, SearchMode
from citeqa.index.store import IndexStore


@dataclass(frozen=True)
class EngineSettings:
    model: str = DEFAULT_MODEL
    index: IndexSettings = field(default_factory=IndexSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    quote_lexical_weight: float = 1.0
    quote_rerank_weight: float = 0.5  # 0 turns the quote-aware re-scoring of the ranking head off
    rerank_depth: int = 20


@dataclass(frozen=True)
class DocumentInfo:
    """What a listing says about a document (its text is fetched separately, by `Engine.document`)."""

    id: str
    title: str
    source: str
    sha256: str
    chunks: int
    characters: int


@dataclass(frozen=True)
class EngineStats:
    documents: int
    chunks: int
    model: str
    built_at: str


@dataclass(frozen=True)
class Answer:
    composed: ComposedAnswer
    passages: list[Passage]

    @property
    def cited(self) -> list[Passage]:
        return [self.passages[i] for i in self.composed.cited]


class Engine:
    def __init__(self, store: IndexStore, embedder: Embedder, settings: EngineSettings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.retriever = Retriever(store, embedder, settings.retrieval)
        self.evidence = EvidenceFinder(store, settings.quote_lexical_weight)

    @classmethod
    def open(cls, index_dir: Path, settings: EngineSettings, embedder: Embedder | None = None) -> Engine:
        """Load the index at index_dir; raises IndexMissingError / IndexMismatchError with a clear message."""
        embedder = (embedder or Embedder(settings.model)).load()
        store = IndexStore.load(index_dir, settings.index.config_for(embedder))
        return cls(store, embedder, settings)

    # -- reading: the service and the evaluation ask these, never the store ----------------------

    def document(self, doc_id: str) -> Document | None:
        return self.store.documents.get(doc_id)

    def documents(self) -> list[DocumentInfo]:
        """Every document, sorted by id."""
        counts = self.store.chunk_counts
        return [
            DocumentInfo(d.id, d.title, d.source, d.sha256, counts.get(d.id, 0), len(d.text))
            for d in sorted(self.store.documents.values(), key=lambda d: d.id)
        ]

    def document_info(self, doc_id: str) -> DocumentInfo | None:
        document = self.document(doc_id)
        if document is None:
            return None
        return DocumentInfo(
            document.id, document.title, document.source, document.sha256, len(self.store.chunks_of(doc_id)), len(document.text)
        )

    def stats(self) -> EngineStats:
        manifest = self.store.manifest
        return EngineStats(len(self.store.documents), len(self.store.chunks), manifest.config.model_name, manifest.built_at)

    def rank(
        self, query: str, depth: int, mode: SearchMode | None = None, query_vector: np.ndarray | None = None
    ) -> tuple[list[Hit], list[Quote]]:
        """`depth` hits in final order, and the quotes of the first len(quotes) of them.

        In hybrid mode the head of the ranking is re-scored with its best quote's score: a chunk holding
        one sentence that answers outranks a chunk that is only broadly about the topic. A quote's score
        mixes the sentence's cosine similarity with the IDF-weighted share of question terms it contains,
        signals that a whole-chunk score blurs.
        """
        mode = mode or self.settings.retrieval.mode
        vector = self.embedder.embed_query(query) if query_vector is None else query_vector
        weight = self.settings.quote_rerank_weight if mode is SearchMode.HYBRID else 0.0
        hits = self.retriever.search(query, depth, mode=mode, query_vector=vector)
        head = hits[: self.settings.rerank_depth] if weight > 0 else []
        quotes = self.evidence.quotes(query, vector, head)
        rescored = [(replace(h, score=h.score + weight * q.score), q) for h, q in zip(head, quotes, strict=True)]
        rescored.sort(key=lambda pair: (-pair[0].score, pair[0].row))
        return [h for h, _ in rescored] + hits[len(head) :], [q for _, q in rescored]

    def search(self, query: str, top_k: int = 5, mode: SearchMode | None = None) -> list[Passage]:
        vector = self.embedder.embed_query(query)
        hits, quotes = self.rank(query, top_k, mode, vector)
        quotes = quotes[:top_k] + self.evidence.quotes(query, vector, hits[len(quotes) :])
        return [
            Passage(rank, hit, self.store.documents[hit.chunk.doc_id], quote)
            for rank, (hit, quote) in enumerate(zip(hits, quotes, strict=True), start=1)
        ]

    def ask(self, question: str, top_k: int = 5) -> Answer:
        passages = self.search(question, top_k)
        return Answer(compose_answer(passages, self.settings.answer), passages)
