"""Reading a BEIR-format dataset: corpus.jsonl, queries.jsonl, qrels/test.tsv."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from citeqa.index.text.documents import Document, make_document


@dataclass
class BeirDataset:
    name: str
    corpus: dict[str, tuple[str, str]]  # doc id -> (title, text)
    queries: dict[str, str]  # query id -> text, only queries with judgements
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: relevance grade}
    answers: dict[str, list[str]] = field(default_factory=dict)  # query id -> gold answer strings (SQuAD)

    def documents(self) -> list[Document]:
        """Each corpus entry as one document whose text is title, blank line, text."""
        documents = []
        for doc_id, (title, text) in self.corpus.items():
            body = f"{title}\n\n{text}" if title else text
            if body.strip():
                documents.append(make_document(doc_id, body, source=f"{self.name}:{doc_id}"))
        return documents


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def load_beir(folder: Path, split: str = "test") -> BeirDataset:
    folder = Path(folder)
    for required in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (folder / required).is_file():
            raise FileNotFoundError(f"{folder} is not a BEIR dataset: {required} is missing")
    corpus = {str(row["_id"]): (row.get("title") or "", row.get("text") or "") for row in _jsonl(folder / "corpus.jsonl")}
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / f"{split}.tsv").open(encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for row in reader:
            if len(row) < 3 or not row[2].strip().lstrip("-").isdigit():
                continue  # the header line
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries: dict[str, str] = {}
    answers: dict[str, list[str]] = {}
    for record in _jsonl(folder / "queries.jsonl"):
        qid = str(record["_id"])
        if qid in qrels:
            queries[qid] = record["text"]
            if record.get("answers"):
                answers[qid] = list(record["answers"])
    return BeirDataset(folder.name, corpus, queries, {q: qrels[q] for q in queries}, answers)
