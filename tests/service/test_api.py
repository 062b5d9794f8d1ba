"""The HTTP API over the seed index, through FastAPI's TestClient (real app, real engine)."""

import pytest
from fastapi.testclient import TestClient

from citeqa.index.engine import Engine
from citeqa.index.text.chunking import ChunkerSettings, split_document
from citeqa.service.schemas.checks import MAX_QUERY_CHARS
from tests.conftest import SEED_ID


def document_text(client: TestClient, doc_id: str) -> str:
    response = client.get(f"/v1/documents/{doc_id}")
    assert response.status_code == 200
    return response.json()["text"]


def test_search_returns_shoygus_allegation_first_with_a_verifiable_citation(client: TestClient) -> None:
    response = client.post("/v1/search", json={"query": "what did Shoygu allege?"})
    assert response.status_code == 200
    body = response.json()
    assert body["query"] == "what did Shoygu allege?"
    assert len(body["results"]) == 5  # the default top_k (the seed index has more chunks than that)
    first = body["results"][0]
    citation = first["citation"]
    assert first["rank"] == 1
    assert citation["quote"].startswith("In a statement at the end of April, Shoygu alleged that the West")
    text = document_text(client, citation["doc_id"])
    assert text[citation["quote_start"] : citation["quote_end"]] == citation["quote"]
    assert text[citation["start"] : citation["end"]] == first["text"]
    assert set(first["scores"]) == {"dense", "lexical"}
    assert body["took_ms"] >= 0


def test_top_k_and_mode_are_honoured(client: TestClient) -> None:
    body = client.post("/v1/search", json={"query": "Keir Starmer", "top_k": 2, "mode": "lexical"}).json()
    assert [r["rank"] for r in body["results"]] == [1, 2]
    assert "Starmer" in body["results"][0]["text"]


def test_every_citation_for_many_questions_points_at_exact_text(client: TestClient, seed_engine: Engine) -> None:
    questions = [
        "what did Shoygu allege?",
        "What did the SVR claim?",
        "Who is Britain's prime minister?",
        "Why did Starmer's plan fail?",
        "what did Peskov tell ABC News?",
        "peacekeepers",
    ]
    text = document_text(client, SEED_ID)
    for question in questions:
        for result in client.post("/v1/search", json={"query": question, "top_k": 10}).json()["results"]:
            c = result["citation"]
            assert text[c["start"] : c["end"]] == result["text"]
            assert text[c["quote_start"] : c["quote_end"]] == c["quote"]
            assert c["start"] <= c["quote_start"] < c["quote_end"] <= c["end"]
    recorded = seed_engine.collection.manifest.config.chunker
    settings = ChunkerSettings(**{k: v for k, v in recorded.items() if k != "title_in_passages"})
    for chunk in split_document(seed_engine.document(SEED_ID), settings):
        assert text[chunk.start : chunk.end] == chunk.text


def test_ask_returns_a_cited_extractive_answer(client: TestClient) -> None:
    body = client.post("/v1/ask", json={"question": "what did Shoygu allege?"}).json()
    assert body["found"] is True
    assert "[1]" in body["answer"]
    first = body["citations"][0]
    assert first["marker"] == 1
    assert first["quote"] in body["answer"]
    assert body["passages"][0]["citation"]["quote"] == first["quote"]
    # Both of Shoygu's allegations and the accusation that follows, each cited once at its exact offsets.
    text = document_text(client, SEED_ID)
    quotes = [c["quote"] for c in body["citations"]]
    assert [c["marker"] for c in body["citations"]] == [1, 2, 3] and len(set(quotes)) == 3
    assert any("unmistakable hallmark of a planned occupation" in q for q in quotes)
    assert all(text[c["quote_start"] : c["quote_end"]] == c["quote"] for c in body["citations"])
    assert all(f"{c['quote']} [{c['marker']}]" in body["answer"] for c in body["citations"])
    assert [claim["citations"] for claim in body["claims"]] == [[1], [2], [3]]


def test_ask_says_not_found_when_nothing_is_relevant(client: TestClient) -> None:
    body = client.post("/v1/ask", json={"question": "What is the recipe for banana bread?"}).json()
    assert body["found"] is False
    assert body["answer"] == "Not found in the documents."
    assert body["citations"] == []


def test_documents_are_listed_and_readable(client: TestClient) -> None:
    [summary] = client.get("/v1/documents").json()["documents"]
    assert summary["id"] == SEED_ID and summary["chunks"] > 1 and len(summary["sha256"]) == 64
    detail = client.get(f"/v1/documents/{SEED_ID}").json()
    assert detail["text"].startswith("Russia Rejects") and detail["characters"] == len(detail["text"])


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["documents"] == 1 and ready["chunks"] > 1


def test_openapi_documents_the_endpoints_with_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/v1/search", "/v1/ask", "/v1/documents", "/v1/documents/{doc_id}", "/healthz", "/readyz"):
        assert path in spec["paths"]
    assert spec["components"]["schemas"]["SearchRequest"]["examples"]


@pytest.mark.parametrize(
    ("body", "needle", "param"),
    [
        ({"query": ""}, "at least 1 character", "query"),
        ({"query": "   \n\t"}, "non-whitespace", "query"),
        ({"query": "x" * (MAX_QUERY_CHARS + 1)}, f"at most {MAX_QUERY_CHARS}", "query"),
        ({"query": "x", "top_k": 0}, "greater than or equal to 1", "top_k"),
        ({"query": "x", "top_k": 51}, "less than or equal to 50", "top_k"),
        ({"query": "x", "top_k": "many"}, "valid integer", "top_k"),
        ({"query": 42}, "valid string", "query"),
        ({}, "Field required", "query"),
        ({"query": "x", "mode": "magic"}, "hybrid", "mode"),
        ({"query": "x", "unexpected": 1}, "Extra inputs", "unexpected"),
    ],
)
def test_bad_search_input_is_a_400_naming_the_problem(client: TestClient, body: dict, needle: str, param: str) -> None:
    response = client.post("/v1/search", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert needle in error["message"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("content", "needle"),
    [(b"{not json", "malformed JSON"), (b"", "Field required"), (b"[1, 2]", "valid dictionary")],
)
def test_malformed_bodies_are_400s(client: TestClient, content: bytes, needle: str) -> None:
    response = client.post("/v1/ask", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert needle in response.json()["error"]["message"]


def test_unknown_document_and_wrong_method_are_4xx(client: TestClient) -> None:
    missing = client.get("/v1/documents/no-such-doc.txt")
    assert missing.status_code == 404
    assert "no-such-doc.txt" in missing.json()["error"]["message"]
    assert client.get("/v1/search").status_code == 405
    assert client.get("/v1/nothing-here").status_code == 404
