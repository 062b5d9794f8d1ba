"""Limits decided before the work is done, strict types, and the error contract the OpenAPI schema states."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from citeqa.index.engine import Engine
from citeqa.service.app import create_app
from citeqa.settings import Settings
from tests.helpers import running_server

SHOYGU = {"role": "user", "content": "what did Shoygu allege?"}


def chat(client: TestClient, messages: list[dict], **extra: object) -> httpx.Response:
    # json.dumps escapes a lone surrogate as \\udc00, as a JSON client would; httpx's own encoder cannot send one.
    body = json.dumps({"model": "citeqa", "messages": messages, **extra})
    return client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})


@pytest.fixture(scope="module")
def tight_client(seed_settings: Settings, seed_engine: Engine) -> Iterator[TestClient]:
    """The seed index behind a server with small limits, so each limit is reached cheaply."""
    limits = {"max_question_chars": 100, "max_top_k": 10, "max_chat_messages": 6, "max_chat_chars": 1000}
    with TestClient(create_app(seed_settings.model_copy(update=limits), seed_engine)) as client:
        yield client


@pytest.fixture(scope="module")
def small_body_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("limits-index"), CITEQA_MAX_REQUEST_BYTES="100000") as base:
        yield base


# -- request body size, over real sockets ----------------------------------------------------------


def _complete(reply: bytes) -> bool:
    head, separator, body = reply.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def raw_request(base: str, head: str, chunks: Iterator[bytes] | None = None, seconds: float = 20) -> tuple[bytes, int]:
    """Sends `head`, then body chunks for as long as the server keeps taking them and has not answered;
    returns (the reply, how many body bytes were sent)."""
    host, port = base.removeprefix("http://").split(":")
    pending, sent, reply = b"", 0, b""
    sending = chunks is not None
    deadline = time.monotonic() + seconds
    with socket.create_connection((host, int(port)), timeout=seconds) as sock:
        sock.sendall(head.encode())
        sock.setblocking(False)
        while time.monotonic() < deadline and not _complete(reply):
            if sending and not pending:
                pending = next(chunks, b"")  # type: ignore[arg-type]
                sending = bool(pending)
            readable, writable, _ = select.select([sock], [sock] if sending and not reply else [], [], 0.5)
            if readable:
                data = sock.recv(65536)
                if not data:
                    break
                reply += data
            elif writable:
                try:
                    count = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    sending = False
                    continue
                pending, sent = pending[count:], sent + count
    return reply, sent


@pytest.mark.slow
def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(small_body_server: str) -> None:
    # 50 MB declared, none of it sent: a server that tried to read the body would wait, not answer.
    head = "POST /v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n"
    reply, _ = raw_request(small_body_server, head, seconds=10)
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert b"CITEQA_MAX_REQUEST_BYTES" in reply and b"50000000 bytes" in reply
    assert b"x-request-id" in reply.lower()


@pytest.mark.slow
def test_a_streamed_body_is_cut_off_at_the_limit_without_being_read_whole(small_body_server: str) -> None:
    head = "POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"%x\r\n%s\r\n" % (10_000, b" " * 10_000)
    reply, sent = raw_request(small_body_server, head, iter([chunk] * 5000))  # 50 MB if it were all sent
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert b"CITEQA_MAX_REQUEST_BYTES" in reply
    assert sent < 5_000_000  # far less than the 50 MB on offer: the server stopped taking it


@pytest.mark.slow
def test_a_body_under_the_limit_is_served(small_body_server: str) -> None:
    response = httpx.post(f"{small_body_server}/v1/search", json={"query": "Shoygu", "top_k": 1})
    assert response.status_code == 200


# -- question length and top_k -----------------------------------------------------------------------


def test_question_length_and_top_k_follow_the_settings(tight_client: TestClient) -> None:
    long = tight_client.post("/v1/search", json={"query": "x" * 101})
    assert long.status_code == 400
    assert "at most 100 characters (CITEQA_MAX_QUESTION_CHARS)" in long.json()["error"]["message"]
    assert long.json()["error"]["param"] == "query"
    assert tight_client.post("/v1/ask", json={"question": "y" * 101}).json()["error"]["param"] == "question"
    assert tight_client.post("/v1/search", json={"query": "x" * 100}).status_code == 200

    many = tight_client.post("/v1/search", json={"query": "Shoygu", "top_k": 11})
    assert many.status_code == 400 and "CITEQA_MAX_TOP_K" in many.json()["error"]["message"]
    assert tight_client.post("/v1/search", json={"query": "Shoygu", "top_k": 10}).status_code == 200


def test_the_schema_states_the_configured_limits(tight_client: TestClient) -> None:
    schemas = tight_client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["SearchRequest"]["properties"]["query"]["maxLength"] == 100
    assert schemas["SearchRequest"]["properties"]["top_k"]["maximum"] == 10
    assert schemas["AskRequest"]["properties"]["question"]["maxLength"] == 100
    assert schemas["ChatCompletionRequest"]["properties"]["messages"]["maxItems"] == 6


# -- chat ---------------------------------------------------------------------------------------------


def test_too_many_chat_messages_is_a_413_naming_the_limit(tight_client: TestClient) -> None:
    response = chat(tight_client, [SHOYGU] * 7)
    assert response.status_code == 413
    error = response.json()["error"]
    assert "7 messages" in error["message"] and "CITEQA_MAX_CHAT_MESSAGES" in error["message"]
    assert error["param"] == "messages" and error["code"] == "limit_exceeded"
    assert chat(tight_client, [SHOYGU] * 6).status_code == 200


def test_too_many_characters_across_messages_is_a_413(tight_client: TestClient) -> None:
    earlier = [{"role": "assistant", "content": "a" * 400}, {"role": "system", "content": "s" * 400}]
    response = chat(tight_client, [*earlier, {"role": "assistant", "content": "b" * 200}, SHOYGU])
    assert response.status_code == 413
    assert "CITEQA_MAX_CHAT_CHARS" in response.json()["error"]["message"]


def test_an_earlier_question_over_the_limit_is_refused_too(tight_client: TestClient) -> None:
    # The follow-up is short, but it would be searched together with the long question before it.
    long = {"role": "user", "content": "Shoygu " * 20}
    response = chat(tight_client, [long, {"role": "assistant", "content": "…"}, {"role": "user", "content": "why?"}])
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "message 0" in message and "CITEQA_MAX_QUESTION_CHARS" in message


def test_a_follow_up_searched_with_an_earlier_question_stays_within_the_limit(tight_client: TestClient) -> None:
    # A bare "why so?" is searched after the previous question: 96 + 1 + 7 characters, over the limit of 100.
    first = "What did the Russian Security Council's Secretary Sergei Shoygu allege about the West's true aim?"
    assert len(first) <= 100 < len(first) + len(" why so?")
    turns = [{"role": "user", "content": first}, {"role": "assistant", "content": "…"}, {"role": "user", "content": "why so?"}]
    response = chat(tight_client, turns)
    assert response.status_code == 200
    query = response.json()["citeqa"]["query"]
    assert len(query) <= 100 and query.endswith("about the West's true aim? why so?")


@pytest.mark.parametrize(
    "content",
    ["Shoygu \udc00", [{"type": "text", "text": "Shoygu \ud800"}]],
)
def test_a_lone_surrogate_in_chat_is_a_400(client: TestClient, content: object) -> None:
    response = chat(client, [{"role": "user", "content": content}])
    assert response.status_code == 400
    error = response.json()["error"]
    assert "lone surrogate" in error["message"] and error["param"].startswith("messages.0.content")


def test_a_lone_surrogate_in_search_is_a_400(client: TestClient) -> None:
    response = client.post("/v1/search", content=b'{"query": "Shoygu \\udc00"}', headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "query"


# -- strict types -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/search", {"query": "Shoygu", "top_k": True}, "top_k"),
        ("/v1/search", {"query": "Shoygu", "top_k": "3"}, "top_k"),
        ("/v1/search", {"query": "Shoygu", "top_k": 2.5}, "top_k"),
        ("/v1/ask", {"question": "Shoygu", "top_k": False}, "top_k"),
        ("/v1/chat/completions", {"messages": [SHOYGU], "stream": 0}, "stream"),
        ("/v1/chat/completions", {"messages": [SHOYGU], "stream": "true"}, "stream"),
    ],
)
def test_loose_types_that_hide_a_mistake_are_refused(client: TestClient, path: str, body: dict, param: str) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_an_integral_number_is_an_integer(client: TestClient) -> None:
    # JSON Schema (and so the OpenAPI schema) calls 2.0 an integer; so does the server.
    response = client.post("/v1/search", json={"query": "Shoygu", "top_k": 2.0})
    assert response.status_code == 200 and len(response.json()["results"]) == 2


# -- the error contract in the schema -------------------------------------------------------------------


def test_the_schema_documents_400_and_never_422(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert "ValidationError" not in spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            assert responses["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
            assert ("413" in responses) == ("requestBody" in operation), (method, path)


def test_validation_errors_are_400_as_documented(client: TestClient) -> None:
    assert client.post("/v1/search", json={"query": ""}).status_code == 400
    assert client.post("/v1/ask", content=b"{not json", headers={"content-type": "application/json"}).status_code == 400


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v1/search", "POST"),
        ("PUT", "/v1/documents", "GET, POST"),
        ("POST", "/v1/models", "GET"),
        ("PATCH", "/v1/documents/a.md", "DELETE, GET"),
    ],
)
def test_a_405_lists_the_allowed_methods(client: TestClient, method: str, path: str, allow: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_no_error_body_carries_a_traceback_or_a_path(client: TestClient, tmp_path: Path) -> None:
    for response in (
        client.post("/v1/search", content=b"\xff\xfe", headers={"content-type": "application/json"}),
        client.post("/v1/search", json={"query": "x", "top_k": 10**30}),
        client.get("/v1/documents/" + "%2e%2e/" * 5 + "etc/passwd"),
        client.post("/v1/chat/completions", json={"messages": "not a list"}),
    ):
        assert 400 <= response.status_code < 500
        assert "Traceback" not in response.text and "/work/" not in response.text and ".py" not in response.text
