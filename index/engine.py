"""The front door of index/: one collection, its model and settings; search, ask, read and write through here.

Every query runs on one snapshot (one committed state) from start to end, and notices a newer commit made by
any process on its next call. `rank` is the one ranking path: `/v1/search`, `/v1/ask`, chat and the
evaluation all call it, with a re-scoring depth that does not depend on how many results were asked for.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from citeqa.index.answering.claim_checker import ClaimChecker
from citeqa.index.answering.claims import ClaimChecking, SupportScorer, SupportScores
from citeqa.index.answering.compose import AnswerSettings, ComposedAnswer, compose_answer
from citeqa.index.models.embedding import DEFAULT_BATCH_SIZE, DEFAULT_ENCODER, DEFAULT_MODEL, Embedder
from citeqa.index.parsing.dispatch import ParseLimits
from citeqa.index.parsing.page_view import PageViews
from citeqa.index.progress import NO_PROGRESS, Progress
from citeqa.index.ranking.evidence import EvidenceFinder, Passage, Quote
from citeqa.index.ranking.head_ranker import HeadRanker
from citeqa.index.ranking.quote_selector import QuoteSelector
from citeqa.index.ranking.reader import Reader
from citeqa.index.ranking.search import Hit, RetrievalSettings, Retriever, SearchMode
from citeqa.index.storage.catalog import DocumentRow
from citeqa.index.storage.collection import Collection, WriteResult
from citeqa.index.storage.originals import OriginalStore
from citeqa.index.storage.snapshot import Snapshot
from citeqa.index.text.chunking import Chunk
from citeqa.index.text.documents import Document
from citeqa.index.text.lexical import LexicalTokenizer
from citeqa.index.writing.builder import IndexSettings, Preparer
from citeqa.index.writing.ingest import DEFAULT_LIMITS, IncomingFile, IngestReport
from citeqa.index.writing.writer import Writer


@dataclass(frozen=True, kw_only=True)
class EngineSettings:
    model: str = DEFAULT_MODEL
    index: IndexSettings = field(default_factory=IndexSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    quote_lexical_weight: float = 1.0
    # 0 turns the re-scoring of the ranking head off; otherwise the quote score's weight when it is hand-set
    quote_rerank_weight: float = 0.5
    rerank_depth: int = 20
    write_timeout: float = 60.0  # seconds a write waits for the collection's write lock
    threads: int | None = None  # threads the encoder and the reader use per call; None: every core of the process
    # Sync segments, original files and the catalog's commits to the disk before a write returns (survives a power
    # cut); off trades that for faster writes (storage/durable.py, docs/storage.md "Durability").
    durable_writes: bool = True
    learned_quotes: bool = True  # choose quotes with the learned selector (index/models/quote_model.json)
    # Re-score the head with the learned model (index/models/head_model.json); it reads the selector's probabilities, so it
    # needs learned_quotes. Off: fused score + quote_rerank_weight * quote score.
    learned_ranking: bool = True
    # How many of the first passages the reader (index/ranking/reader.py) reads, to choose their quotes and order
    # them; 0 turns it off. It needs learned_quotes (it combines with the selector's probabilities). Off by default:
    # on held-out articles it gains little for what it costs (docs/reader.md).
    reader_depth: int = 0
    # How many sentences of each of those passages it reads, the quote selector's most likely first; 0 reads them
    # all. The selector's first three hold the answer for 0.96 of held-out squad-dev-a questions, and reading only
    # them gave the same figures for a quarter less of the reader's time (docs/reader.md).
    reader_sentences: int = 3
    encoder: str = DEFAULT_ENCODER  # onnx, onnx-int8 or torch (index/models/embedding.py)
    models_dir: Path | None = None  # where ONNX exports are cached (the ONNX encoders need one)
    batch_size: int = DEFAULT_BATCH_SIZE  # texts per encoder call when indexing

    def embedder(self) -> Embedder:
        """An (unloaded) Embedder for these settings' model, encoder and batch size: the only way the service, the
        CLI and eval build one, so every writer of a collection embeds as its readers do."""
        return Embedder(self.model, self.batch_size, encoder=self.encoder, models_dir=self.models_dir, threads=self.threads)


@dataclass(frozen=True)
class DocumentInfo:
    """What a listing says about a document (its text is fetched separately, by `Engine.document`)."""

    id: str
    title: str
    source: str
    sha256: str
    chunks: int
    characters: int
    media_type: str | None = None  # of the file it was parsed from; None for text added as text


@dataclass(frozen=True)
class DocumentPage:
    """One page of a listing in id order: its documents, the id the next page starts after (None on the last
    page), and how many documents the collection holds."""

    documents: list[DocumentInfo]
    next_after: str | None
    total: int


@dataclass(frozen=True)
class EngineStats:
    documents: int
    chunks: int
    model: str
    built_at: str
    generation: int
    segments: int
    units: int = 0  # sentences (evidence units) indexed besides the chunks


@dataclass(frozen=True)
class Answer:
    composed: ComposedAnswer
    passages: list[Passage]

    @property
    def cited(self) -> list[Passage]:
        return self.composed.cited


class Engine:
    def __init__(self, collection: Collection, embedder: Embedder, settings: EngineSettings) -> None:
        self.collection = collection
        self.embedder = embedder
        self.settings = settings
        self.tokenizer = LexicalTokenizer(settings.index.lexical)
        self.preparer = Preparer(embedder, settings.index)
        self.writer = Writer(collection, self.preparer, settings.write_timeout)
        self.selector = QuoteSelector.load() if settings.learned_quotes else None
        self.head_ranker = HeadRanker.load() if settings.learned_ranking and settings.learned_quotes else None
        reading = settings.reader_depth > 0 and settings.learned_quotes
        self.reader = Reader(threads=settings.threads, sentences=settings.reader_sentences) if reading else None
        self.pages = PageViews(self.writer.originals.path)
        self._claim_checker: ClaimChecker | None = None
        self._claim_checker_lock = threading.Lock()

    @classmethod
    def open(cls, folder: Path, settings: EngineSettings, embedder: Embedder | None = None) -> Engine:
        """Open the collection at folder; raises IndexMissingError / IndexMismatchError with a clear message."""
        embedder = (embedder or settings.embedder()).load()
        return cls(Collection.open(folder, settings.index.config_for(embedder), settings.durable_writes), embedder, settings)

    @classmethod
    def create(cls, folder: Path, settings: EngineSettings, embedder: Embedder | None = None, rebuild: bool = False) -> Engine:
        """Open the collection at folder, creating an empty one if there is none (or emptying it first, with
        `rebuild`). Raises IndexMismatchError when it was built with other settings and rebuild is False."""
        embedder = (embedder or settings.embedder()).load()
        config = settings.index.config_for(embedder)
        if rebuild and Path(folder).exists():
            Collection.remove(folder)
        durable = settings.durable_writes
        collection = (
            Collection.open(folder, config, durable) if Collection.exists(folder) else Collection.create(folder, config, durable)
        )
        return cls(collection, embedder, settings)

    def variant(self, settings: EngineSettings) -> Engine:
        """Another engine over this one's segments and model, ranking with other settings (the eval's sweeps
        compare variants this way; this engine is never changed). The index settings must be the collection's,
        except BM25's k1 and b, which act at query time."""
        lexical = settings.index.lexical
        if replace(settings.index, lexical=self.settings.index.lexical) != self.settings.index:
            raise ValueError("a variant ranks differently; its index settings must be the collection's")
        collection = self.collection if lexical == self.collection.lexical else self.collection.scored_with(lexical)
        return Engine(collection, self.embedder, settings)

    def close(self) -> None:
        """Close the collection, once a background merge has stopped (it ends before its commit; nothing is lost)."""
        self.writer.close()
        self.collection.close()

    # -- reading ----------------------------------------------------------------------------------

    def document(self, doc_id: str) -> Document | None:
        return self.collection.document(doc_id)

    def document_info(self, doc_id: str) -> DocumentInfo | None:
        entry = self.document_entry(doc_id)
        return entry[0] if entry else None

    def document_entry(self, doc_id: str) -> tuple[DocumentInfo, Document] | None:
        """A document and what a listing says of it, from one read: never the summary of one version with the text
        of another."""
        entry = self.collection.document_entry(doc_id)
        if entry is None:
            return None
        row, document = entry
        info = DocumentInfo(
            document.id,
            document.title,
            document.source,
            document.sha256,
            row.chunks,
            len(document.text),
            document.meta.get("media_type"),
        )
        return info, document

    def chunks(self, doc_id: str) -> list[Chunk]:
        """The live chunks of one document, in order (empty for an unknown id)."""
        return self.collection.chunks(doc_id)

    def documents(self) -> list[DocumentInfo]:
        """Every document, sorted by id (for callers that need them all; a listing served to clients pages with
        `documents_page`)."""
        return self._infos(self.collection.documents())

    def documents_page(self, after: str | None, limit: int) -> DocumentPage:
        """Up to `limit` documents whose ids sort after `after` (from the first when None), in id order; reads
        only those documents, however many the collection holds. `DocumentPage.next_after` is where the next page
        starts, None on the last page."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        rows, total = self.collection.catalog.document_page(after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return DocumentPage(self._infos(rows), rows[-1].id if more else None, total)

    def _infos(self, rows: list[DocumentRow]) -> list[DocumentInfo]:
        """What a listing says of each row's document (titles and sizes come from its segment); a document
        removed since its row was read is left out."""
        snapshot = self.collection.snapshot()
        listing = []
        for row in rows:
            reader = snapshot.reader(row.segment)
            document = reader.document(row.local) if reader else self.collection.document(row.id)
            if document is not None:
                listing.append(
                    DocumentInfo(
                        row.id,
                        document.title,
                        row.source,
                        row.sha256,
                        row.chunks,
                        len(document.text),
                        document.meta.get("media_type"),
                    )
                )
        return listing

    def stats(self) -> EngineStats:
        documents, chunks = self.collection.counts()
        snapshot = self.collection.snapshot()
        manifest = self.collection.manifest
        units = sum(len(segment.reader.units) for segment in snapshot.segments)
        return EngineStats(
            documents, chunks, manifest.config.model_name, manifest.built_at, snapshot.generation, len(snapshot.segments), units
        )

    # -- ranking ----------------------------------------------------------------------------------

    def rank(
        self, query: str, depth: int, mode: SearchMode | None = None, query_vector: np.ndarray | None = None
    ) -> tuple[list[Hit], list[Quote]]:
        """`depth` hits in final order, and the quotes of the first len(quotes) of them.

        In hybrid mode the head of the ranking (`rerank_depth` hits, whatever `depth` is) is re-scored with what
        its quotes found: by the learned head model (index/ranking/head_ranker.py), or with learned ranking off by the
        fused score plus the quote score's weight times the quote score. Either way a chunk holding one sentence
        that answers outranks a chunk that is only broadly about the topic. A head hit whose quote is the same
        sentence as a better hit's (overlapping chunks) is dropped, so the first results are distinct evidence.
        """
        mode = mode or self.settings.retrieval.mode
        vector = self.embedder.embed_query(query) if query_vector is None else query_vector
        hits, quotes = self.first_pass(query, depth, mode, vector)
        head = hits[: len(quotes)]
        rescored = self._rescored(head, quotes)
        if self.reader is not None and rescored:
            rescored = self._read(query, vector, rescored)
        seen: set[tuple[str, int, int]] = set()
        distinct = []
        for hit, quote in rescored:
            key = (hit.doc_id, quote.start, quote.end)
            if key not in seen:
                seen.add(key)
                distinct.append((hit, quote))
        ranked = [h for h, _ in distinct] + hits[len(head) :]
        return ranked[:depth], [q for _, q in distinct][:depth]

    def _rescored(self, head: list[Hit], quotes: list[Quote]) -> list[tuple[Hit, Quote]]:
        """The head's hits re-scored with their quotes and sorted, best first."""
        if self.head_ranker is not None:
            scores = self.head_ranker.scores(head, quotes).tolist()
        else:
            scores = [h.score + self.settings.quote_rerank_weight * q.score for h, q in zip(head, quotes, strict=True)]
        rescored = [(replace(h, score=s), q) for h, q, s in zip(head, quotes, scores, strict=True)]
        rescored.sort(key=lambda pair: (-pair[0].score, pair[0].row))
        return rescored

    def _read(self, query: str, vector: np.ndarray, rescored: list[tuple[Hit, Quote]]) -> list[tuple[Hit, Quote]]:
        """The first `reader_depth` hits quoted again with the reader, and re-ordered among themselves by the head
        model reading the new quotes' probabilities (the combined P(holds the answer), in the selector's place)."""
        assert self.reader is not None
        first = [hit for hit, _ in rescored[: self.settings.reader_depth]]
        terms = self.tokenizer.tokenize([query])[0]
        quotes = self._finder(first[0].snapshot).quotes(query, terms, vector, first, self.reader)
        if self.head_ranker is None:  # hand-set re-scoring: the hits keep their order
            return list(zip(first, quotes, strict=True)) + rescored[len(first) :]
        return self._rescored(first, quotes) + rescored[len(first) :]

    def first_pass(
        self, query: str, depth: int, mode: SearchMode, query_vector: np.ndarray | None = None
    ) -> tuple[list[Hit], list[Quote]]:
        """The fused ranking (`depth` + `rerank_depth` hits) and the quotes of its head, the hits `rank` re-scores
        (none outside hybrid mode, or with re-scoring off). The learned head model is trained on this output."""
        snapshot = self.collection.snapshot()
        vector = self.embedder.embed_query(query) if query_vector is None else query_vector
        terms = self.tokenizer.tokenize([query])[0]
        head_size = self.settings.rerank_depth
        hits = Retriever(snapshot, self.settings.retrieval).search(terms, vector, depth + head_size, mode)
        rescoring = mode is SearchMode.HYBRID and self.settings.quote_rerank_weight > 0
        head = hits[:head_size] if rescoring else []
        return hits, self._finder(snapshot).quotes(query, terms, vector, head)

    def _finder(self, snapshot: Snapshot) -> EvidenceFinder:
        answer = self.settings.answer
        return EvidenceFinder(
            snapshot,
            self.tokenizer,
            self.settings.quote_lexical_weight,
            self.selector,
            answer.companion_ratio,
            answer.companion_probability,
        )

    def search(self, query: str, top_k: int = 5, mode: SearchMode | None = None) -> list[Passage]:
        vector = self.embedder.embed_query(query)
        hits, quotes = self.rank(query, top_k, mode, vector)
        if len(quotes) < len(hits):  # asked for more than the re-scored head: quote the rest as they come
            snapshot = hits[0].snapshot
            terms = self.tokenizer.tokenize([query])[0]
            quotes = quotes + self._finder(snapshot).quotes(query, terms, vector, hits[len(quotes) :])
        return self.passages(hits, quotes)

    def passages(self, hits: list[Hit], quotes: list[Quote]) -> list[Passage]:
        """Ranked hits and their quotes as passages, ranks from 1, each with its document, chunk and the boxes of
        its quote on the page (documents with pages)."""
        passages = []
        for rank, (hit, quote) in enumerate(zip(hits, quotes, strict=True), start=1):
            document = hit.snapshot.document_of(hit.row)
            boxes = tuple(self.pages.boxes(document, quote.start, quote.end))
            passages.append(Passage(rank, hit, document, quote, hit.chunk, boxes))
        return passages

    def support_scorer(self, passages: list[Passage], checker: ClaimChecking = "similarity") -> SupportScores:
        """What checks an upstream answer's claims against `passages`: the claim checker reading them after their
        documents' titles ("model"), or this model's vectors, this collection's words and the term weights of the
        snapshot the passages came from ("similarity")."""
        if checker == "model":
            return self.claim_checker().scorer([p.document.title for p in passages])
        idf = passages[0].hit.snapshot.idf if passages else (lambda terms: dict.fromkeys(terms, 1.0))
        return SupportScorer(self.embedder.embed, self.tokenizer.tokenize, idf)

    def claim_checker(self) -> ClaimChecker:
        """The claim checker, loaded on first use: a server that never checks an upstream answer never loads it."""
        with self._claim_checker_lock:
            if self._claim_checker is None:
                self._claim_checker = ClaimChecker(threads=self.settings.threads)
            return self._claim_checker

    def ask(self, question: str, top_k: int = 5) -> Answer:
        passages = self.search(question, top_k)
        return Answer(compose_answer(passages, self.settings.answer), passages)

    # -- writing: the one write path (index/writing/writer.py) ------------------------------------

    @property
    def background_merges(self) -> bool:
        """True (a server): merges run after a write in a background thread. False (a command that exits right
        after its writes): none after a write; the command calls `settle` before it exits."""
        return self.writer.background_merges

    @background_merges.setter
    def background_merges(self, value: bool) -> None:
        self.writer.background_merges = value

    @property
    def originals(self) -> OriginalStore:
        return self.writer.originals

    @property
    def folder(self) -> Path:
        return self.collection.folder

    def generation(self) -> int:
        """The number of the last commit: it grows by one with every write that changed something."""
        return self.collection.generation()

    def upsert(self, documents: list[Document], progress: Progress = NO_PROGRESS) -> WriteResult:
        return self.writer.upsert(documents, progress)

    def sync(self, documents: list[Document], source_prefix: str | None, progress: Progress = NO_PROGRESS) -> WriteResult:
        return self.writer.sync(documents, source_prefix, progress)

    def ingest_files(
        self,
        files: Sequence[IncomingFile],
        source_prefix: str,
        limits: ParseLimits = DEFAULT_LIMITS,
        progress: Progress = NO_PROGRESS,
    ) -> IngestReport:
        return self.writer.ingest_files(files, source_prefix, limits, progress)

    def delete(self, doc_ids: list[str]) -> WriteResult:
        return self.writer.delete(doc_ids)

    def merge(self, force: bool = False) -> int:
        return self.writer.merge(force)

    def settle(self) -> None:
        self.writer.settle()
