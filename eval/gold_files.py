"""The file gold set: questions over a PDF and a Word document whose texts citeqa writes itself
(gold_documents.json), each with the exact words that answer it and where they are in the original: the page of
the PDF, or the heading path of the Word document.

It checks what the seed gold set cannot: that a citation from a real file points at the right page or section.
The files themselves are rendered by the tests (tests/files.py: reportlab, python-docx), so no binary file is kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
GOLD_FILES_PATH = HERE / "gold_files.jsonl"
GOLD_DOCUMENTS_PATH = HERE / "gold_documents.json"
BASELINE_FILES_PATH = HERE / "baseline_files.json"


@dataclass(frozen=True)
class FileQuestion:
    id: str
    question: str
    doc_id: str
    quote: str
    page: int | None = None  # PDF: 1-based page of the quote
    section: str | None = None  # Word: heading path over the quote


def load_file_questions(path: Path = GOLD_FILES_PATH) -> list[FileQuestion]:
    questions = []
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            try:
                questions.append(
                    FileQuestion(row["id"], row["question"], row["doc_id"], row["quote"], row.get("page"), row.get("section"))
                )
            except KeyError as exc:
                raise ValueError(f"{path}:{number}: missing field {exc}") from exc
    return questions


def load_gold_documents(path: Path = GOLD_DOCUMENTS_PATH) -> dict[str, Any]:
    """{"pdf": {filename, title, pages: [text]}, "docx": {filename, title, sections: [{heading, level, paragraphs}]}}"""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def squeeze(text: str) -> str:
    """Whitespace-insensitive form: a quote is found in a citation whatever line breaks the file put inside it."""
    return " ".join(text.split())
