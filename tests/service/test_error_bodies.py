"""Every error the service sends has one shape, {"error": {message, type, param, code}}, whoever sends it: a route,
an exception handler, a middleware that answers before any route (hosts, keys, body limit), the MCP endpoint, or
the last-resort 500. The app here is not started (no index, no model), which is itself a state that must answer
in that shape.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from citeqa.index.storage.write_lock import WriterBusyError
from citeqa.service.app import create_app
from citeqa.settings import Settings

READ_KEY, WRITE_KEY = "read-key-0123456789abcdef", "write-key-0123456789abcdef"


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"] and body["error"]["type"]
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


def _app(tmp_path: Path, **settings: object) -> FastAPI:
    app = create_app(Settings(home=tmp_path / "home", corpus_dir=tmp_path, max_request_bytes=1024, **settings))

    def fails() -> None:
        raise RuntimeError("a bug")

    def busy() -> None:
        raise WriterBusyError("another writer holds the collection's write lock")

    app.add_api_route("/test/fails", fails)
    app.add_api_route("/test/busy", busy)
    return app


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    return TestClient(_app(tmp_path))


def test_routing_errors_are_in_the_one_shape(client: TestClient) -> None:
    assert_error(client.get("/no/such/path"), 404)
    error = assert_error(client.put("/v1/search", json={}), 405)
    assert error["type"] == "invalid_request_error"


def test_a_server_still_loading_its_index_answers_503_in_the_one_shape(client: TestClient) -> None:
    assert_error(client.post("/v1/search", json={"query": "summit"}), 503)
    assert_error(client.get("/readyz"), 503)
    assert_error(client.post("/mcp", json={}), 503)  # the MCP endpoint runs only inside the app's lifespan


def test_middleware_refusals_are_in_the_one_shape(tmp_path: Path) -> None:
    client = TestClient(_app(tmp_path, api_keys=f"read:{READ_KEY},write:{WRITE_KEY}"))
    assert_error(client.get("/v1/documents"), 401, "missing_api_key")
    assert_error(client.get("/v1/documents", headers={"Authorization": "Bearer wrong"}), 401, "invalid_api_key")
    read = {"Authorization": f"Bearer {READ_KEY}"}
    assert_error(client.delete("/v1/documents/a.txt", headers=read), 403, "insufficient_role")
    assert_error(client.get("/healthz", headers={"Host": "attacker.example"}), 400, "host_not_allowed")
    assert_error(client.post("/v1/search", headers=read, content=b"x" * 2048), 413, "request_too_large")


def test_a_busy_writer_is_a_503_for_every_route(client: TestClient) -> None:
    error = assert_error(client.get("/test/busy"), 503, "writer_busy")
    assert "write lock" in error["message"]


def test_an_unexpected_error_is_the_one_500_with_the_request_id(client: TestClient) -> None:
    response = client.get("/test/fails", headers={"X-Request-ID": "req-42"})
    error = assert_error(response, 500, "internal_error")
    assert "req-42" in error["message"] and "a bug" not in error["message"]
    assert response.headers["x-request-id"] == "req-42"


def test_only_the_upload_route_is_exempt_from_the_body_limit(client: TestClient) -> None:
    """The exemption is asked of the route table: a multipart body over CITEQA_MAX_REQUEST_BYTES passes the body limit
    on the upload route (to meet the upload limits; here, the index that is not loaded) and nowhere else."""
    boundary = "citeqa-test-boundary"
    multipart = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.txt\"\r\n\r\n"
            + "x" * 2048 + f"\r\n--{boundary}--\r\n").encode()  # fmt: skip
    for path in ("/v1/documents", "/v1/collections/handbook/documents"):
        assert_error(client.post(path, headers=multipart, content=body), 503)
    for path in ("/v1/search", "/v1/documents/a.txt", "/v1/collections"):
        assert_error(client.post(path, headers=multipart, content=body), 413, "request_too_large")
    assert_error(client.post("/v1/documents", headers={"Content-Type": "application/json"}, content=body), 413)
