"""Upload jobs: a large PDF moves through its stages in the background while searches keep answering from the last
commit; a stopping server commits nothing of a running job and the next one resumes it; finished jobs are bounded."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from citeqa.index.engine import Engine
from citeqa.index.models.embedding import Embedder
from citeqa.index.progress import Stage
from citeqa.index.storage.originals import INCOMING_DIR, ORIGINALS_DIR
from citeqa.index.writing.ingest import IncomingFile
from citeqa.service.app import create_app
from citeqa.service.job_model import Job
from citeqa.service.job_store import JobStore
from citeqa.settings import Settings
from tests import files
from tests.conftest import SEEDS
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
            "pages_read": None, "pages_to_read": None,  # a PDF with a text layer: no page needed OCR
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


def test_a_running_job_stopped_with_the_server_commits_nothing_and_the_next_server_resumes_it(
    tmp_path: Path, embedder: Embedder, large_pdf: bytes
) -> None:
    index = tmp_path / "index"
    with upload_app(index, embedder) as client:
        generation = client.app.state.engine.collection.generation()
        body = client.post("/v1/documents?wait=false", files=files_form({"large.pdf": large_pdf})).json()
        queued = client.post("/v1/documents?wait=false", files=files_form({"later.md": b"# Later\n\nQueued behind."})).json()
        poll_until_embedding(client, body["status_url"])
        home, jobs_dir = client.app.state.settings.home, client.app.state.settings.jobs_dir()
    # The app has shut down: its runner stopped the job between two embedding slices and put it back in the queue.
    store = JobStore(jobs_dir)
    for accepted in (body, queued):
        job = store.get(accepted["job"]["id"])
        assert job is not None and job.state == "queued" and job.error is None
        assert job.files[0].stage == "queued" and job.files[0].status is None
        assert (store.job_folder(job.id) / job.files[0].name).is_file()  # its upload is kept until it commits
    assert store.get(body["job"]["id"]).attempts == 0  # a stop the server asked for is not a failed attempt
    store.close()
    reopened = Engine.open(index, Settings().engine_settings(), embedder)
    assert reopened.collection.generation() == generation
    assert reopened.document_info("large.pdf") is None and reopened.document_info("later.md") is None
    reopened.close()

    # The next server on the same data home runs both, oldest first, and commits each once.
    with resumed_app(index, home, embedder) as client:
        first = poll(client, body["status_url"], {"done", "failed"})[-1]
        second = poll(client, queued["status_url"], {"done", "failed"})[-1]
        assert (first["state"], first["files"][0]["status"]) == ("done", "added")
        assert (second["state"], second["files"][0]["status"]) == ("done", "added")
        assert first["attempts"] == 1 and first["finished"] <= second["started"]
        assert client.get("/v1/documents/large.pdf").json()["pages"] == 200
        assert list(jobs_dir.glob("*/")) == []  # folders of ended jobs are removed


@contextmanager
def resumed_app(index: Path, home: Path, embedder: Embedder) -> Iterator[TestClient]:
    settings = Settings(corpus_dir=SEEDS, index_dir=index, home=home)
    engine = Engine.open(index, settings.engine_settings(), embedder)
    try:
        with TestClient(create_app(settings, engine)) as client:
            yield client
    finally:
        engine.close()


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
        assert "CITEQA_JOBS_KEPT" in client.get("/v1/jobs/no-such-job").json()["error"]["message"]


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
        assert "OCR found no words" in job["files"][1]["reason"] and "refused" in job["files"][2]["reason"]
        assert job["counts"] | {} == {
            "files": 3, "queued": 0, "parsing": 0, "splitting": 0, "embedding": 0, "committing": 0, "committed": 1, "failed": 2,
        }  # fmt: skip


def test_a_job_that_died_after_its_commit_runs_again_and_commits_nothing_twice(tmp_path: Path, embedder: Embedder) -> None:
    """The state a kill leaves between the catalog's commit and the job's end: the documents are committed, the job
    is `running` for a runner that is gone, out of attempts, its files at the commit. The next server runs it
    again (whether the commit landed, only a run can tell) and the run finds everything unchanged."""
    index, home = tmp_path / "index", tmp_path / "home"
    note = b"The lighthouse on the north cape was lit again in 1998 after forty dark years."
    with upload_app(index, embedder, home=home) as client:
        direct = client.post("/v1/documents", files=files_form({"cape.txt": note}))
        assert direct.status_code == 201  # committed: the first run's commit, as far as the index knows
    generation = Engine.open(index, Settings().engine_settings(), embedder)
    committed_generation = generation.collection.generation()
    generation.close()

    upload = tmp_path / "upload"
    upload.mkdir()
    (upload / "00000").write_bytes(note)
    incoming = IncomingFile(upload / "00000", "cape.txt", "cape.txt", len(note), hashlib.sha256(note).hexdigest())
    store = JobStore(Settings(index_dir=index, home=home).jobs_dir())
    job = store.submit(Job.for_files("default", [incoming]), upload)
    for _ in range(3):  # claimed three times by runners that died
        claimed = store.claim("a-runner-that-died", lease_seconds=60)
        assert claimed is not None
        claimed.files[0].stage = Stage.COMMITTING
        store.save_progress(claimed, lease_seconds=60)
        if claimed.attempts < 3:
            store.requeue(claimed, count_attempt=True)
    store.close()

    with resumed_app(index, home, embedder) as client:
        ended = poll(client, f"/v1/jobs/{job.id}", {"done", "failed"})[-1]
        assert ended["state"] == "done" and ended["files"][0]["status"] == "unchanged", ended
        assert ended["attempts"] == 4
        assert client.app.state.engine.collection.generation() == committed_generation  # nothing committed again


def test_servers_on_one_home_with_default_collections_of_their_own_each_run_their_own_jobs(
    tmp_path: Path, embedder: Embedder
) -> None:
    # Two servers share a data home but each has CITEQA_INDEX_DIR elsewhere: `default` is a different folder to each.
    home = tmp_path / "home"
    with (
        upload_app(tmp_path / "first" / "index", embedder, home=home) as first,
        upload_app(tmp_path / "second" / "index", embedder, home=home) as second,
    ):
        for client, name in ((second, "ferry.txt"), (first, "harbour.txt")):  # the second first: it started later
            text = f"The note {name} says the boat leaves at noon.".encode()
            accepted = client.post("/v1/documents?wait=false", files=files_form({name: text}))
            assert accepted.status_code == 202, accepted.text
            assert poll(client, accepted.json()["status_url"], {"done", "failed"})[-1]["state"] == "done"
        for client, mine, other in ((first, "harbour.txt", "ferry.txt"), (second, "ferry.txt", "harbour.txt")):
            ids = {d["id"] for d in client.get("/v1/documents").json()["documents"]}
            assert mine in ids and other not in ids
