"""Where to put the abstention threshold: the best quote's score for answerable and unanswerable
gold questions (and, given a SQuAD-style dataset, for its all-answerable questions).

    python -m citeqa.eval.calibrate [--dataset ../shared/data/squad-dev-a]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from citeqa.eval.beir import load_beir
from citeqa.eval.gold import load_gold
from citeqa.eval.runner import cached_engine, default_cache_dir
from citeqa.index.documents import load_corpus
from citeqa.index.engine import Engine
from citeqa.settings import Settings


def top_scores(engine: Engine, questions: list[str]) -> np.ndarray:
    """The abstention signal for each question: the top passage's quote score (0 when nothing is found)."""
    scores = []
    for question in questions:
        passages = engine.search(question, 1)
        scores.append(passages[0].quote.score if passages else 0.0)
    return np.array(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, help="a BEIR dataset whose questions all have answers in its corpus")
    parser.add_argument("--max-queries", type=int, default=2000)
    args = parser.parse_args()
    settings = Settings()
    engine_settings = settings.engine_settings()
    documents = load_corpus(settings.corpus_dir).documents
    engine = cached_engine(f"gold-{settings.corpus_dir.name}", documents, engine_settings, default_cache_dir())
    gold = load_gold()
    answerable = top_scores(engine, [q.question for q in gold if q.answerable])
    unanswerable = top_scores(engine, [q.question for q in gold if not q.answerable])
    print(f"gold answerable   (n={len(answerable)}): min {answerable.min():.3f}  p5 {np.percentile(answerable, 5):.3f}")
    print(f"gold unanswerable (n={len(unanswerable)}): max {unanswerable.max():.3f}  p95 {np.percentile(unanswerable, 95):.3f}")
    print("unanswerable, sorted:", " ".join(f"{s:.3f}" for s in sorted(unanswerable)))
    print("answerable, lowest 8:", " ".join(f"{s:.3f}" for s in sorted(answerable)[:8]))
    print(f"current threshold (CITEQA_MIN_RELEVANCE): {engine_settings.answer.min_relevance}")
    if args.dataset:
        dataset = load_beir(args.dataset)
        questions = list(dataset.queries.values())[: args.max_queries]
        squad = top_scores(cached_engine(dataset.name, dataset.documents(), engine_settings, default_cache_dir()), questions)
        for threshold in (0.3, 0.35, 0.4, 0.42, 0.45, 0.5):
            print(f"{dataset.name}: share of answerable questions abstained on at {threshold}: {(squad < threshold).mean():.3f}")


if __name__ == "__main__":
    main()
