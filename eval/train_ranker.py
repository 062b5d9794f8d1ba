"""Fit the learned head ranking (index/models/head_model.json) on SciFact's train split and squad-dev-a.

Every training question goes through the served engine's first pass (`Engine.first_pass`: fusion, then the
head's quotes), so the model learns from exactly the rows it will score. Within each question, every pair of a
relevant and an irrelevant head hit becomes one example (RankNet's pairwise logistic loss on a linear score);
questions weigh the same within a dataset and the two datasets weigh the same. squad-dev-a is checked by
5-fold cross-validation grouped by article (a fold's articles are never seen in training); SciFact's test split
and the classic collections are never used here (measure them with `citeqa eval`).

    python -m citeqa.eval.train_ranker --scifact ../shared/data/scifact --squad ../shared/data/squad-dev-a
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from citeqa.eval.beir import BeirDataset, load_beir
from citeqa.eval.metrics import mean, ndcg_at_k
from citeqa.eval.runner import BEIR_CHUNK_DEPTH, cached_engine, default_cache_dir
from citeqa.eval.train_quote_selector import rounded, versions
from citeqa.index.engine import Engine
from citeqa.index.models.onnx_export import sha256_file
from citeqa.index.ranking.head_ranker import FEATURE_NAMES, MODEL_FORMAT, head_features
from citeqa.index.ranking.search import SearchMode
from citeqa.settings import Settings

MODEL_PATH = Path(__file__).resolve().parent.parent / "index" / "models" / "head_model.json"
FOLDS = 5
C = 1.0  # tens of thousands of pairs for six coefficients: regularisation barely matters (1.0 is sklearn's default)


@dataclass
class Question:
    """One training question's head: features, relevance grades, and the documents ranked after the head."""

    features: np.ndarray
    grades: np.ndarray
    head_docs: list[str]
    rest_docs: list[str]
    fused_order_scores: np.ndarray  # the hand-set re-scoring (fused + weight * quote score), for comparison
    qrels: dict[str, int]


def questions_of(engine: Engine, dataset: BeirDataset) -> list[Question]:
    qids = list(dataset.queries)
    vectors = engine.embedder.embed([dataset.queries[q] for q in qids], show_progress=True)
    weight = engine.settings.quote_rerank_weight
    out = []
    for qid, vector in zip(qids, vectors, strict=True):
        hits, quotes = engine.first_pass(dataset.queries[qid], BEIR_CHUNK_DEPTH, SearchMode.HYBRID, vector)
        head = hits[: len(quotes)]
        grades = np.array([dataset.qrels[qid].get(hit.doc_id, 0) for hit in head], dtype=np.float64)
        out.append(
            Question(
                head_features(head, quotes),
                grades,
                [hit.doc_id for hit in head],
                [hit.doc_id for hit in hits[len(head) :]],
                np.array([hit.score + weight * quote.score for hit, quote in zip(head, quotes, strict=True)]),
                dataset.qrels[qid],
            )
        )
    return out


def pairs(questions: list[Question]) -> tuple[np.ndarray, np.ndarray]:
    """Feature differences (relevant minus irrelevant) and weights that sum to 1 per question."""
    differences, weights = [], []
    for question in questions:
        relevant, irrelevant = question.grades > 0, question.grades == 0
        if relevant.any() and irrelevant.any():
            pair = (question.features[relevant][:, None, :] - question.features[irrelevant][None, :, :]).reshape(
                -1, question.features.shape[1]
            )
            differences.append(pair)
            weights.append(np.full(len(pair), 1.0 / len(pair)))
    return np.vstack(differences), np.concatenate(weights)


def fit(datasets: list[list[Question]]) -> np.ndarray:
    """Coefficients of the linear score; each dataset's pairs weigh 1 in all."""
    parts = [pairs(questions) for questions in datasets]
    differences = np.vstack([d for d, _ in parts])
    weights = np.concatenate([w / w.sum() for _, w in parts])
    # Each difference both ways round (label 1 and 0), with no intercept: the model is antisymmetric, as a
    # preference between two hits must be.
    features = np.vstack([differences, -differences])
    labels = np.r_[np.ones(len(differences)), np.zeros(len(differences))]
    sample_weight = np.r_[weights, weights] * len(labels) / (2 * len(datasets))
    model = LogisticRegression(C=C, fit_intercept=False, max_iter=5000).fit(features, labels, sample_weight=sample_weight)
    return model.coef_[0]


