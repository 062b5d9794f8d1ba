"""Compare the embedding backends (torch, onnx, onnx-int8) on one machine, in one run.

    python -m citeqa.eval.encoders --dataset ../shared/data/squad-dev-a [--queries 300] [--texts 2000] [--serve]

- query latency: `--queries` single-query encodes (no query cache), the backends taking turns by blocks of
  `--block` queries, so a busy neighbour slows all of them alike; p50 and p95.
- bulk throughput: `--texts` texts as an index embeds them (the dataset's passages and their sentences, half and
  half), in slices the backends take turns on; texts per second.
- agreement: cosine of each backend's vectors with the torch ones over those texts (min, mean).
- `--serve`: for each backend, `citeqa serve` on a small prebuilt index (the seeds): seconds from start to a 200
  from /readyz, the server's resident memory, and whether torch is mapped into it; medians of `--starts` starts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import httpx
import numpy as np

from citeqa.eval.beir import load_beir
from citeqa.eval.bench import memory_mib, percentile, wait_ready
from citeqa.home import bundled
from citeqa.index.engine import Engine, EngineSettings
from citeqa.index.models.embedding import ENCODERS, Embedder
from citeqa.index.text.spans import evidence_units
from citeqa.index.writing.ingest import load_folder


def bulk_texts(dataset_dir: Path, count: int) -> list[str]:
    """Passages and their sentences, alternating documents' passages and sentences until `count` texts."""
    dataset = load_beir(dataset_dir)
    passages: list[str] = []
    sentences: list[str] = []
    for document in dataset.documents():
        passages.append(document.text)
        sentences.extend(document.text[u.start : u.end] for u in evidence_units(document.text))
        if len(passages) >= count // 2 and len(sentences) >= count - count // 2:
            break
    return passages[: count // 2] + sentences[: count - count // 2]


def maps_torch(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def serve_start(encoder: str, home: Path, index_dir: Path, port: int, queries: list[str]) -> dict[str, float | bool]:
    env = os.environ | {"CITEQA_HOME": str(home), "CITEQA_INDEX_DIR": str(index_dir), "CITEQA_ENCODER": encoder}
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "citeqa", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, server, poll=0.05)
        ready = time.perf_counter() - started
        rss_ready = memory_mib(server.pid)["VmRSS"]
        with httpx.Client(base_url=base, timeout=60) as client:
            for query in queries:
                client.post("/v1/search", json={"query": query, "top_k": 5}).raise_for_status()
        rss_after = memory_mib(server.pid)["VmRSS"]
        return {"ready_s": ready, "rss_ready": rss_ready, "rss_after": rss_after, "torch": maps_torch(server.pid)}
    finally:
        server.terminate()
        server.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--block", type=int, default=25, help="queries per latency turn")
    parser.add_argument("--slice", type=int, default=250, help="texts per bulk turn")
    parser.add_argument("--encoders", default=",".join(ENCODERS))
    parser.add_argument("--models-dir", type=Path, help="ONNX export cache (default: a temporary folder, exported afresh)")
    parser.add_argument("--serve", action="store_true", help="also time `citeqa serve` start-up and memory per backend")
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args(argv)

    encoders = [e.strip() for e in args.encoders.split(",") if e.strip()]
    scratch = tempfile.TemporaryDirectory(prefix="citeqa-encoders-")
    home = Path(scratch.name)
    models_dir = args.models_dir or home / "models"
    dataset = load_beir(args.dataset)
    queries = list(dataset.queries.values())[: args.queries]
    texts = bulk_texts(args.dataset, args.texts)

    embedders: dict[str, Embedder] = {}
    load_seconds: dict[str, float] = {}
    for name in encoders:
        started = time.perf_counter()
        embedders[name] = Embedder(encoder=name, models_dir=models_dir, query_cache_size=0).load()
        embedders[name].embed(queries[:5])  # warm-up
        load_seconds[name] = time.perf_counter() - started

    # Backends take turns by blocks of queries, with a pause between turns: query by query, one backend's
    # spinning worker threads (torch's OpenMP, onnxruntime's pool) would slow the next one down.
    latency: dict[str, list[float]] = {name: [] for name in encoders}
    for start in range(0, len(queries), args.block):
        for name, embedder in embedders.items():
            time.sleep(0.2)
            for query in queries[start : start + args.block]:
                tick = time.perf_counter()
                embedder.embed([query])
                latency[name].append((time.perf_counter() - tick) * 1000)

    bulk_seconds = dict.fromkeys(encoders, 0.0)
    vectors: dict[str, list[np.ndarray]] = {name: [] for name in encoders}
    for start in range(0, len(texts), args.slice):
        part = texts[start : start + args.slice]
        for name, embedder in embedders.items():
            time.sleep(0.2)
            tick = time.perf_counter()
            vectors[name].append(embedder.embed(part))
            bulk_seconds[name] += time.perf_counter() - tick

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    print(f"\n{dataset.name}: {len(queries)} queries, {len(texts)} texts; {cpu}, {os.cpu_count()} cores")
    reference = np.vstack(vectors["torch"]) if "torch" in vectors else None
    base_p50 = statistics.median(latency["torch"]) if "torch" in latency else None
    base_rate = len(texts) / bulk_seconds["torch"] if "torch" in bulk_seconds else None
    print("| backend | load (s) | query p50 (ms) | query p95 (ms) | p50 vs torch | bulk texts/s | vs torch | cos min / mean |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    rows: dict[str, dict[str, object]] = {}  # backend -> its figures (numbers, and "torch": yes or no)
    for name in encoders:
        p50, rate = statistics.median(latency[name]), len(texts) / bulk_seconds[name]
        cos = np.sum(np.vstack(vectors[name]) * reference, axis=1) if reference is not None else np.array([np.nan])
        rows[name] = {"load_s": load_seconds[name], "p50_ms": p50, "p95_ms": percentile(latency[name], 0.95), "texts_per_s": rate}
        rows[name] |= {"cos_min": float(cos.min()), "cos_mean": float(cos.mean())}
        p50_ratio = p50 / base_p50 if base_p50 else float("nan")
        rate_ratio = rate / base_rate if base_rate else float("nan")
        print(
            f"| {name} | {load_seconds[name]:.1f} | {p50:.2f} | {percentile(latency[name], 0.95):.2f} | {p50_ratio:.2f} | "
            f"{rate:.1f} | {rate_ratio:.2f} | {cos.min():.4f} / {cos.mean():.4f} |"
        )

    if args.serve:
        report = load_folder(bundled("seeds"))
        for name, embedder in embedders.items():
            with closing(Engine.create(home / f"index-{name}", EngineSettings(), embedder)) as engine:
                engine.sync(report.documents, report.origin)
        # The servers read the ONNX export from <CITEQA_HOME>/models: point that at the cache used above.
        if models_dir != home / "models":
            (home / "models").symlink_to(models_dir.resolve(), target_is_directory=True)
        embedders.clear()
        starts: dict[str, list[dict]] = {name: [] for name in encoders}
        for _ in range(args.starts):
            for name in encoders:
                starts[name].append(serve_start(name, home, home / f"index-{name}", args.port, queries[:20]))
        print(f"\n`citeqa serve` on the seeds index, medians of {args.starts} starts (backends alternating)")
        print("| backend | start to ready (s) | RSS at ready (MiB) | RSS after 20 queries (MiB) | torch mapped |")
        print("|---|---:|---:|---:|---|")
        for name in encoders:
            ready = statistics.median(s["ready_s"] for s in starts[name])
            rss = statistics.median(s["rss_ready"] for s in starts[name])
            after = statistics.median(s["rss_after"] for s in starts[name])
            torch_mapped = "yes" if any(s["torch"] for s in starts[name]) else "no"
            print(f"| {name} | {ready:.2f} | {rss:.0f} | {after:.0f} | {torch_mapped} |")
            rows[name] |= {"serve_ready_s": ready, "serve_rss_mib": rss, "serve_rss_after_mib": after, "torch": torch_mapped}
    print("\n" + json.dumps({"cpu": cpu, "backends": rows}))
    scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
