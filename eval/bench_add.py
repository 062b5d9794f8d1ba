"""Benchmark: what one document costs to add over HTTP, on a small index and on a large one.

    python -m citeqa.eval.bench_add --dataset ../shared/data/npl [--adds 20]

Serves two indexes with real `citeqa serve` processes, one after the other: the bundled seed document, and the
dataset (built once into the evaluation cache, then copied so the adds never touch the cache). On each it adds
`--adds` new small documents one at a time and times each from the request to the moment a search finds it (the
document is first for a query made of its unique words), with the POST alone and the first search after it timed
apart; then removes them, timed the same way until a search no longer finds it. Prints p50 and p95, the p50 of the
same searches with nothing changing (the part of a write's time that is the search itself), and the large/small
ratios with the CPU: writes should cost what they change, not what the collection holds. The two servers run in
ABBA order (`--rounds 2`: seed, large, large, seed), each round on a fresh copy, and the figures pool the rounds, so
neither index gains from going second.

Then, in the same run, the seed index is served with durable writes on and off (CITEQA_DURABLE_WRITES, ABBA order
again: on, off, off, on), and the p50s of the POST and of the add until found are printed side by side: what the
fsync of each new segment and catalog commit costs a write. `--durability-only` runs just that part.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal, TypedDict

import httpx

from citeqa.eval.beir import load_beir
from citeqa.eval.bench import Server, cpu_name, percentile
from citeqa.eval.runner import cached_engine, default_cache_dir
from citeqa.index.writing.ingest import load_folder
from citeqa.settings import Settings

WORDS = ["amber", "basalt", "cobalt", "dune", "ember", "fjord", "garnet", "heath", "indigo", "jasper", "kelp", "lagoon"]


def note(i: int) -> tuple[str, str, str]:
    """A small document (id, text) with a made-up word of its own, and the query that should find it first."""
    marker = f"quillet{i:03d}vane"
    words = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(6))
    text = f"# Survey note {i}\n\nThe {marker} survey recorded {words} along the northern shore. It was filed on day {i}."
    return f"bench/note-{i:03d}.md", text, f"{marker} survey"


def found_first(client: httpx.Client, query: str, doc_id: str) -> bool:
    results = client.post("/v1/search", json={"query": query, "top_k": 1}).raise_for_status().json()["results"]
    return bool(results) and results[0]["citation"]["doc_id"] == doc_id


def until(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("the change never became visible to search")


class WriteTimes(TypedDict):
    documents: int
    chunks: int
    add: list[float]  # ms from POST until a search finds the document first
    post: list[float]  # ms of the POST alone
    first_search: list[float]  # ms of the first search after the POST
    delete: list[float]  # ms from DELETE until a search no longer finds it
    search: list[float]  # ms of the same searches alone


def listed_documents(client: httpx.Client) -> list[dict]:
    """Every document the server lists, page after page."""
    documents: list[dict] = []
    params: dict[str, str | int] = {"limit": 1000}
    while True:
        reply = client.get("/v1/documents", params=params).json()
        documents += reply["documents"]
        if reply["next_cursor"] is None:
            return documents
        params["cursor"] = reply["next_cursor"]


def time_writes(index_dir: Path, port: int, adds: int, env: dict[str, str] | None = None) -> WriteTimes:
    command = [sys.executable, "-m", "citeqa", "serve", "--index-dir", str(index_dir), "--port", str(port)]
    server = Server(command, port, env=env)
    try:
        with httpx.Client(base_url=server.base, timeout=120) as client:
            documents = listed_documents(client)
            chunks = sum(d["chunks"] for d in documents)
            add_ms, post_ms, first_search_ms, delete_ms = [], [], [], []
            for i in range(adds):
                doc_id, text, query = note(i)
                tick = time.perf_counter()
                client.post("/v1/documents", json={"id": doc_id, "text": text}).raise_for_status()
                posted = time.perf_counter()
                found = found_first(client, query, doc_id)
                first_search_ms.append((time.perf_counter() - posted) * 1000)
                if not found:
                    until(lambda: found_first(client, query, doc_id))  # noqa: B023 - called before the loop moves on
                add_ms.append((time.perf_counter() - tick) * 1000)
                post_ms.append((posted - tick) * 1000)
            search_ms = []  # the same searches with nothing changing: what of a write's time is the search itself
            for i in range(adds):
                doc_id, _, query = note(i)
                tick = time.perf_counter()
                found_first(client, query, doc_id)
                search_ms.append((time.perf_counter() - tick) * 1000)
            for i in range(adds):
                doc_id, _, query = note(i)
                tick = time.perf_counter()
                client.delete(f"/v1/documents/{doc_id}").raise_for_status()
                until(lambda: not found_first(client, query, doc_id))  # noqa: B023
                delete_ms.append((time.perf_counter() - tick) * 1000)
    finally:
        server.stop()
    return {
        "documents": len(documents),
        "chunks": chunks,
        "add": add_ms,
        "post": post_ms,
        "first_search": first_search_ms,
        "delete": delete_ms,
        "search": search_ms,
    }


Measure = Literal["add", "post", "first_search", "delete", "search"]


def pooled(runs: list[WriteTimes]) -> WriteTimes:
    """Several runs on copies of one index as one set of samples."""
    keys: list[Measure] = ["add", "post", "first_search", "delete", "search"]
    merged = {key: [value for run in runs for value in run[key]] for key in keys}
    return {"documents": runs[0]["documents"], "chunks": runs[0]["chunks"], **merged}  # type: ignore[typeddict-item]


def summary(figures: WriteTimes, key: Measure) -> tuple[float, float]:
    values = figures[key]
    return statistics.median(values), percentile(values, 0.95)


def scratch_root() -> Path:
    return Path(tempfile.gettempdir())


def file_system(path: Path) -> str:
    """The type of the file system holding `path` (an fsync costs what the disk under it costs; tmpfs: nothing)."""
    best = ("", "?")
    for line in Path("/proc/mounts").read_text().splitlines() if Path("/proc/mounts").is_file() else []:
        _, mount, kind = line.split()[:3]
        if (path.as_posix() + "/").startswith(mount.rstrip("/") + "/") and len(mount) >= len(best[0]):
            best = (mount, kind)
    return best[1]


def compare_durability(seed_folder: Path, port: int, adds: int, rounds: int) -> None:
    """The seed index served with durable writes on and off, in ABBA order on fresh copies: POST and add p50s."""
    modes = ["on", "off"]
    order = [m for r in range(rounds) for m in (modes if r % 2 == 0 else modes[::-1])]
    runs: dict[str, list[WriteTimes]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory() as scratch:
        for k, mode in enumerate(order):
            copy = Path(scratch) / f"seed-{mode}-{k}"
            shutil.copytree(seed_folder, copy)
            env = os.environ | {"CITEQA_DURABLE_WRITES": "true" if mode == "on" else "false"}
            runs[mode].append(time_writes(copy, port, adds, env))
            shutil.rmtree(copy)
    results = {mode: pooled(times) for mode, times in runs.items()}
    print(f"\ndurable writes on and off, seed index ({adds} adds per run, {rounds} runs each in ABBA order; p50 ms)")
    print(f"CPU: {cpu_name()}; file system of {scratch_root()}: {file_system(scratch_root())}")
    print("| durable writes | POST | add until found | delete until gone |")
    print("|---|---:|---:|---:|")
    keys: list[Measure] = ["post", "add", "delete"]
    for mode, figures in results.items():
        cells = [f"{summary(figures, key)[0]:.1f}" for key in keys]
        print(f"| {mode} | " + " | ".join(cells) + " |")
    on, off = results["on"], results["off"]
    ratios = [f"{summary(on, key)[0] / summary(off, key)[0]:.2f}x" for key in keys]
    print("| on / off | " + " | ".join(ratios) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, help="a BEIR dataset to serve as the large index")
    parser.add_argument("--adds", type=int, default=20)
    parser.add_argument("--port", type=int, default=8771)
    parser.add_argument("--rounds", type=int, default=2, help="ABBA rounds: each pairs a seed run with a large one")
    parser.add_argument("--durability-only", action="store_true", help="only compare durable writes on and off")
    args = parser.parse_args()
    if args.dataset is None and not args.durability_only:
        parser.error("--dataset is needed (or --durability-only)")
    settings = Settings()
    engine_settings = settings.engine_settings()
    cache = default_cache_dir()
    seed = cached_engine("bench-add-seed", load_folder(settings.corpus_dir).documents, engine_settings, cache)
    seed_folder = seed.folder
    seed.close()
    if args.durability_only:
        compare_durability(seed_folder, args.port, args.adds, args.rounds)
        return
    dataset = load_beir(args.dataset)
    sources = {
        "seed": cached_engine("bench-add-seed", load_folder(settings.corpus_dir).documents, engine_settings, cache),
        dataset.name: cached_engine(dataset.name, dataset.documents(), engine_settings, cache, show_progress=True),
    }
    folders = {}
    for name, engine in sources.items():
        folders[name] = engine.folder
        engine.close()
    names = list(sources)
    order = [n for r in range(args.rounds) for n in (names if r % 2 == 0 else names[::-1])]
    runs: dict[str, list[WriteTimes]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as scratch:
        for k, name in enumerate(order):
            copy = Path(scratch) / f"{name}-{k}"
            shutil.copytree(folders[name], copy)
            runs[name].append(time_writes(copy, args.port, args.adds))
            shutil.rmtree(copy)
    results = {name: pooled(times) for name, times in runs.items()}
    small, large = results["seed"], results[dataset.name]
    columns: list[tuple[str, Measure]] = [
        ("POST", "post"),
        ("1st search", "first_search"),
        ("add until found", "add"),
        ("delete until gone", "delete"),
        ("search alone", "search"),
    ]
    print(
        f"one-document writes over HTTP ({args.adds} per run, {args.rounds} runs each in ABBA order; p50 / p95 ms); {cpu_name()}"
    )
    print("| index | documents | chunks | " + " | ".join(title for title, _ in columns) + " |")
    print("|---|---:|---:|" + "---:|" * len(columns))
    for name, figures in results.items():
        cells = [f"{summary(figures, key)[0]:.1f} / {summary(figures, key)[1]:.1f}" for _, key in columns]
        print(f"| {name} | {figures['documents']} | {figures['chunks']} | " + " | ".join(cells) + " |")
    ratios = [f"{summary(large, key)[0] / summary(small, key)[0]:.2f}x" for _, key in columns]
    print(f"| {dataset.name} / seed, p50 | | | " + " | ".join(ratios) + " |")
    compare_durability(folders["seed"], args.port, args.adds, args.rounds)


if __name__ == "__main__":
    main()
