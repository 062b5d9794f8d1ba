"""Benchmark: a folder built in-process and through a Ray cluster on this machine, its speed and its sameness.

    python -m citeqa.eval.bench_ray --dataset ../shared/data/scifact [--documents 600]

Writes the dataset's first `--documents` entries as text files into a temporary folder and builds them
in-process (`citeqa index`, on every core and on one thread), then through a Ray test cluster (ray.cluster_utils:
a head with no CPUs and one or two worker nodes of one CPU each, every process on 127.0.0.1) with 1 worker CPU and
with 2. Each build is timed from the start of the job to its commit (a Ray build's time includes shipping the
encoder and starting its actors: that is part of its cost). Prints passages (chunks) per second for each, Ray's
overhead (the one-thread in-process rate / the Ray rate at one CPU) and the scaling efficiency (the rate at 2 CPUs
/ twice the rate at 1), with the CPU; then compares the 2-CPU build with the in-process one: documents and hashes,
and the top 10 (document, chunk, quote) of every test query.
Needs citeqa[ray]. Run it alone (on two cores a second heavy job changes every figure).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a head on 127.0.0.1 is reached there (connect.py)

from citeqa.eval.beir import load_beir
from citeqa.eval.bench import cpu_name
from citeqa.index.cluster.connect import require_ray
from citeqa.index.cluster.ingest import ClusterJob
from citeqa.index.cluster.ingest import build_on_cluster as ingest_on_cluster
from citeqa.index.engine import Engine
from citeqa.index.models.embedding import Embedder
from citeqa.index.writing.ingest import load_folder
from citeqa.settings import Settings

NODE: dict[str, Any] = {"node_ip_address": "127.0.0.1", "object_store_memory": 300 * 1024 * 1024}


def write_folder(dataset: Path, documents: int, folder: Path) -> Path:
    data = load_beir(dataset)
    folder.mkdir(parents=True)
    for document in data.documents()[:documents]:
        (folder / f"{document.id}.txt").write_text(document.text, encoding="utf-8")
    return folder


def build(corpus: Path, index_dir: Path, address: str | None, threads: int | None = None) -> tuple[Engine, float]:
    """The folder built as `citeqa index` builds it (in-process, or on the cluster at `address`), and the seconds.
    `threads`: the encoder's threads, bulk work included (as a Ray actor runs it); None: every core."""
    settings = Settings(index_dir=index_dir).engine_settings()
    embedder = Embedder(
        settings.model,
        settings.batch_size,
        encoder=settings.encoder,
        models_dir=settings.models_dir,
        threads=threads,
        bulk_on_every_core=threads is None,
    )
    engine = Engine.create(index_dir, settings, embedder)
    started = time.perf_counter()
    if address is None:
        report = load_folder(corpus, originals=engine.originals)
        engine.sync(report.documents, report.origin)
    else:
        ingest_on_cluster(engine, corpus, ClusterJob(address))
    return engine, time.perf_counter() - started


def build_on_cluster(corpus: Path, index_dir: Path, cpus: int) -> tuple[Engine, float]:
    ray = require_ray()
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "num_cpus": 0, "include_dashboard": False})
    for _ in range(cpus):
        cluster.add_node(num_cpus=1, **NODE)
    cluster.wait_for_nodes()
    try:
        return build(corpus, index_dir, cluster.address)
    finally:
        ray.shutdown()
        cluster.shutdown()


def top10(engine: Engine, question: str) -> list[tuple[str, int, int, int]]:
    return [(p.chunk.doc_id, p.chunk.ordinal, p.quote.start, p.quote.end) for p in engine.search(question, top_k=10)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--documents", type=int, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="citeqa-bench-ray-") as scratch:
        root = Path(scratch)
        corpus = write_folder(args.dataset, args.documents, root / "corpus")
        local, local_seconds = build(corpus, root / "local", None)
        passages = local.stats().chunks
        single, single_seconds = build(corpus, root / "local1", None, threads=1)
        one, one_seconds = build_on_cluster(corpus, root / "ray1", 1)
        two, two_seconds = build_on_cluster(corpus, root / "ray2", 2)
        timed = (("in", local_seconds), ("in1", single_seconds), ("1", one_seconds), ("2", two_seconds))
        rates = {name: passages / seconds for name, seconds in timed}
        print(f"CPU: {cpu_name()} ({os.cpu_count()} cores); {args.dataset.name}, {args.documents} documents, {passages} passages")
        print(f"in-process        {local_seconds:7.1f} s  {rates['in']:7.1f} passages/s (every core)")
        print(f"in-process, 1 thread {single_seconds:7.1f} s  {rates['in1']:7.1f} passages/s")
        print(f"Ray, 1 worker CPU {one_seconds:7.1f} s  {rates['1']:7.1f} passages/s")
        print(f"Ray, 2 worker CPUs{two_seconds:7.1f} s  {rates['2']:7.1f} passages/s")
        print(f"Ray's overhead at 1 CPU: in-process 1-thread rate / Ray rate = {rates['in1'] / rates['1']:.2f}x")
        print(f"scaling efficiency, 2 CPUs: {rates['2'] / (2 * rates['1']):.2f} (1.00 = linear)")
        same_documents = [(d.id, d.sha256, d.chunks) for d in two.documents()] == [
            (d.id, d.sha256, d.chunks) for d in local.documents()
        ]
        questions = list(load_beir(args.dataset).queries.values())
        differ = sum(top10(two, q) != top10(local, q) for q in questions)
        print(f"documents and hashes identical: {same_documents}")
        print(f"top-10 with quotes differ for {differ} of {len(questions)} queries")
        for engine in (local, single, one, two):
            engine.close()


if __name__ == "__main__":
    main()
