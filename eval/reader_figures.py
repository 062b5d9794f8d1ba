"""What the reader changes, measured through the served ranking path: the reader off and at a few depths.

    python -m citeqa.eval.reader_figures --dataset ../shared/data/squad-dev-a [--depths 0 1 3 5] [--sentences 0 3]

On the SQuAD-style dataset only the questions of the articles the shipped reader never read are asked (its
reader.json names them), so nothing here is measured on training data. Also the gold set and the paraphrased set
(eval/paraphrased.jsonl: questions about the seed document worded away from its text, never trained on) over the
seed documents. Prints one table per set, with milliseconds per query. `--sentences` gives a row per depth and
number of sentences the reader reads in each passage (0: all of them; default: the served setting,
CITEQA_READER_SENTENCES).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from citeqa.eval.beir import BeirDataset, load_beir
from citeqa.eval.gold import GOLD_PATH, load_gold
from citeqa.eval.runner import cached_engine, default_cache_dir, evaluate_beir, evaluate_gold, markdown_table
from citeqa.home import bundled
from citeqa.index.models.pair_model import MODEL_FOLDER
from citeqa.index.ranking.reader import INFO_FILE
from citeqa.index.ranking.search import SearchMode
from citeqa.index.writing.ingest import load_folder
from citeqa.settings import Settings

PARAPHRASED_PATH = Path(__file__).resolve().parent / "paraphrased.jsonl"


def reader_articles() -> dict[str, set[str]]:
    """The articles the shipped reader was trained on ("trained") and those it never read ("held_out")."""
    info = json.loads((MODEL_FOLDER / INFO_FILE).read_text(encoding="utf-8"))
    return {"trained": set(info["trained_on_articles"]), "held_out": set(info["held_out"]["articles"])}


def held_out(dataset: BeirDataset, articles: set[str]) -> BeirDataset:
    """The dataset's questions whose answering paragraph belongs to one of `articles` (the corpus stays whole)."""
    keep = {q for q, judged in dataset.qrels.items() if any(dataset.corpus[d][0] in articles for d in judged)}
    return replace(
        dataset,
        queries={q: t for q, t in dataset.queries.items() if q in keep},
        qrels={q: r for q, r in dataset.qrels.items() if q in keep},
        answers={q: a for q, a in dataset.answers.items() if q in keep},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, help="a SQuAD-style BEIR dataset the reader was trained on part of")
    parser.add_argument("--depths", type=int, nargs="+", default=[0, 1, 3, 5])
    parser.add_argument("--sentences", type=int, nargs="+", help="sentences read per passage (0: all; default: the setting)")
    args = parser.parse_args()
    settings = Settings().engine_settings()
    counts = args.sentences or [settings.reader_sentences]
    variants = {
        f"reader_depth {depth}" + (f", {sentences or 'all'} sentences" if depth else ""): replace(
            settings, reader_depth=depth, reader_sentences=sentences
        )
        for depth in args.depths
        for sentences in (counts if depth else [settings.reader_sentences])
    }
    base = cached_engine("seeds", load_folder(bundled("seeds")).documents, settings, default_cache_dir())
    for name, path in (("gold set", GOLD_PATH), ("paraphrased set", PARAPHRASED_PATH)):
        rows = {}
        for row, variant_settings in variants.items():
            variant = base.variant(variant_settings)
            started = time.perf_counter()
            report = evaluate_gold(variant, load_gold(path))
            milliseconds = 1000 * (time.perf_counter() - started) / report["questions"]
            rows[row] = report | {"ms_per_query": milliseconds}
        print(f"\n{name}\n" + markdown_table(rows, ["hit@1", "quote_accuracy", "complete_answers", "ms_per_query"]))
    base.close()
    if args.dataset is None:
        return
    dataset = held_out(load_beir(args.dataset), reader_articles()["held_out"])
    engine = cached_engine(dataset.name, dataset.documents(), settings, default_cache_dir())
    rows = {}
    for row, variant_settings in variants.items():
        report = evaluate_beir(engine.variant(variant_settings), dataset, (SearchMode.HYBRID,), False)
        rows[row] = report["modes"]["hybrid"]
    print(f"\n{dataset.name}, {len(dataset.queries)} questions of articles the reader never read")
    print(markdown_table(rows, ["ndcg@10", "hit@1", "mrr@10", "answer_in_top_quote", "ms_per_query"]))
    engine.close()


if __name__ == "__main__":
    main()
