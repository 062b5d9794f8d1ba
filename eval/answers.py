"""How complete and how padded the extractive answers are, on a dataset whose questions carry answer strings.

    python -m citeqa.eval.answers --dataset ../shared/data/squad-dev-a [--max-queries 1000]

For each question, /v1/ask's answer (Engine.ask, the served path) is split into its quoted sentences. It prints the
share of questions whose first quote holds a gold answer string, whose answer holds one anywhere, how many answers
quote more than one sentence, and the share of those further sentences that hold a gold answer (the rest pad: a
SQuAD question has one answer, so this share is a floor for how many further sentences answer).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from citeqa.eval.beir import load_beir
from citeqa.eval.runner import cached_engine, default_cache_dir
from citeqa.settings import Settings


def holds(text: str, answers: list[str]) -> bool:
    lowered = text.lower()
    return any(answer.lower() in lowered for answer in answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--max-queries", type=int, default=1000)
    args = parser.parse_args()
    dataset = load_beir(args.dataset)
    engine = cached_engine(dataset.name, dataset.documents(), Settings().engine_settings(), default_cache_dir())
    asked = first = anywhere = longer = further = further_holding = 0
    for query_id, question in list(dataset.queries.items())[: args.max_queries]:
        answers = dataset.answers.get(query_id, [])
        if not answers:
            continue
        quotes = [passage.quote.text for passage in engine.ask(question).cited]
        asked += 1
        first += bool(quotes) and holds(quotes[0], answers)
        anywhere += any(holds(quote, answers) for quote in quotes)
        longer += len(quotes) > 1
        further += max(0, len(quotes) - 1)
        further_holding += sum(holds(quote, answers) for quote in quotes[1:])
    print(f"{dataset.name}: {asked} questions with answer strings")
    print(f"  first quote holds an answer: {first / asked:.3f}")
    print(f"  the answer holds one anywhere: {anywhere / asked:.3f}")
    print(f"  answers quoting more than one sentence: {longer / asked:.3f} ({further} further sentences)")
    print(f"  further sentences holding an answer: {further_holding / max(further, 1):.3f}")


if __name__ == "__main__":
    main()
