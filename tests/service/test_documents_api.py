"""Adding, replacing and removing documents over HTTP, on an app with its own index."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from citeqa.index.engine import Engine
from citeqa.index.models.embedding import Embedder
from citeqa.service.app import create_app
from citeqa.service.indexing import build_from_corpus
from citeqa.settings import Settings
from tests.conftest import SEED_ID, SEEDS

NOTE = "# Summit note\n\nThe summit was moved to Geneva because of a strike at the airport in Vienna."


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(corpus_dir=SEEDS, index_dir=tmp_path / "index")


@pytest.fixture
def client(settings: Settings, embedder: Embedder) -> Iterator[TestClient]:
    engine = Engine.create(settings.index_dir, settings.engine_settings(), embedder)
    build_from_corpus(settings, engine=engine)
    with TestClient(create_app(settings, engine)) as test_client:
        yield test_client


def ask(client: TestClient, question: str) -> dict:
    return client.post("/v1/search", json={"query": question, "top_k": 1}).json()["results"][0]


def test_an_added_document_is_searchable_at_once_and_persisted(client: TestClient, settings: Settings) -> None:
    added = client.post("/v1/documents", json={"id": "notes/summit.md", "text": NOTE})
    assert added.status_code == 201
    assert added.json()["status"] == "added" and added.json()["document"]["title"] == "Summit note"
    top = ask(client, "Why was the summit moved to Geneva?")
    assert top["citation"]["doc_id"] == "notes/summit.md"
    assert "strike at the airport" in top["citation"]["quote"]
    text = client.get("/v1/documents/notes/summit.md").json()["text"]
    assert text[top["citation"]["quote_start"] : top["citation"]["quote_end"]] == top["citation"]["quote"]
    reopened = Engine.open(settings.index_dir, settings.engine_settings(), client.app.state.engine.embedder)
    assert {d.id for d in reopened.documents()} == {SEED_ID, "notes/summit.md"}


def test_posting_the_same_id_replaces_and_unchanged_text_is_a_no_op(client: TestClient) -> None:
    client.post("/v1/documents", json={"id": "note.txt", "text": NOTE})
    same = client.post("/v1/documents", json={"id": "note.txt", "text": NOTE})
    assert same.status_code == 200 and same.json()["status"] == "unchanged"
    replaced = client.post("/v1/documents", json={"id": "note.txt", "text": "Penguins live in Antarctica and eat krill."})
    assert replaced.status_code == 200 and replaced.json()["status"] == "updated"
    assert [c.text for c in client.app.state.engine.chunks("note.txt")] == ["Penguins live in Antarctica and eat krill."]


def test_deleting_a_document_removes_all_its_chunks(client: TestClient) -> None:
    client.post("/v1/documents", json={"id": "note.txt", "text": NOTE})
    deleted = client.delete("/v1/documents/note.txt")
    assert deleted.status_code == 200 and deleted.json() == {"status": "deleted", "document": None, "id": "note.txt"}
    assert client.app.state.engine.chunks("note.txt") == []
    top = client.post("/v1/search", json={"query": "Why was the summit moved to Geneva?", "top_k": 10}).json()["results"]
    assert all(r["citation"]["doc_id"] != "note.txt" for r in top)
    assert client.get("/v1/documents/note.txt").status_code == 404
    assert client.delete("/v1/documents/note.txt").status_code == 404


def test_deleting_every_document_leaves_a_working_empty_index(client: TestClient) -> None:
    assert client.delete(f"/v1/documents/{SEED_ID}").status_code == 200
    assert client.post("/v1/search", json={"query": "Shoygu"}).json()["results"] == []
    assert client.post("/v1/ask", json={"question": "Shoygu?"}).json()["found"] is False


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"id": "x.txt", "text": "   "}, "non-whitespace"),
        ({"id": "x.txt", "text": "a\x00b"}, "binary"),
        ({"id": " x.txt", "text": "hello"}, "leading or trailing whitespace"),
        ({"id": "../x.txt", "text": "hello"}, "'..'"),
        # the same id rule as an uploaded file's name: no backslashes, absolute paths or C1 control characters
        ({"id": "notes\\a.txt", "text": "hello"}, "backslash"),
        ({"id": "C:/notes/a.txt", "text": "hello"}, "absolute path"),
        ({"id": "a\u0085b.txt", "text": "hello"}, "control characters"),
        ({"id": "", "text": "hello"}, "at least 1 character"),
        ({"text": "hello"}, "Field required"),
    ],
)
def test_bad_documents_are_400s_and_change_nothing(client: TestClient, body: dict, needle: str) -> None:
    before = client.get("/v1/documents").json()
    response = client.post("/v1/documents", json=body)
    assert response.status_code == 400
    assert needle in response.json()["error"]["message"]
    assert client.get("/v1/documents").json() == before
