"""GET /v1/documents a page at a time: keyset paging on the id, stable while documents come and go."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from citeqa.index.engine import Engine
from citeqa.index.models.embedding import Embedder
from citeqa.index.text.documents import MAX_ID_CHARS, document_from_text
from citeqa.service.app import create_app
from citeqa.service.paging import CursorError, decode_cursor, encode_cursor
from citeqa.settings import Settings

# Ids with characters a query string would mangle if the cursor carried them raw, and some that sort past ASCII.
IDS = [
    "a.txt",
    "a b.txt",
    "a+b&c=d?e#f%20.md",
    "notes/2024/plan.md",
    "notes/2024/plan.md.bak",
    "Zebra.txt",
    "café.md",
    "日本/報告.txt",
    "z/y/x.txt",
    "~tilde.txt",
    "emoji-\U0001f600.txt",
]


def note(doc_id: str) -> str:
    return f"Note {doc_id}\n\nThe note filed as {doc_id} says the meeting moved to room {len(doc_id)}."


@pytest.fixture
def engine(tmp_path: Path, embedder: Embedder) -> Iterator[Engine]:
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    engine = Engine.create(settings.index_dir, settings.engine_settings(), embedder)
    engine.upsert([document_from_text(doc_id, note(doc_id), source=f"api/{doc_id}") for doc_id in IDS])
    yield engine


@pytest.fixture
def client(tmp_path: Path, engine: Engine) -> Iterator[TestClient]:
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    with TestClient(create_app(settings, engine)) as test_client:
        yield test_client


def pages(client: TestClient, path: str, limit: int) -> list[dict[str, Any]]:
    """Every page of a listing, following next_cursor until it is null."""
    replies, cursor = [], None
    while True:
        params: dict[str, str | int] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        response = client.get(path, params=params)
        assert response.status_code == 200, response.text
        replies.append(response.json())
        cursor = replies[-1]["next_cursor"]
        if cursor is None:
            return replies
        assert len(replies) <= len(IDS) + 5, "the pages never end"


@pytest.mark.parametrize("limit", [1, 3, 4, len(IDS), len(IDS) + 1])
def test_pages_concatenate_to_the_whole_sorted_listing(client: TestClient, engine: Engine, limit: int) -> None:
    replies = pages(client, "/v1/documents", limit)
    ids = [d["id"] for reply in replies for d in reply["documents"]]
    assert ids == sorted(IDS) == [info.id for info in engine.documents()]
    assert [len(r["documents"]) for r in replies[:-1]] == [limit] * (len(replies) - 1)
    assert 1 <= len(replies[-1]["documents"]) <= limit  # no empty page at the end when the count divides evenly
    assert len(replies) == -(-len(IDS) // limit)
    assert {r["total"] for r in replies} == {len(IDS)}
    summary = replies[0]["documents"][0]
    assert summary["title"] == f"Note {summary['id']}" and summary["characters"] == len(note(summary["id"]))


def test_the_default_page_is_100_and_an_empty_collection_is_one_empty_page(client: TestClient, engine: Engine) -> None:
    first = client.get("/v1/documents").json()
    assert [d["id"] for d in first["documents"]] == sorted(IDS) and first["next_cursor"] is None
    engine.delete(IDS)
    assert client.get("/v1/documents").json() == {"documents": [], "next_cursor": None, "total": 0}


def test_a_collections_listing_pages_too(client: TestClient) -> None:
    assert client.post("/v1/collections", json={"name": "handbook"}).status_code == 201
    for doc_id in ("leave.md", "expenses.md", "travel/rail.md"):
        added = client.post("/v1/collections/handbook/documents", json={"id": doc_id, "text": note(doc_id)})
        assert added.status_code == 201, added.text
    replies = pages(client, "/v1/collections/handbook/documents", 2)
    assert [[d["id"] for d in r["documents"]] for r in replies] == [["expenses.md", "leave.md"], ["travel/rail.md"]]
    assert client.get("/v1/collections/handbook/documents", params={"limit": 0}).status_code == 400


def test_writes_between_pages_never_repeat_or_skip_a_document_that_stayed(client: TestClient) -> None:
    """Between every two pages documents are added before, at and after the cursor, and removed on either side
    of it (the one the cursor names among them): each document there from start to end is listed exactly once."""
    doomed = {"a b.txt", "notes/2024/plan.md", "z/y/x.txt", "~tilde.txt"}
    survivors = set(IDS) - doomed
    listed: list[str] = []
    cursor = None
    step = cursors_removed = 0
    while True:
        params: dict[str, str | int] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        reply = client.get("/v1/documents", params=params).json()
        page = [d["id"] for d in reply["documents"]]
        listed += page
        cursor = reply["next_cursor"]
        if cursor is None:
            break
        step += 1
        # one before everything, one right after the cursor's id, one at the end
        for doc_id in (f"0-early-{step}.txt", page[-1] + f"-{step}", f"~~late-{step}.txt"):
            assert client.post("/v1/documents", json={"id": doc_id, "text": note(doc_id)}).status_code == 201
        if page[-1] in doomed:  # the document the cursor names is removed: the next page starts after it all the same
            assert client.delete(f"/v1/documents/{page[-1]}").status_code == 200
            cursors_removed += 1
        for doc_id in sorted(doomed - set(listed))[:1] + sorted(doomed & set(listed))[:1]:
            client.delete(f"/v1/documents/{doc_id}")
        assert step < 50
    assert cursors_removed >= 1 and step >= 4
    assert len(listed) == len(set(listed))  # nothing twice
    assert survivors <= set(listed)  # nothing that stayed was skipped
    assert listed == sorted(listed)


def test_a_cursor_from_a_replaced_document_still_pages_on(client: TestClient) -> None:
    first = client.get("/v1/documents", params={"limit": 2}).json()
    last = first["documents"][-1]["id"]
    assert client.post("/v1/documents", json={"id": last, "text": note(last) + " Moved again."}).json()["status"] == "updated"
    second = client.get("/v1/documents", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [d["id"] for d in second["documents"]] == sorted(IDS)[2:4]


def _raw_cursor(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


BAD_QUERIES = [
    ({"limit": 0}, "limit", "greater than or equal to 1"),
    ({"limit": -5}, "limit", "greater than or equal to 1"),
    ({"limit": 1001}, "limit", "less than or equal to 1000"),
    ({"limit": "ten"}, "limit", "valid integer"),
    ({"limit": ""}, "limit", "valid integer"),
    ({"cursor": "not a cursor!"}, "cursor", "malformed cursor"),
    ({"cursor": "a"}, "cursor", "malformed cursor"),  # no base64 is one character longer than a multiple of four
    ({"cursor": "YQ="}, "cursor", "malformed cursor"),  # padding is never sent
    ({"cursor": "YR"}, "cursor", "malformed cursor"),  # decodes to "a" only if the spare bits are ignored
    ({"cursor": _raw_cursor(b"\xff\xfe")}, "cursor", "malformed cursor"),  # not UTF-8
    ({"cursor": _raw_cursor(b"x" * (MAX_ID_CHARS + 1))}, "cursor", "malformed cursor"),  # longer than any id
    ({"cursor": "A" * 4000}, "cursor", "malformed cursor"),  # past the longest id's cursor
    ({"cursor": ""}, "cursor", "malformed cursor"),
]


@pytest.mark.parametrize(("params", "param", "needle"), BAD_QUERIES, ids=[f"{p}-{n}" for _, p, n in BAD_QUERIES])
def test_a_bad_limit_or_cursor_is_a_400_that_says_why(client: TestClient, params: dict, param: str, needle: str) -> None:
    response = client.get("/v1/documents", params=params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert param in error["message"] and needle in error["message"]
    assert error["param"] in (param, f"query.{param}")


def test_the_largest_page_is_allowed(client: TestClient) -> None:
    reply = client.get("/v1/documents", params={"limit": 1000}).json()
    assert len(reply["documents"]) == len(IDS) and reply["next_cursor"] is None


def test_the_schema_states_the_page_limits(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/documents"]["get"]
    limit = {p["name"]: p for p in operation["parameters"]}["limit"]["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 1000, 100)
    assert "400" in operation["responses"] and "422" not in operation["responses"]


@pytest.mark.parametrize("doc_id", [*IDS, "x", "xy", "xyz", "a/" * 99 + "b", "\u00e9" * MAX_ID_CHARS])
def test_a_cursor_names_its_id_in_url_safe_characters(doc_id: str) -> None:
    cursor = encode_cursor(doc_id)
    assert cursor.replace("-", "").replace("_", "").isalnum()
    assert decode_cursor(cursor) == doc_id
    with pytest.raises(CursorError):
        decode_cursor(cursor + "=")