def ndcg(question: Question, head_scores: np.ndarray) -> float:
    """nDCG@10 of documents ranked by their best chunk, the head in `head_scores` order, then the rest."""
    order = sorted(range(len(head_scores)), key=lambda i: -head_scores[i])  # stable: ties keep fused order
    ranked, seen = [], set()
    for doc in [question.head_docs[i] for i in order] + question.rest_docs:
        if doc not in seen:
            seen.add(doc)
            ranked.append(doc)
    return ndcg_at_k(ranked, question.qrels, 10)


def figures(questions: list[Question], coefficients: np.ndarray) -> dict[str, float]:
    return {
        "ndcg@10_learned": mean([ndcg(q, q.features @ coefficients) for q in questions]),
        "ndcg@10_hand_set": mean([ndcg(q, q.fused_order_scores) for q in questions]),
    }


def cross_validate(scifact: list[Question], squad: list[Question], articles: list[str]) -> dict[str, object]:
    """squad-dev-a by article: each fold's model sees SciFact's train split and the other folds' articles."""
    folds = []
    for train, test in GroupKFold(n_splits=FOLDS).split(squad, groups=articles):
        coefficients = fit([scifact, [squad[i] for i in train]])
        folds.append({"questions": len(test), **figures([squad[i] for i in test], coefficients)})
    total = sum(f["questions"] for f in folds)
    pooled = {key: sum(f[key] * f["questions"] for f in folds) / total for key in ("ndcg@10_learned", "ndcg@10_hand_set")}
    return {"method": f"GroupKFold({FOLDS}) of squad-dev-a by article title", "folds": folds, "pooled": pooled}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scifact", type=Path, required=True, help="SciFact in BEIR format (its qrels/train.tsv is used)")
    parser.add_argument("--squad", type=Path, required=True, help="squad-dev-a in BEIR format")
    parser.add_argument("--cache", type=Path, help="evaluation index cache (default: the data home's eval-cache)")
    parser.add_argument("--output", type=Path, default=MODEL_PATH)
    args = parser.parse_args()
    # The first pass does not read the head model, so training needs none (and never reads the one it replaces).
    settings = replace(Settings().engine_settings(), learned_ranking=False)
    cache = args.cache or default_cache_dir()

    scifact_train = load_beir(args.scifact, "train")
    scifact = questions_of(cached_engine("scifact", scifact_train.documents(), settings, cache), scifact_train)
    squad_data = load_beir(args.squad)
    squad = questions_of(cached_engine(squad_data.name, squad_data.documents(), settings, cache), squad_data)
    articles = [squad_data.corpus[min(squad_data.qrels[q])][0] for q in squad_data.queries]

    cv = cross_validate(scifact, squad, articles)
    coefficients = fit([scifact, squad])
    model = {
        "format": MODEL_FORMAT,
        "kind": "linear score fitted with a pairwise logistic (RankNet) loss",
        "formula": "score = features · coefficients (higher ranks first)",
        "feature_names": list(FEATURE_NAMES),
        "coefficients": coefficients.tolist(),
        "training": {
            "datasets": {
                "scifact (train split)": {
                    "questions": len(scifact),
                    "sha256": {n: sha256_file(args.scifact / n) for n in ("corpus.jsonl", "queries.jsonl", "qrels/train.tsv")},
                    **figures(scifact, coefficients),
                },
                squad_data.name: {
                    "questions": len(squad),
                    "sha256": {n: sha256_file(args.squad / n) for n in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv")},
                    **figures(squad, coefficients),
                },
            },
            "head": settings.rerank_depth,
            "C": C,
            "versions": versions(),
        },
        "cross_validation": cv,
    }
    document = rounded(model)
    args.output.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(document["training"]["datasets"], indent=1))
    print(json.dumps(cv["pooled"], indent=1))
    for name, weight in zip(FEATURE_NAMES, coefficients, strict=True):
        print(f"  {name:22s} {weight:+.3f}")
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
