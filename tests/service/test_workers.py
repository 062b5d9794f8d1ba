"""`citeqa serve --workers 2`: real processes on one data home. Any worker answers any request (documents, jobs,
MCP, metrics gathered from both, a keys file changed on disk); and the whole server killed with SIGKILL at random
moments during 20 upload jobs loses no job and commits each document once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from citeqa.index.engine import Engine, EngineSettings
from citeqa.index.models.embedding import Embedder
from citeqa.index.storage.originals import INCOMING_DIR, ORIGINALS_DIR
from citeqa.service.job_store import JobStore
from citeqa.settings import Settings
from tests.conftest import SEED_ID
from tests.helpers import citeqa_env, run_citeqa, server_group

pytestmark = pytest.mark.slow


def two_workers(index_dir: Path, home: Path, log_path: Path) -> AbstractContextManager[tuple[str, subprocess.Popen[bytes]]]:
    """`citeqa serve --workers 2` in a process group of its own; yields its base URL once it answers."""
    return server_group(index_dir, log_path, CITEQA_HOME=str(home), CITEQA_WORKERS="2")


def workers_in_log(log_path: Path, route: str) -> set[int]:
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith('{"request_id"')]
    return {line["worker"] for line in lines if line["route"] == route}


def test_any_worker_answers_any_request(tmp_path: Path) -> None:
    home, log_path = tmp_path / "home", tmp_path / "serve.log"
    with two_workers(home / "collections" / "default", home, log_path) as (base, _):
        # Fresh connections, many of them, so both workers take some (each accepts from the one socket).
        note = {"id": "notes/ferry.md", "text": "# Ferry\n\nThe ferry to the island leaves at seven from pier four."}
        assert httpx.post(f"{base}/v1/documents", json=note, timeout=60).status_code == 201
        accepted = httpx.post(
            f"{base}/v1/documents?wait=false",
            files=[("files", ("later.md", b"# Later\n\nThe lighthouse keeper retired in spring.", "text/markdown"))],
            timeout=60,
        )
        assert accepted.status_code == 202, accepted.text
        job_url = f"{base}{accepted.json()['status_url']}"
        for _ in range(40):
            listed = httpx.get(f"{base}/v1/documents", timeout=30).json()["documents"]
            assert "notes/ferry.md" in {d["id"] for d in listed}  # committed by one worker, seen by both
            assert httpx.get(job_url, timeout=30).status_code == 200  # a job any worker can show
            found = httpx.post(f"{base}/v1/search", json={"query": "When does the ferry leave?", "top_k": 1}, timeout=30)
            assert found.json()["results"][0]["citation"]["doc_id"] == "notes/ferry.md"
        assert len(workers_in_log(log_path, "/v1/search")) == 2, "one worker answered every search"
        deadline = time.monotonic() + 120
        while httpx.get(job_url, timeout=30).json()["state"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.2)

        # /metrics adds up both workers' counts, whichever worker is asked; index and job gauges come from disk.
        for _ in range(4):
            metrics = httpx.get(f"{base}/metrics", timeout=30).text
            assert 'citeqa_http_requests_total{method="POST",route="/v1/search",status="200"} 40.0' in metrics
            assert 'citeqa_index_documents{collection="default"} 3.0' in metrics
            assert 'citeqa_jobs{state="done"} 1.0' in metrics

        # MCP over HTTP: stateless, so a client's calls may land on either worker.
        headers = {"accept": "application/json, text/event-stream"}
        for call in range(10):
            request = {"jsonrpc": "2.0", "id": call, "method": "tools/call",
                       "params": {"name": "search", "arguments": {"query": "lighthouse keeper", "top_k": 1}}}  # fmt: skip
            reply = httpx.post(f"{base}/mcp", json=request, headers=headers, timeout=30)
            assert reply.status_code == 200 and "later.md" in reply.text, reply.text

        # A key added on disk reaches both workers: the open API closes on every connection.
        added = run_citeqa(
            "keys", "add", "--role", "read", env=citeqa_env(home / "collections" / "default", CITEQA_HOME=str(home))
        )
        assert added.returncode == 0, added.stderr
        key = added.stdout.strip().splitlines()[0]
        time.sleep(1.1)  # the keys file is read again when its time stamp moves
        for _ in range(20):
            assert httpx.get(f"{base}/v1/documents", timeout=30).status_code == 401
            assert httpx.get(f"{base}/v1/documents", headers={"Authorization": f"Bearer {key}"}, timeout=30).status_code == 200
        assert len(workers_in_log(log_path, "/v1/documents")) == 2


def job_files(job: int) -> dict[str, bytes]:
    """Three small documents per job, long enough that parsing, splitting and embedding each take a moment."""
    rng = random.Random(job)
    files = {}
    for part in "abc":
        sentences = [
            f"Dispatch {job}{part}-{n}: the convoy passed checkpoint {rng.randrange(10_000)} at dawn." for n in range(60)
        ]
        files[f"j{job:02d}-{part}.txt"] = " ".join(sentences).encode()
    return files


def test_sigkill_of_both_workers_during_20_upload_jobs_loses_no_job_and_commits_each_document_once(
    tmp_path: Path, embedder: Embedder
) -> None:
    home, index_dir, log_path = tmp_path / "home", tmp_path / "home" / "collections" / "default", tmp_path / "serve.log"
    rng = random.Random(26)
    accepted: dict[str, dict[str, bytes]] = {}  # job id -> its files, for every upload answered with a 202
    waiting = list(range(20))
    stages_at_kill: list[str] = []
    while waiting:
        with two_workers(index_dir, home, log_path) as (base, server):
            for job in waiting[:5]:
                reply = httpx.post(f"{base}/v1/documents?wait=false", files=_form(job_files(job)), timeout=60)
                assert reply.status_code == 202, reply.text
                accepted[reply.json()["job"]["id"]] = job_files(job)
            waiting = waiting[5:]
            time.sleep(rng.uniform(0.0, 3.0))
            running = [j for j in httpx.get(f"{base}/v1/jobs", timeout=30).json()["jobs"] if j["state"] == "running"]
            stages_at_kill += [f["stage"] for j in running for f in j["files"]]
            os.killpg(server.pid, signal.SIGKILL)  # the supervisor and both workers, at once
            server.wait()
        # After every kill: the index loads, and no document is there twice or half-written.
        _check_index(index_dir, embedder)

    with two_workers(index_dir, home, log_path) as (base, _):
        ended = {}
        deadline = time.monotonic() + 600
        while len(ended) < len(accepted):
            assert time.monotonic() < deadline, f"jobs still unfinished: {set(accepted) - set(ended)}"
            for job_id in set(accepted) - set(ended):
                job = httpx.get(f"{base}/v1/jobs/{job_id}", timeout=30).json()
                if job["state"] in ("done", "failed"):
                    ended[job_id] = job
            time.sleep(0.2)
        expected = {SEED_ID}
        for job_id, job in ended.items():
            if job["state"] == "failed":  # killed while running it CITEQA_JOB_ATTEMPTS times: it says so
                assert "CITEQA_JOB_ATTEMPTS" in job["error"] and job["attempts"] == 3, job
                continue
            assert 1 <= job["attempts"] <= 3 and [f["status"] for f in job["files"]] != ["failed"] * 3, job
            expected |= set(accepted[job_id])
            for doc_id, data in accepted[job_id].items():
                stored = httpx.get(f"{base}/v1/documents/{doc_id}", timeout=30).json()
                assert stored["text"] == data.decode(), doc_id
        listed = httpx.get(f"{base}/v1/documents?limit=1000", timeout=30).json()["documents"]
        # Each document of a done job once, none of a failed one (it committed nothing), nothing else.
        assert sorted(d["id"] for d in listed) == sorted(expected)
        failed = sum(job["state"] == "failed" for job in ended.values())
        print(f"{len(ended)} jobs: {len(ended) - failed} done, {failed} failed after 3 attempts")

    print(f"file stages of running jobs at the kills: {sorted(stages_at_kill)}")
    assert {"parsing", "splitting", "embedding", "committing", "committed"} & set(stages_at_kill), "no kill hit a running job"
    # Nothing left behind: the ended jobs' folders, the uploads being received, staged segments.
    store = JobStore(Settings(index_dir=index_dir, home=home).jobs_dir())
    assert [p.name for p in store.folder.iterdir() if p.is_dir()] == []
    store.close()
    assert list((index_dir / ORIGINALS_DIR / INCOMING_DIR).iterdir()) == []
    _check_index(index_dir, embedder, no_strays=True)


def _form(files: dict[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, data, "text/plain")) for name, data in files.items()]


def _check_index(index_dir: Path, embedder: Embedder, no_strays: bool = False) -> None:
    engine = Engine.open(index_dir, EngineSettings(), embedder)
    try:
        infos = engine.documents()
        assert len({info.id for info in infos}) == len(infos)
        for info in infos:
            document = engine.document(info.id)
            assert document is not None and all(document.text[c.start : c.end] == c.text for c in engine.chunks(info.id))
        if no_strays:
            # A segment staged by a killed writer, or by a merge the last stop cut short, is removed by the next
            # write's start (index/storage/collection.py); after one, every folder is one the catalog names.
            engine.collection.write([], [])
            on_disk = {p.name for p in (index_dir / "segments").iterdir()}
            assert on_disk == engine.collection.catalog.segment_names()
    finally:
        engine.close()
