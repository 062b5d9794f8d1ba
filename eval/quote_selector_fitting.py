"""How the quote selector is fitted and measured: the logistic model written as the shipped JSON, cross-validation
by article against today's rule, and the figures on the seed gold set (quote accuracy, the abstention signal).
Read by eval/train_quote_selector.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypedDict

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

from citeqa.eval.embedding_cache import CachedEmbedder
from citeqa.eval.gold import load_gold
from citeqa.eval.quote_training_data import Corpus, Group
from citeqa.home import bundled
from citeqa.index.ranking.quote_features import FEATURE_NAMES
from citeqa.index.ranking.quote_selector import MODEL_FORMAT, QuoteSelector
from citeqa.index.text.spans import Span
from citeqa.index.writing.ingest import load_folder

FOLDS = 5
# Inverse L2 strength; far stronger regularisation barely moved cross-validated top-1 (docs/tuning.md, "Quote
# selector and ONNX export").
C = 1.0


Scorer = Callable[[Group], np.ndarray]


def heuristic(group: Group) -> np.ndarray:
    return group.heuristic


def learned(selector: QuoteSelector) -> Scorer:
    return lambda group: selector.scores(group.features)


def positive_probability(predict_proba: Callable[[np.ndarray], np.ndarray]) -> Scorer:
    """A classifier's probability of the positive class as a scorer."""
    return lambda group: predict_proba(group.features)[:, 1]


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


def as_model_json(scaler: StandardScaler, model: LogisticRegression, extra: Mapping[str, object]) -> dict[str, object]:
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


class CrossValidation(TypedDict):
    folds: list[dict[str, float]]  # per fold: its figures by name
    summary: dict[str, dict[str, float]]  # per figure: mean, std, min and max over the folds


def cross_validate(groups: list[Group], titles: list[str], boosting: bool = False) -> CrossValidation:
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
            boosted = positive_probability(booster.predict_proba)
            folds[-1]["paragraph_top1_boosting"] = top1(gold, boosted)
            folds[-1]["chunk_top1_boosting"] = top1(chunk, boosted)
    summary: dict[str, dict[str, float]] = {}
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
    best: dict[str, list[float]] = {"learned": [], "heuristic": []}
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
        assert question.doc_id is not None  # an answerable gold question names its document (eval/gold.py check_gold)
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
    for name, tops in best.items():
        values_arr = np.array(tops)
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
