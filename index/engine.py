"""The question-answering pipeline in one place: load once, then search and ask."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from index.answering import AnswerSettings, ComposedAnswer, compose_answer
from index.builder import IndexSettings
from index.embedding import DEFAULT_MODEL, Embedder
from index.evidence import EvidenceFinder, Passage
from index.search import RetrievalSettings, Retriever, SearchMode
from index.store import IndexStore


@dataclass(frozen=True)
class EngineSettings:
    model: str = DEFAULT_MODEL
    index: IndexSettings = field(default_factory=IndexSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    quote_lexical_weight: float = 0.3


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
        self.evidence = EvidenceFinder(embedder, store.lexical.tokenizer, settings.quote_lexical_weight)

    @classmethod
    def open(cls, index_dir: Path, settings: EngineSettings, embedder: Embedder | None = None) -> Engine:
        """Load the index at index_dir; raises IndexMissingError / IndexMismatchError with a clear message."""
        embedder = (embedder or Embedder(settings.model)).load()
        store = IndexStore.load(index_dir, settings.index.config_for(embedder))
        return cls(store, embedder, settings)

    def search(self, query: str, top_k: int = 5, mode: SearchMode | None = None) -> list[Passage]:
        vector = self.embedder.embed_query(query)
        hits = self.retriever.search(query, top_k, mode=mode, query_vector=vector)
        quotes = self.evidence.quotes(query, vector, hits, self.store.documents)
        return [
            Passage(rank, hit, self.store.documents[hit.chunk.doc_id], quote)
            for rank, (hit, quote) in enumerate(zip(hits, quotes, strict=True), start=1)
        ]

    def ask(self, question: str, top_k: int = 5) -> Answer:
        passages = self.search(question, top_k)
        return Answer(compose_answer(passages, self.settings.answer), passages)
