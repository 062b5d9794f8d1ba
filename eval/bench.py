"""Benchmark: ingestion throughput and search latency, in-process and over HTTP against `citeqa serve`.

    python -m citeqa.eval.bench --dataset ../shared/data/squad-dev-a [--queries 300]

Builds a fresh index of the dataset (timing chunking + embedding), then times the same queries through
Engine.search in this process and through POST /v1/search on a real server started on loopback.
Timings are noisy on a shared machine: it prints medians and p95 and compares the two paths as a ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from citeqa.eval.beir import load_beir
from citeqa.index.builder import refresh_index
from citeqa.index.embedding import Embedder
from citeqa.index.engine import Engine
from citeqa.settings import Settings


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def wait_ready(base: str, process: subprocess.Popen, seconds: float = 300, log_path: Path | None = None) -> None:
    """Poll /readyz until the server answers 200; fail early, with its log, if the process exits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = log_path.read_text() if log_path and log_path.is_file() else ""
            raise RuntimeError(f"citeqa serve exited before it was ready\n{log}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError("citeqa serve did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=300, help="how many of the dataset's queries to time")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()

    settings = Settings()
    dataset = load_beir(args.dataset)
    documents = dataset.documents()
    queries = list(dataset.queries.values())[: args.queries]
    embedder = Embedder(settings.model, settings.embed_batch_size).load()
    with tempfile.TemporaryDirectory(prefix="citeqa-bench-") as folder:
        index_dir = Path(folder) / "index"
        started = time.perf_counter()
        summary = refresh_index(index_dir, documents, embedder, settings.engine_settings().index, show_progress=True)
        build_seconds = time.perf_counter() - started
        engine = Engine.open(index_dir, settings.engine_settings(), embedder)
        units = len(engine.store.units)
        print(
            f"\n{dataset.name}: {len(documents)} documents -> {summary.chunks} chunks + {units} sentences in {build_seconds:.1f}s"
        )
        texts_per_second = (summary.chunks + units) / build_seconds
        print(f"ingestion: {summary.chunks / build_seconds:.1f} chunks/s ({texts_per_second:.1f} texts embedded/s)")

        for query in queries[:10]:  # warm-up
            engine.search(query, args.top_k)
        in_process = []
        for query in queries:
            tick = time.perf_counter()
            engine.search(query, args.top_k)
            in_process.append((time.perf_counter() - tick) * 1000)

        env = os.environ | {"CITEQA_INDEX_DIR": str(index_dir)}
        server = subprocess.Popen(
            [sys.executable, "-m", "citeqa", "serve", "--port", str(args.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        over_http = []
        try:
            base = f"http://127.0.0.1:{args.port}"
            wait_ready(base, server)
            with httpx.Client(base_url=base, timeout=60) as client:
                for query in queries[:10]:
                    client.post("/v1/search", json={"query": query, "top_k": args.top_k})
                for query in queries:
                    tick = time.perf_counter()
                    client.post("/v1/search", json={"query": query, "top_k": args.top_k}).raise_for_status()
                    over_http.append((time.perf_counter() - tick) * 1000)
        finally:
            server.terminate()
            server.wait(timeout=30)

    print(f"\nsearch latency over {len(queries)} queries, top_k={args.top_k} (ms)")
    print("| path | p50 | p95 | mean |")
    print("|---|---:|---:|---:|")
    for name, values in (("in-process", in_process), ("HTTP /v1/search", over_http)):
        print(f"| {name} | {statistics.median(values):.1f} | {percentile(values, 0.95):.1f} | {statistics.mean(values):.1f} |")
    print(f"HTTP / in-process median ratio: {statistics.median(over_http) / statistics.median(in_process):.2f}")


if __name__ == "__main__":
    main()
