"""The reader's training data: (question, sentence, label) pairs from a SQuAD-style BEIR dataset, split by article.

For each question: every evidence unit of the paragraph it was written on (label 1 when the unit contains one of
its answer strings, else 0), and every unit of the closest other paragraph of the same article by best unit cosine
(label 0, units containing an answer string left out): the paragraph dense retrieval puts next, so the negatives
are the hard ones citeqa itself meets. Questions whose answer no single unit contains are left out.

Folds are by article, never by question: sorted article titles alternate between fold 0 and fold 1, so a model
is always measured on articles it never read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from citeqa.eval.quote_training_data import Corpus
from citeqa.index.ranking.quote_features import QuestionInput
from citeqa.index.ranking.quote_selector import QuoteSelector
from citeqa.index.ranking.reader import reader_input

FOLDS = 2


@dataclass
class ReaderGroup:
    """One question's candidate units from one paragraph, with the shipped selector's probabilities."""

    question: str
    title: str  # its article
    fold: int
    kind: str  # "gold" (the answering paragraph) or "distractor" (its closest wrong one)
    texts: list[str]  # reader_input(title, unit)
    labels: np.ndarray
    selector: np.ndarray


def article_folds(titles: list[str]) -> dict[str, int]:
    return {title: k % FOLDS for k, title in enumerate(sorted(set(titles)))}


def reader_groups(corpus: Corpus, questions: list[tuple[str, str, list[str]]], question_vectors: np.ndarray) -> list[ReaderGroup]:
    selector = QuoteSelector.load()
    folds = article_folds([d.title for d in corpus.documents.values()])
    by_title: dict[str, list[str]] = {}
    for doc_id, document in corpus.documents.items():
        by_title.setdefault(document.title, []).append(doc_id)
    groups: list[ReaderGroup] = []
    for (text, gold_id, answers), vector in zip(questions, question_vectors, strict=True):
        title = corpus.documents[gold_id].title
        question: QuestionInput = corpus.question(text, vector)
        candidates, _ = corpus.candidates(gold_id)
        labels = np.array([any(a in t for a in answers) for t in candidates.texts], dtype=np.int8)
        if not labels.any():
            continue
        fold = folds[title]
        texts = [reader_input(title, t) for t in candidates.texts]
        groups.append(ReaderGroup(text, title, fold, "gold", texts, labels, selector.score(question, candidates)))
        others = [d for d in by_title[title] if d != gold_id]
        if not others:
            continue
        closest = max(others, key=lambda d: float((corpus.vectors[corpus.unit_rows[d]] @ vector).max()))
        other, _ = corpus.candidates(closest)
        keep = [i for i, t in enumerate(other.texts) if not any(a in t for a in answers)]
        if keep:
            scores = selector.score(question, other)[keep]
            texts = [reader_input(title, other.texts[i]) for i in keep]
            groups.append(ReaderGroup(text, title, fold, "distractor", texts, np.zeros(len(keep), dtype=np.int8), scores))
    return groups
