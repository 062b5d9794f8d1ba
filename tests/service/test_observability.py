"""Metrics, request ids, the request log line, the last-resort 500, and /docs without a network."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from citeqa.index.engine import Engine
from citeqa.service.app import create_app
from citeqa.settings import Settings
from tests.conftest import SEED_ID
from tests.helpers import metric_samples as samples
from tests.helpers import metric_value as value
from tests.helpers import running_server


@pytest.fixture
def fresh_client(seed_settings: Settings, seed_engine: Engine) -> Iterator[TestClient]:
    """An app of its own, so its request counters start at zero."""
    with TestClient(create_app(seed_settings, seed_engine), raise_server_exceptions=False) as client:
        yield client


def test_requests_are_counted_by_route_template_and_status(fresh_client: TestClient) -> None:
    fresh_client.get(f"/v1/documents/{SEED_ID}")
    fresh_client.get("/v1/documents/no-such.txt")
    fresh_client.get("/v1/documents/another/missing.md")
    fresh_client.post("/v1/search", json={"query": ""})
    fresh_client.get("/nowhere/at/all")
    found = samples(fresh_client)
    route = "/v1/documents/{doc_id}"
    assert value(found, "citeqa_http_requests_total", method="GET", route=route, status="200") == 1
    assert value(found, "citeqa_http_requests_total", method="GET", route=route, status="404") == 2
    assert value(found, "citeqa_http_requests_total", method="POST", route="/v1/search", status="400") == 1
    assert value(found, "citeqa_http_requests_total", method="GET", route="(unrouted)", status="404") == 1
    assert value(found, "citeqa_http_request_duration_seconds_count", method="GET", route=route, status="404") == 2
    assert not any(SEED_ID in str(labels) for _, labels in found)  # never a concrete path


def test_index_size_is_reported_per_collection(fresh_client: TestClient, seed_engine: Engine) -> None:
    stats = seed_engine.stats()
    found = samples(fresh_client)
    assert value(found, "citeqa_index_documents", collection="default") == stats.documents == 1
    assert value(found, "citeqa_index_chunks", collection="default") == stats.chunks > 1


def test_encoder_time_is_a_histogram_that_grows_with_queries(fresh_client: TestClient) -> None:
    before = value(samples(fresh_client), "citeqa_encoder_duration_seconds_count")
    texts_before = value(samples(fresh_client), "citeqa_encoder_texts_total")
    # A question never asked before in this process: a repeated one may be answered from a cache.
    query = f"what did Shoygu allege about {uuid.uuid4().hex}?"
    assert fresh_client.post("/v1/search", json={"query": query}).status_code == 200
    found = samples(fresh_client)
    assert value(found, "citeqa_encoder_duration_seconds_count") == before + 1
    assert value(found, "citeqa_encoder_texts_total") == texts_before + 1
    assert value(found, "citeqa_encoder_duration_seconds_sum") > 0
    assert value(found, "citeqa_encoder_duration_seconds_bucket", le="+Inf") == before + 1


def test_a_request_id_is_made_or_taken_and_echoed(client: TestClient) -> None:
    made = client.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert client.get("/healthz").headers["x-request-id"] != made
    assert client.get("/healthz", headers={"X-Request-ID": "trace-42.a:b_c"}).headers["x-request-id"] == "trace-42.a:b_c"
    for insane in ("has space", "x" * 200, "-leading-dash", "new\\nline", "<script>"):
        echoed = client.get("/healthz", headers={"X-Request-ID": insane}).headers["x-request-id"]
        assert echoed != insane and re.fullmatch(r"[0-9a-f]{32}", echoed)


def test_one_json_log_line_per_request_without_bodies_or_keys(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="citeqa.access"):
        response = client.post(
            "/v1/search?secret=1",
            json={"query": "what did Shoygu allege?"},
            headers={"X-Request-ID": "log-test-1", "Authorization": "Bearer hidden-key-0123456789"},
        )
    assert response.status_code == 200
    [record] = [r for r in caplog.records if r.name == "citeqa.access"]
    line = json.loads(record.getMessage())
    assert set(line) == {"request_id", "method", "route", "status", "ms", "worker"}
    assert line["request_id"] == "log-test-1" and line["method"] == "POST" and line["route"] == "/v1/search"
    assert line["status"] == 200 and line["ms"] >= 0
    assert "Shoygu" not in record.getMessage() and "hidden-key" not in record.getMessage() and "secret" not in record.getMessage()


def test_an_unhandled_error_is_a_generic_500_with_the_request_id(
    fresh_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    def explode() -> None:
        raise RuntimeError("disk full at /var/lib/citeqa/secret.db")

    fresh_client.app.add_api_route("/v1/explode", explode, methods=["GET"])  # type: ignore[attr-defined]
    with caplog.at_level(logging.ERROR, logger="citeqa"):
        response = fresh_client.get("/v1/explode", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "boom-1" and response.headers["x-frame-options"] == "DENY"
    error = response.json()["error"]
    assert error == {
        "message": "internal error (request id boom-1); the server log has the details",
        "type": "api_error",
        "param": None,
        "code": "internal_error",
    }
    assert "disk full" not in response.text and "Traceback" not in response.text and "/var/" not in response.text
    assert any("boom-1" in r.getMessage() and r.exc_info for r in caplog.records)  # the details are in the log


@pytest.mark.slow
def test_a_real_server_logs_one_json_line_per_request(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    with running_server(index_dir) as base:
        port = base.rsplit(":", 1)[1]
        httpx.get(f"{base}/v1/documents/{SEED_ID}", headers={"X-Request-ID": "real-1"})
        httpx.post(f"{base}/v1/search", json={"query": "what did Shoygu allege?"}, headers={"X-Request-ID": "real-2"})
    log = (tmp_path / f"serve-{port}.log").read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    by_id = {line["request_id"]: line for line in lines}
    assert by_id["real-1"]["route"] == "/v1/documents/{doc_id}" and by_id["real-1"]["status"] == 200
    assert by_id["real-2"]["route"] == "/v1/search" and by_id["real-2"]["method"] == "POST"
    assert "Shoygu" not in log and f"GET /v1/documents/{SEED_ID}" not in log  # uvicorn's access log is off


def test_docs_are_served_from_local_files(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert "http://" not in page.text and "https://" not in page.text and "<script>" not in page.text
    assets = re.findall(r'(?:src|href)="(/[^"]+)"', page.text)
    assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css", "/static/docs.js"} <= set(assets)
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200 and len(response.content) > 100, asset
    assert client.get("/redoc").status_code == 404  # it would load from a CDN
