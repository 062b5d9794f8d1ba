"""The gold question set: questions about a corpus, each with the exact words that answer it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from citeqa.index.text.documents import Document

GOLD_PATH = Path(__file__).resolve().parent / "gold.jsonl"
UNANSWERABLE_PATH = Path(__file__).resolve().parent / "unanswerable.jsonl"


@dataclass(frozen=True)
class GoldQuestion:
    id: str
    question: str
    kind: str  # direct, paraphrase, name, number, date, who-said-what, unanswerable
    doc_id: str | None = None
    quote: str | None = None  # exact words of the document that answer; None when unanswerable
    # Exact words of the other parts of a complete answer, in other sentences ("What did Shoygu allege?" has two
    # allegations): a complete answer quotes `quote` and each of these.
    also: tuple[str, ...] = ()

    @property
    def answerable(self) -> bool:
        return self.quote is not None

    def gold_spans(self, document: Document, words: str | None = None) -> list[tuple[int, int]]:
        """Every occurrence of the gold quote (or of `words`) in the document (a repeated sentence counts wherever
        it is)."""
        words = self.quote if words is None else words
        spans, start = [], document.text.find(words or "\x00")
        while start >= 0 and words:
            spans.append((start, start + len(words)))
            start = document.text.find(words, start + 1)
        return spans


def load_gold(path: Path = GOLD_PATH) -> list[GoldQuestion]:
    questions = []
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            try:
                questions.append(
                    GoldQuestion(
                        row["id"], row["question"], row["kind"], row.get("doc_id"), row.get("quote"), tuple(row.get("also", ()))
                    )
                )
            except KeyError as exc:
                raise ValueError(f"{path}:{number}: missing field {exc}") from exc
    return questions


def check_gold(questions: list[GoldQuestion], documents: dict[str, Document]) -> list[str]:
    """Problems with a gold set against its corpus (an empty list means every quote is found verbatim)."""
    problems, seen = [], set()
    for q in questions:
        if q.id in seen:
            problems.append(f"{q.id}: duplicate id")
        seen.add(q.id)
        if not q.answerable:
            continue
        if q.doc_id not in documents:
            problems.append(f"{q.id}: unknown document {q.doc_id}")
        else:
            for words in (q.quote, *q.also):
                if not q.gold_spans(documents[q.doc_id], words):
                    problems.append(f"{q.id}: {words!r} not found verbatim in {q.doc_id}")
    return problems


def load_unanswerable(corpus: str, path: Path = UNANSWERABLE_PATH) -> list[str]:
    """The questions of eval/unanswerable.jsonl written for `corpus` ("seed", or a dataset's folder name): close to
    its topics, answered nowhere in it. They measure abstention beside the gold set's own unanswerable ones."""
    with Path(path).open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return [row["question"] for row in rows if row["corpus"] == corpus]
