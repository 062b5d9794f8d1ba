"""Upload jobs: a large PDF moves through its stages in the background while searches keep answering from the last
commit; a stopping server commits nothing of a running job; the board is bounded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from citeqa.index.engine import Engine
from citeqa.index.models.embedding import Embedder
from citeqa.index.storage.originals import INCOMING_DIR, ORIGINALS_DIR
from citeqa.service.jobs import STOPPED
from citeqa.settings import Settings
from tests import files
from tests.helpers import metric_samples, metric_value
from tests.upload_helpers import files_form, upload_app

STAGE_ORDER = ["queued", "parsing", "splitting", "embedding", "committing", "committed"]


@pytest.fixture(scope="module")
def large_pdf() -> bytes:
    """200 pages of the survey's prose, six lines a page: several hundred texts to embed."""
    return files.long_pdf(200, lines_per_page=6)


def poll(client: TestClient, url: str, until: set[str], seconds: float = 300) -> list[dict]:
    """Every state of the job seen until its state is in `until`."""
    seen, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = client.get(url).json()
        seen.append(job)
        if job["state"] in until:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"job still {seen[-1]['state']} after {seconds}s")


@pytest.mark.slow  # about 12 s; the smaller job tests below stay in the quick tier
def test_a_large_pdf_moves_through_its_stages_while_searches_keep_answering(
    tmp_path: Path, embedder: Embedder, large_pdf: bytes
) -> None:
    with upload_app(tmp_path / "index", embedder) as client:
        accepted = client.post("/v1/documents?wait=false", files=files_form({"large.pdf": large_pdf}))
        assert accepted.status_code == 202, accepted.text
        body = accepted.json()
        assert accepted.headers["location"] == body["status_url"] == f"/v1/jobs/{body['job']['id']}"
        assert body["job"]["files"][0]["stage"] in ("queued", "parsing")
        assert body["job"]["counts"]["files"] == 1

        seen, answered_meanwhile, embedding_metrics = [], 0, None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            job = client.get(body["status_url"]).json()
            seen.append(job)
            if job["state"] in ("done", "failed"):
                break
            if embedding_metrics is None and job["files"][0]["stage"] == "embedding":
                embedding_metrics = metric_samples(client)
            # Searches answer meanwhile, from the last commit: the PDF is not searchable until its job commits.
            results = client.post("/v1/search", json={"query": "mountain hares change their coats", "top_k": 3})
            assert results.status_code == 200
            if any(r["citation"]["doc_id"] == "large.pdf" for r in results.json()["results"]):
                # Only once committed, all of it: the job must be done by now.
                assert client.get(body["status_url"]).json()["state"] == "done"
            else:
                answered_meanwhile += 1
        final = seen[-1]
        assert final["state"] == "done", final
        assert final["files"][0] | {"bytes": 0} == {
            "filename": "large.pdf", "id": "large.pdf", "bytes": 0, "stage": "committed", "status": "added", "reason": None,
        }  # fmt: skip
        assert final["progress"] == 1.0 and final["counts"]["committed"] == 1 and final["finished"]
        # /metrics showed the job running with its file in the embedding stage, then ended.
        assert embedding_metrics is not None
        assert metric_value(embedding_metrics, "citeqa_jobs", state="running") == 1
        assert metric_value(embedding_metrics, "citeqa_job_files", stage="embedding") == 1
        assert metric_value(embedding_metrics, "citeqa_jobs_ended_total", state="done") == 0
        ended = metric_samples(client)
        assert metric_value(ended, "citeqa_jobs", state="running") == 0
        assert metric_value(ended, "citeqa_job_files", stage="embedding") == 0
        assert metric_value(ended, "citeqa_jobs", state="done") == 1
        assert metric_value(ended, "citeqa_jobs_ended_total", state="done") == 1

        stages = [job["files"][0]["stage"] for job in seen]
        assert "embedding" in stages
        assert [STAGE_ORDER.index(s) for s in stages] == sorted(STAGE_ORDER.index(s) for s in stages)  # only forward
        progress = [job["progress"] for job in seen]
        assert progress == sorted(progress)
        assert any(0 < p < 1 for p in progress)
        assert answered_meanwhile >= 3

        cited = client.post("/v1/search", json={"query": "mountain hares change their coats", "top_k": 3}).json()
        assert cited["results"][0]["citation"]["doc_id"] == "large.pdf"
        assert 1 <= cited["results"][0]["citation"]["page_start"] <= 200
        assert client.get("/v1/documents/large.pdf").json()["pages"] == 200
        listed = client.get("/v1/jobs").json()["jobs"]
        assert [j["id"] for j in listed] == [body["job"]["id"]]
        # The job's temporary files are gone; the original is kept by its hash.
        originals = index_files(client)
        assert list((originals / INCOMING_DIR).iterdir()) == []


