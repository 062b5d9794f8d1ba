"""The CI gate for citations into real files: the file gold set (eval/gold_files.jsonl) over a PDF and a Word
document rendered from citeqa's own texts (eval/gold_documents.json) and uploaded over HTTP. The first citation of
each question must quote the gold words at the gold page (PDF) or under the gold heading (Word), at least as often
as eval/baseline_files.json says."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from citeqa.eval.gold_files import BASELINE_FILES_PATH, FileQuestion, load_file_questions, load_gold_documents, squeeze
from citeqa.index.models.embedding import Embedder
from citeqa.index.parsing.locate import locate
from tests import files
from tests.upload_helpers import files_form, upload_app


@pytest.fixture(scope="module")
def rendered() -> dict[str, bytes]:
    gold = load_gold_documents()
    pdf, docx = gold["pdf"], gold["docx"]
    return {
        pdf["filename"]: files.paged_pdf(pdf["title"], pdf["pages"]),
        docx["filename"]: files.sectioned_docx(docx["title"], docx["sections"]),
    }


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, rendered: dict[str, bytes]) -> Iterator[TestClient]:
    with upload_app(tmp_path_factory.mktemp("gold-files") / "index", embedder) as test_client:
        reply = test_client.post("/v1/documents", files=files_form(rendered))
        assert reply.status_code == 201 and reply.json()["added"] == 2, reply.text
        yield test_client


def where(question: FileQuestion, citation: dict) -> bool:
    """The citation is in the gold place: same document, and the gold page (PDF) or heading path (Word)."""
    if citation["doc_id"] != question.doc_id:
        return False
    if question.page is not None:
        return citation["page_start"] == question.page
    return citation["section"] == question.section


def test_the_file_gold_set_is_well_formed(client: TestClient) -> None:
    questions = load_file_questions()
    assert len(questions) >= 10 and len({q.id for q in questions}) == len(questions)
    assert {q.doc_id for q in questions} == set(load_gold_documents()[k]["filename"] for k in ("pdf", "docx"))
    for question in questions:
        assert (question.page is None) != (question.section is None), question.id
        document = client.get(f"/v1/documents/{question.doc_id}").json()
        text = squeeze(document["text"])
        assert squeeze(question.quote) in text, f"{question.id}: quote not in {question.doc_id}"
    # The gold places themselves come from the parsed files: every quote lies where its line says.
    engine = client.app.state.engine
    for question in questions:
        document = engine.document(question.doc_id)
        start = _find(document.text, question.quote)
        place = locate(document.meta, start, start + 1)
        assert (place.page_start if question.page is not None else place.section) == (question.page or question.section)


def _find(text: str, quote: str) -> int:
    """Offset of `quote` in `text`, whatever whitespace the file put between its words."""
    match = re.search(r"\s+".join(re.escape(word) for word in quote.split()), text)
    assert match is not None, quote
    return match.start()


def test_citations_into_files_name_the_right_page_or_section(client: TestClient) -> None:
    questions = load_file_questions()
    placed = quoted = 0
    misses = []
    for question in questions:
        reply = client.post("/v1/ask", json={"question": question.question}).json()
        assert reply["found"], question.id
        first = reply["citations"][0]
        text = client.get(f"/v1/documents/{first['doc_id']}").json()["text"]
        assert text[first["quote_start"] : first["quote_end"]] == first["quote"]  # exact, always
        in_place = where(question, first)
        has_quote = in_place and squeeze(question.quote) in squeeze(first["quote"])
        placed += in_place
        quoted += has_quote
        if not has_quote:
            misses.append(f"{question.id}: {first['doc_id']} p.{first['page_start']} §{first['section']}: {first['quote']!r}")
    figures = {"location_accuracy": placed / len(questions), "quote_accuracy": quoted / len(questions)}
    floors = json.loads(BASELINE_FILES_PATH.read_text())["floors"]
    failures = [f"{name} {figures[name]:.3f} < {floor}" for name, floor in floors.items() if figures[name] < floor]
    assert not failures, "citations into files regressed: " + "; ".join(failures) + "\n" + "\n".join(misses)
