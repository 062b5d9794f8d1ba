"""Where to put the abstention threshold: the precision/recall curve of "Not found" over answerable and
unanswerable questions, on the seed document and (given one) a SQuAD-style dataset.

    python -m citeqa.eval.calibrate [--dataset ../shared/data/squad-dev-a] [--max-queries 2000] [--held-out]

The signal is the top passage's quote score, the one `/v1/ask` compares with CITEQA_MIN_RELEVANCE. Answerable:
the gold set's answerable questions, and the dataset's (all of which have answers). Unanswerable: the gold set's
own, and eval/unanswerable.jsonl's for each corpus (written close to its topics, answered nowhere in it).
`--held-out` asks only the dataset's questions about articles the shipped reader never read (its reader.json names
them), so the reader's probability is not measured on its training data.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from citeqa.eval.beir import load_beir
from citeqa.eval.gold import load_gold, load_unanswerable
from citeqa.eval.reader_figures import held_out, reader_articles
from citeqa.eval.runner import cached_engine, default_cache_dir
from citeqa.index.engine import Engine
from citeqa.index.writing.ingest import load_folder
from citeqa.settings import Settings

SIGNALS = {
    "quote score (CITEQA_MIN_RELEVANCE)": np.round(np.arange(0.30, 1.501, 0.05), 2),
    # The selector's probability, or where the reader read the passage (reader_depth > 0) the two combined.
    "quote probability": np.round(np.arange(0.05, 0.951, 0.05), 2),
}


def top_signals(engine: Engine, questions: list[str]) -> np.ndarray:
    """Per question, two candidate abstention signals of the top passage's quote (0 when nothing is found): its
    score, which /v1/ask compares with CITEQA_MIN_RELEVANCE, and the quote selector's probability that it answers."""
    rows = []
    for question in questions:
        passages = engine.search(question, 1)
        quote = passages[0].quote if passages else None
        rows.append((quote.score, quote.probability or 0.0) if quote else (0.0, 0.0))
    return np.array(rows).reshape(-1, 2)


@dataclass
class Scores:
    corpus: str
    answerable: np.ndarray
    unanswerable: np.ndarray


@dataclass(frozen=True)
class CurvePoint:
    threshold: float
    precision: float  # of "Not found": the share of abstentions that were on unanswerable questions
    recall: float  # the share of unanswerable questions abstained on
    answerable_abstained: float  # the share of answerable questions wrongly abstained on


def curve_point(groups: list[Scores], threshold: float) -> CurvePoint:
    """Abstention precision and recall pooled over the groups. Each group's answerable questions weigh as many as
    its unanswerable ones, so 2,000 SQuAD questions do not drown 30 unanswerable ones."""
    true_abstain = wrong_abstain = 0.0
    unanswerable_total = 0
    answerable_rates = []
    for group in groups:
        caught = float((group.unanswerable < threshold).sum())
        rate = float((group.answerable < threshold).mean())
        true_abstain += caught
        wrong_abstain += rate * len(group.unanswerable)
        unanswerable_total += len(group.unanswerable)
        answerable_rates.append(rate)
    abstained = true_abstain + wrong_abstain
    precision = true_abstain / abstained if abstained else 1.0
    return CurvePoint(threshold, precision, true_abstain / unanswerable_total, float(np.mean(answerable_rates)))


def describe(group: Scores) -> None:
    answerable, unanswerable = group.answerable, group.unanswerable
    low, high = np.percentile(answerable, 5), np.percentile(unanswerable, 95)
    print(f"{group.corpus}: answerable n={len(answerable)} min {answerable.min():.3f} p5 {low:.3f}; "
          f"unanswerable n={len(unanswerable)} max {unanswerable.max():.3f} p95 {high:.3f}")  # fmt: skip


def print_curve(groups: list[Scores], thresholds: np.ndarray, current: float | None) -> None:
    header = "threshold  precision  recall  F1     " + "  ".join(f"{g.corpus}: unans. caught / ans. lost" for g in groups)
    print(header)
    best = max((curve_point(groups, t) for t in thresholds), key=f1)
    for threshold in sorted({*thresholds.tolist(), *([current] if current is not None else [])}):
        point = curve_point(groups, threshold)
        per_group = "  ".join(
            f"{int((g.unanswerable < threshold).sum()):>3}/{len(g.unanswerable)} / {(g.answerable < threshold).mean():.3f}"
            for g in groups
        )
        mark = " <- current" if threshold == current else " <- best F1" if threshold == best.threshold else ""
        print(f"{threshold:9.2f}  {point.precision:9.3f}  {point.recall:6.3f}  {f1(point):.3f}  {per_group}{mark}")


def f1(point: CurvePoint) -> float:
    total = point.precision + point.recall
    return 2 * point.precision * point.recall / total if total else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, help="a BEIR dataset whose questions all have answers in its corpus")
    parser.add_argument("--max-queries", type=int, default=2000)
    parser.add_argument("--held-out", action="store_true", help="only questions of articles the reader never read")
    args = parser.parse_args()
    settings = Settings()
    engine_settings = settings.engine_settings()
    documents = load_folder(settings.corpus_dir).documents
    engine = cached_engine(f"gold-{settings.corpus_dir.name}", documents, engine_settings, default_cache_dir())
    gold = load_gold()
    unanswerable = [q.question for q in gold if not q.answerable] + load_unanswerable("seed")
    measured = [("seed", top_signals(engine, [q.question for q in gold if q.answerable]), top_signals(engine, unanswerable))]
    if args.dataset:
        dataset = load_beir(args.dataset)
        if args.held_out:
            dataset = held_out(dataset, reader_articles()["held_out"])
        dataset_engine = cached_engine(dataset.name, dataset.documents(), engine_settings, default_cache_dir())
        answerable = top_signals(dataset_engine, list(dataset.queries.values())[: args.max_queries])
        measured.append((dataset.name, answerable, top_signals(dataset_engine, load_unanswerable(dataset.name))))
    for column, (signal, thresholds) in enumerate(SIGNALS.items()):
        print(f"\n== abstaining when the {signal} is below the threshold")
        groups = [Scores(name, answerable[:, column], unanswerable[:, column]) for name, answerable, unanswerable in measured]
        for group in groups:
            describe(group)
        print_curve(groups, thresholds, engine_settings.answer.min_relevance if column == 0 else None)


if __name__ == "__main__":
    main()
