"""The quote selector's training data: a BEIR-format SQuAD corpus with its evidence units embedded and tokenised,
and for each question its candidate sets (the answering paragraph, its closest wrong paragraph, the chunks of the
answering paragraph that hold the answer), each unit labelled and scored by today's rule. Read by
eval/train_quote_selector.py."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from citeqa.eval.beir import load_beir
from citeqa.eval.embedding_cache import CachedEmbedder
from citeqa.index.ranking.quote_features import CandidateUnits, QuestionInput, quote_features
from citeqa.index.text.chunking import ChunkerSettings, split_document
from citeqa.index.text.documents import Document
from citeqa.index.text.lexical import LexicalSettings, LexicalTokenizer, bm25_idf
from citeqa.index.text.spans import Span, evidence_units, trim

HEURISTIC_LEXICAL_WEIGHT = 1.0  # today's quote score: cosine + 1.0 × overlap (EngineSettings.quote_lexical_weight)


class ChunkIdf:
    """Inverse document frequency over chunks, in the form the index's BM25 uses (Lucene's):
    ln(1 + (N - df + 0.5) / (df + 0.5)), so a term never seen gets the most."""

    def __init__(self, chunk_terms: list[list[str]]) -> None:
        self.size = len(chunk_terms)
        self.frequency: Counter[str] = Counter(t for terms in chunk_terms for t in set(terms))

    def idf(self, terms: set[str]) -> dict[str, float]:
        return {t: bm25_idf(self.size, self.frequency[t]) for t in terms}


@dataclass
class Corpus:
    """Documents with their evidence units embedded and tokenised, and an IDF over their chunks."""

    documents: dict[str, Document]
    units: dict[str, list[Span]]  # doc id -> its evidence units, in text order
    unit_rows: dict[str, np.ndarray]  # doc id -> rows of `vectors` / `terms` for its units
    vectors: np.ndarray
    terms: list[list[str]]
    lexical: ChunkIdf
    tokenizer: LexicalTokenizer
    chunks: dict[str, list[Span]] = field(default_factory=dict)  # doc id -> chunk spans (default chunker)

    @classmethod
    def build(cls, documents: list[Document], embedder: CachedEmbedder) -> Corpus:
        settings, chunker = LexicalSettings(), ChunkerSettings()
        tokenizer = LexicalTokenizer(settings)
        units: dict[str, list[Span]] = {}
        unit_rows: dict[str, np.ndarray] = {}
        texts: list[str] = []
        chunks: dict[str, list[Span]] = {}
        chunk_texts: list[str] = []
        for document in documents:
            spans = evidence_units(document.text)
            units[document.id] = spans
            unit_rows[document.id] = np.arange(len(texts), len(texts) + len(spans))
            texts.extend(document.text[s.start : s.end] for s in spans)
            pieces = split_document(document, chunker)
            chunks[document.id] = [Span(c.start, c.end) for c in pieces]
            chunk_texts.extend(c.text for c in pieces)
        vectors = embedder.embed(texts, show_progress=True)
        embedder.save()
        # IDF over chunks, as the store's BM25 computes it (chunk texts; the title line some chunks are indexed
        # with changes only the title words' counts, which are common within an article anyway).
        lexical = ChunkIdf(tokenizer.tokenize(chunk_texts))
        return cls({d.id: d for d in documents}, units, unit_rows, vectors, tokenizer.tokenize(texts), lexical, tokenizer, chunks)

    def question(self, text: str, vector: np.ndarray) -> QuestionInput:
        return QuestionInput.build(text, vector, self.tokenizer.tokenize, self.lexical.idf)

    def candidates(self, doc_id: str, window: Span | None = None) -> tuple[CandidateUnits, list[Span]]:
        """The units of a document (or those overlapping `window`, clipped to it, as index/ranking/evidence.py does)."""
        document, rows = self.documents[doc_id], self.unit_rows[doc_id]
        picked, spans = [], []
        for k, unit in enumerate(self.units[doc_id]):
            if window is None:
                span = unit
            elif unit.start < window.end and unit.end > window.start:
                span = trim(document.text, Span(max(unit.start, window.start), min(unit.end, window.end)))
            else:
                continue
            picked.append(k)
            spans.append(span)
        previous = np.zeros((len(picked), self.vectors.shape[1]), dtype=np.float32)
        previous_terms: list[list[str]] = []
        for i, k in enumerate(picked):
            if k > 0:
                previous[i] = self.vectors[rows[k - 1]]
            previous_terms.append(self.terms[rows[k - 1]] if k > 0 else [])
        texts = [document.text[s.start : s.end] for s in spans]
        # Clipped texts are re-tokenised; whole units reuse the stored terms.
        terms = [self.terms[rows[k]] for k in picked] if window is None else self.tokenizer.tokenize(texts)
        return CandidateUnits(texts, terms, self.vectors[rows[picked]], previous, previous_terms), spans

    def today(self, text: str, vector: np.ndarray, candidates: CandidateUnits) -> np.ndarray:
        """Today's quote score (index/ranking/evidence.py): cosine + 1.0 × the IDF-weighted share of the question's
        stemmed terms in the unit, with every term the tokenizer keeps (question words included)."""
        weights = self.lexical.idf(set(self.tokenizer.tokenize([text])[0]))
        total = sum(weights.values())
        overlap = [
            sum(w for t, w in weights.items() if t in set(terms)) / total if total > 0 else 0.0 for terms in candidates.terms
        ]
        return np.asarray(candidates.vectors, dtype=np.float64) @ vector + HEURISTIC_LEXICAL_WEIGHT * np.array(overlap)


@dataclass
class SquadSet:
    """A SQuAD-style dataset ready to train on: its corpus embedded, and each question that has answers with the
    paragraph it was written on, as (question, doc id, answers), and its vector."""

    corpus: Corpus
    questions: list[tuple[str, str, list[str]]]
    vectors: np.ndarray
    embedder: CachedEmbedder

    @classmethod
    def load(cls, folder: Path, cache: Path | None) -> SquadSet:
        """`cache` is the embedding cache folder (default: the data home's eval-cache/quote-selector, which the
        quote selector's and the reader's training share)."""
        from citeqa.eval.runner import default_cache_dir
        from citeqa.settings import Settings

        embedder = CachedEmbedder.for_settings(cache or default_cache_dir() / "quote-selector", Settings().engine_settings())
        dataset = load_beir(folder)
        corpus = Corpus.build(dataset.documents(), embedder)
        questions = []
        for qid, text in dataset.queries.items():
            gold = [d for d, grade in dataset.qrels[qid].items() if grade > 0 and d in corpus.documents]
            if gold and dataset.answers.get(qid):
                questions.append((text, gold[0], dataset.answers[qid]))
        vectors = embedder.embed([q[0] for q in questions], show_progress=True)
        embedder.save()
        return cls(corpus, questions, vectors, embedder)


@dataclass
class Group:
    """One candidate set: the units of a paragraph (or chunk) for one question."""

    question: int  # index into the question list
    features: np.ndarray
    labels: np.ndarray
    heuristic: np.ndarray  # today's score of each unit
    kind: str  # "gold" (the answering paragraph), "distractor" (a close wrong one), "chunk" (a chunk of the gold one)


def squad_groups(corpus: Corpus, questions: list[tuple[str, str, list[str]]], question_vectors: np.ndarray) -> list[Group]:
    """Candidate sets per question: its paragraph, its closest wrong paragraph, and the chunks holding the answer."""
    by_title: dict[str, list[str]] = {}
    for doc_id, document in corpus.documents.items():
        by_title.setdefault(document.title, []).append(doc_id)
    groups: list[Group] = []
    for qi, (text, gold_id, answers) in enumerate(questions):
        question = corpus.question(text, question_vectors[qi])
        candidates, _ = corpus.candidates(gold_id)
        labels = np.array([any(a in t for a in answers) for t in candidates.texts], dtype=np.int8)
        if not labels.any():
            continue
        groups.append(
            Group(qi, quote_features(question, candidates), labels, corpus.today(text, question.vector, candidates), "gold")
        )
        # The closest wrong paragraph of the same article, by its best unit's cosine: what dense retrieval puts next.
        others = [d for d in by_title[corpus.documents[gold_id].title] if d != gold_id]
        best_group, best_today = None, None
        if others:
            closest = max(others, key=lambda d: float((corpus.vectors[corpus.unit_rows[d]] @ question.vector).max()))
            other_candidates, _ = corpus.candidates(closest)
            keep = [i for i, t in enumerate(other_candidates.texts) if not any(a in t for a in answers)]
            if keep:
                best_group = quote_features(question, other_candidates)[keep]
                best_today = corpus.today(text, question.vector, other_candidates)[keep]
        if best_group is not None and best_today is not None:
            groups.append(Group(qi, best_group, np.zeros(len(best_group), dtype=np.int8), best_today, "distractor"))
        for chunk in corpus.chunks[gold_id]:
            chunk_candidates, _ = corpus.candidates(gold_id, chunk)
            chunk_labels = np.array([any(a in t for a in answers) for t in chunk_candidates.texts], dtype=np.int8)
            if chunk_labels.any():
                today = corpus.today(text, question.vector, chunk_candidates)
                groups.append(Group(qi, quote_features(question, chunk_candidates), chunk_labels, today, "chunk"))
    return groups
