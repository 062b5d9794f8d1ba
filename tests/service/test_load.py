"""Load while writing: 8 clients of mixed search, ask and streamed chat for 60 s against a real server while another
client adds, replaces and deletes documents. Zero errors, and every citation checks out against its document."""

import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import running_server

pytestmark = pytest.mark.slow  # a real server under 60 s of load

QUESTIONS = [
    "what did Shoygu allege?",
    "How many personnel would the West deploy?",
    "What did Keir Starmer propose?",
    "Where was the summit moved?",
    "Which harbour has the lighthouse?",
]
SECONDS = 60.0


def churn_text(n: int) -> str:
    return f"# Harbour note {n}\n\nThe lighthouse at harbour {n % 7} was repainted in week {n}. The summit was moved to Geneva."


def test_eight_clients_during_writes_see_no_errors_and_only_checkable_citations(tmp_path: Path) -> None:
    stop = time.monotonic() + SECONDS
    errors: list[str] = []
    latencies: list[float] = []
    checked = stale = 0
    lock = threading.Lock()

    with running_server(tmp_path / "index") as base:

        def verify(client: httpx.Client, citation: dict) -> None:
            nonlocal checked, stale
            reply = client.get(f"/v1/documents/{citation['doc_id']}")
            if reply.status_code == 404:
                return  # deleted meanwhile
            if reply.status_code != 200:
                with lock:
                    errors.append(f"GET document {reply.status_code}: {reply.text[:200]}")
                return
            document = reply.json()
            with lock:
                if document["sha256"] != citation["sha256"]:
                    stale += 1  # replaced meanwhile, and the citation says so
                elif document["text"][citation["quote_start"] : citation["quote_end"]] != citation["quote"]:
                    errors.append(f"citation does not match its document: {citation}")
                else:
                    checked += 1

        def reader(number: int) -> None:
            with httpx.Client(base_url=base, timeout=60) as client:
                n = number
                while time.monotonic() < stop:
                    question = QUESTIONS[n % len(QUESTIONS)]
                    tick = time.perf_counter()
                    kind = n % 3
                    if kind == 0:
                        reply = client.post("/v1/search", json={"query": question, "top_k": 3})
                        citations = [r["citation"] for r in reply.json().get("results", [])] if reply.status_code == 200 else []
                    elif kind == 1:
                        reply = client.post("/v1/ask", json={"question": question})
                        citations = reply.json().get("citations", []) if reply.status_code == 200 else []
                    else:
                        body = {"model": "citeqa", "stream": True, "messages": [{"role": "user", "content": question}]}
                        citations = []
                        with client.stream("POST", "/v1/chat/completions", json=body) as reply:
                            for line in reply.iter_lines():
                                if line.startswith("data: {"):
                                    citations = json.loads(line[6:]).get("citations", citations)
                    with lock:
                        latencies.append(time.perf_counter() - tick)
                        if reply.status_code != 200:
                            errors.append(f"{reply.status_code} for {question!r}")
                    for citation in citations:
                        verify(client, citation)
                    n += 8

        def writer() -> None:
            with httpx.Client(base_url=base, timeout=60) as client:
                n = 0
                while time.monotonic() < stop:
                    doc_id = f"churn/{n % 5}.md"
                    if n % 4 == 3:
                        reply = client.delete(f"/v1/documents/{doc_id}")
                        ok = reply.status_code in (200, 404)
                    else:
                        reply = client.post("/v1/documents", json={"id": doc_id, "text": churn_text(n)})
                        ok = reply.status_code in (200, 201)
                    if not ok:
                        with lock:
                            errors.append(f"write {reply.status_code}: {reply.text[:200]}")
                    n += 1

        def guarded(work, *args) -> None:  # an exception in a client thread fails the test, not just the thread
            try:
                work(*args)
            except Exception as exc:
                with lock:
                    errors.append(f"{work.__name__}: {exc!r}")

        threads = [threading.Thread(target=guarded, args=(reader, i)) for i in range(8)]
        threads.append(threading.Thread(target=guarded, args=(writer,)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    ordered = sorted(latencies)
    print(
        f"\nload while writing: {len(latencies)} requests in {SECONDS:.0f}s, p50 {1000 * statistics.median(ordered):.0f} ms, "
        f"p95 {1000 * ordered[int(0.95 * (len(ordered) - 1))]:.0f} ms; {checked} citations verified, "
        f"{stale} stale (flagged by sha256)"
    )
    assert not errors, errors[:5]
    assert len(latencies) > 50 and checked > 50


def test_numpy_runs_one_thread_per_request_beside_the_encoders_pool() -> None:
    # Imported first, as `citeqa serve` is: numpy's OpenBLAS then starts no second pool of threads per process.
    script = (
        "import os; os.environ.pop('OPENBLAS_NUM_THREADS', None); import citeqa, numpy, threadpoolctl; "
        "print(sorted((p['internal_api'], p['num_threads']) for p in threadpoolctl.threadpool_info() if p['user_api'] == 'blas'))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[('openblas', 1)]"