def index_files(client: TestClient) -> Path:
    return client.app.state.engine.collection.folder / ORIGINALS_DIR


def test_a_running_job_is_stopped_with_the_server_and_commits_nothing(
    tmp_path: Path, embedder: Embedder, large_pdf: bytes
) -> None:
    with upload_app(tmp_path / "index", embedder) as client:
        board = client.app.state.jobs
        generation = client.app.state.engine.collection.generation()
        body = client.post("/v1/documents?wait=false", files=files_form({"large.pdf": large_pdf})).json()
        queued = client.post("/v1/documents?wait=false", files=files_form({"later.md": b"# Later\n\nQueued behind."})).json()
        poll_until_embedding(client, body["status_url"])
    # The app has shut down: its worker stopped the job between two embedding slices.
    for accepted in (body, queued):
        job = board.get(accepted["job"]["id"]).info()
        assert job.state == "failed" and job.error == STOPPED
        assert job.files[0].stage == "failed" and job.files[0].status == "failed"
    reopened = Engine.open(tmp_path / "index", Settings().engine_settings(), embedder)
    assert reopened.collection.generation() == generation
    assert reopened.document_info("large.pdf") is None and reopened.document_info("later.md") is None
    assert list((tmp_path / "index" / ORIGINALS_DIR / INCOMING_DIR).iterdir()) == []
    reopened.close()


def poll_until_embedding(client: TestClient, url: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = client.get(url).json()
        assert job["state"] in ("queued", "running"), job
        if job["files"][0]["stage"] == "embedding":
            return
        time.sleep(0.02)
    raise AssertionError("the job never reached the embedding stage")


def test_a_large_upload_becomes_a_job_and_the_board_keeps_only_recent_jobs(tmp_path: Path, embedder: Embedder) -> None:
    with upload_app(tmp_path / "index", embedder, upload_job_bytes=60, jobs_kept=2) as client:
        small = client.post("/v1/documents", files=files_form({"tiny.txt": b"Under the job threshold."}))
        assert small.status_code == 201  # under CITEQA_UPLOAD_JOB_BYTES: handled while the client waits
        urls = []
        for n in range(3):
            text = f"Note {n}: the ferry to island {n} leaves at {n + 6} in the morning, over the job threshold.".encode()
            reply = client.post("/v1/documents", files=files_form({f"ferry-{n}.txt": text}))
            assert reply.status_code == 202  # over it: a job, without asking
            urls.append(reply.json()["status_url"])
            assert poll(client, urls[-1], {"done", "failed"})[-1]["state"] == "done"
        listed = [job["id"] for job in client.get("/v1/jobs").json()["jobs"]]
        assert listed == [url.rsplit("/", 1)[1] for url in reversed(urls[1:])]  # newest first, two kept
        assert client.get(urls[0]).status_code == 404
        assert "kept in memory" in client.get("/v1/jobs/no-such-job").json()["error"]["message"]


def test_a_job_reports_each_file_including_the_ones_that_fail(tmp_path: Path, embedder: Embedder) -> None:
    with upload_app(tmp_path / "index", embedder) as client:
        good = {"good.md": b"# Good\n\nThe good file about ferries is added.", "picture.png": files.png_image()}
        form = [*files_form(good), ("files", ("../bad.txt", b"refused by name", "text/plain"))]
        reply = client.post("/v1/documents?wait=false", files=form)
        assert reply.status_code == 202
        assert reply.json()["job"]["files"][2]["stage"] == "failed"  # refused by name before the job starts
        job = poll(client, reply.json()["status_url"], {"done", "failed"})[-1]
        assert job["state"] == "done"
        assert [(f["stage"], f["status"]) for f in job["files"]] == [
            ("committed", "added"),
            ("failed", "failed"),
            ("failed", "failed"),
        ]
        assert "PNG image" in job["files"][1]["reason"] and "refused" in job["files"][2]["reason"]
        assert job["counts"] | {} == {
            "files": 3, "queued": 0, "parsing": 0, "splitting": 0, "embedding": 0, "committing": 0, "committed": 1, "failed": 2,
        }  # fmt: skip
