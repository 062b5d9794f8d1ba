"""Benchmark: ingestion throughput and search latency, in-process and over HTTP against `citeqa serve`.

    python -m citeqa.eval.bench --dataset ../shared/data/squad-dev-a [--queries 300] [--no-floor]

Builds a fresh index of the dataset (timing chunking + embedding), then times the same queries through
Engine.search in this process and through POST /v1/search on a real server started on loopback.
Timings are noisy on a shared machine: it prints medians and p95 and compares the two paths as a ratio.

Unless --no-floor, the same run measures the floor (eval/floor.py: sentence-transformers + FAISS IndexFlatIP behind
one FastAPI route, dense only, whole passages) the same way and prints each citeqa figure with its ratio to the
floor's: ingestion passages/s, p50 of the sequential queries, requests/s with `--clients` concurrent clients for
`--seconds` seconds (distinct queries, never the timed or warm-up ones, so no query cache is hit), start-up time
(process start to a 200 from /readyz) and the server's resident memory (at ready, and its peak after the load;
with several workers, summed over the supervisor and its workers).

citeqa is served with each count of `--workers` in turn (default 1 and 2), so the effect of a second process is
a ratio from one run; the floor table shows the last count (the default of `citeqa serve` on two cores).
With `--reader-depths 1,3`, citeqa is then served again (with the last count of workers) with the trained reader
reading that many passages (CITEQA_READER_DEPTH), and a table puts each depth's p50 and requests/s beside the
floor's from the same run; `--reader-sentences 0,2` serves each depth once per count of sentences read in a passage
(CITEQA_READER_SENTENCES, 0: all; default: the setting's value).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import httpx

from citeqa.console import TerminalProgress
from citeqa.eval.beir import load_beir
from citeqa.index.engine import Engine
from citeqa.settings import Settings


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def wait_ready(
    base: str, process: subprocess.Popen, seconds: float = 300, log_path: Path | None = None, poll: float = 0.5
) -> None:
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
        time.sleep(poll)
    raise RuntimeError("citeqa serve did not become ready")


def cpu_name() -> str:
    """The CPU's model name, printed with every figure (machines differ from one session to the next)."""
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())


def memory_mib(pid: int) -> dict[str, float]:
    """Resident memory now (VmRSS) and at its peak (VmHWM), MiB, of the process and its descendants (a server's
    workers) added up."""
    total = {"VmRSS": 0.0, "VmHWM": 0.0}
    for member in _process_tree(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except FileNotFoundError:  # ended meanwhile
            continue
        fields = dict(line.split(":", 1) for line in lines if ":" in line)
        for key in total:
            total[key] += int(fields[key].split()[0]) / 1024
    return total


def _process_tree(pid: int) -> list[int]:
    found, pending = [], [pid]
    while pending:
        member = pending.pop()
        found.append(member)
        children = Path(f"/proc/{member}/task/{member}/children")
        if children.is_file():
            pending += [int(child) for child in children.read_text().split()]
    return found


class Server:
    """A server process started for measuring: start-up time to a 200 from /readyz, and its memory."""

    def __init__(self, command: list[str], port: int, env: dict[str, str] | None = None) -> None:
        self.base = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(self.base, self.process, poll=0.05)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - started
        self.ready_memory = memory_mib(self.process.pid)

    def memory(self) -> dict[str, float]:
        return memory_mib(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def sequential_ms(client: httpx.Client, request, queries: list[str], warm_up: list[str]) -> list[float]:
    for query in warm_up:
        request(client, query)
    timings = []
    for query in queries:
        tick = time.perf_counter()
        request(client, query).raise_for_status()
        timings.append((time.perf_counter() - tick) * 1000)
    return timings


def concurrent_rate(base: str, request, queries: list[str], clients: int, seconds: float) -> dict[str, float]:
    """`clients` clients, each sending its next query as soon as its previous answer arrives, for `seconds`."""

    async def run() -> dict[str, float]:
        counter = itertools.count()
        done, failed = [0], [0]
        latencies: list[float] = []
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
            deadline = time.perf_counter() + seconds

            async def one_client() -> None:
                while time.perf_counter() < deadline:
                    tick = time.perf_counter()
                    response = await request(client, queries[next(counter) % len(queries)])
                    latencies.append((time.perf_counter() - tick) * 1000)
                    (done if response.status_code == 200 else failed)[0] += 1

            started = time.perf_counter()
            await asyncio.gather(*(one_client() for _ in range(clients)))
            elapsed = time.perf_counter() - started
        return {
            "requests": done[0],
            "failed": failed[0],
            "seconds": elapsed,
            "per_second": done[0] / elapsed,
            "p50_ms": statistics.median(latencies),
        }

    return asyncio.run(run())


def citeqa_search(top_k: int):
    def send(client, query: str):
        return client.post("/v1/search", json={"query": query, "top_k": top_k})

    return send


def floor_search(top_k: int):
    def send(client, query: str):
        return client.get("/search", params={"q": query, "k": top_k})

    return send


class ServerFigures(TypedDict):
    """What measure_server finds of one server; the caller pops the raw latencies and adds the ingestion rate."""

    sequential: NotRequired[list[float]]  # ms per query, one client
    startup_s: float
    rss_ready_mib: float
    rss_peak_mib: float
    p50_ms: float
    p95_ms: float
    concurrent: dict[str, float]
    passages_per_s: NotRequired[float]


def measure_server(
    server: Server, top_k: int, floor: bool, queries: list[str], warm_up: list[str], spare: list[str], args
) -> ServerFigures:
    send = floor_search(top_k) if floor else citeqa_search(top_k)
    with httpx.Client(base_url=server.base, timeout=60) as client:
        sequential = sequential_ms(client, send, queries, warm_up)
    rate = concurrent_rate(server.base, send, spare, args.clients, args.seconds)
    return {
        "sequential": sequential,
        "startup_s": server.startup_seconds,
        "rss_ready_mib": server.ready_memory["VmRSS"],
        "rss_peak_mib": server.memory()["VmHWM"],
        "p50_ms": statistics.median(sequential),
        "p95_ms": percentile(sequential, 0.95),
        "concurrent": rate,
    }


def print_floor_table(citeqa: ServerFigures, floor: dict[str, Any], clients: int, seconds: float) -> None:
    rows = [
        ("ingestion, passages/s", citeqa["passages_per_s"], floor["passages_per_s"], "{:.1f}"),
        ("search p50, ms (POST /v1/search vs GET /search)", citeqa["p50_ms"], floor["p50_ms"], "{:.1f}"),
        ("search p95, ms", citeqa["p95_ms"], floor["p95_ms"], "{:.1f}"),
        (
            f"requests/s, {clients} concurrent clients, {seconds:.0f} s",
            citeqa["concurrent"]["per_second"],
            floor["concurrent"]["per_second"],
            "{:.1f}",
        ),
        ("start-up to ready, s", citeqa["startup_s"], floor["startup_s"], "{:.2f}"),
        ("server RSS at ready, MiB", citeqa["rss_ready_mib"], floor["rss_ready_mib"], "{:.0f}"),
        ("server peak RSS after the load, MiB", citeqa["rss_peak_mib"], floor["rss_peak_mib"], "{:.0f}"),
    ]
    print("\n| what | citeqa | floor | citeqa / floor |")
    print("|---|---:|---:|---:|")
    for name, mine, theirs, shape in rows:
        print(f"| {name} | {shape.format(mine)} | {shape.format(theirs)} | {mine / theirs:.2f} |")


def print_workers_table(by_workers: dict[int, ServerFigures], floor: dict[str, Any] | None, clients: int, cpu: str) -> None:
    print(f"\n`citeqa serve --workers N`, {clients} concurrent clients; {cpu}")
    print("| workers | requests/s | / floor | failed | p50 ms under the load | p50 ms, one client | RSS at ready, MiB |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for count, figures in by_workers.items():
        rate = figures["concurrent"]["per_second"]
        against = f"{rate / floor['concurrent']['per_second']:.2f}" if floor else "-"
        print(
            f"| {count} | {rate:.1f} | {against} | {figures['concurrent']['failed']:.0f} "
            f"| {figures['concurrent']['p50_ms']:.1f} | {figures['p50_ms']:.1f} "
            f"| {figures['rss_ready_mib']:.0f} |"
        )


def print_reader_table(
    without: ServerFigures, by_depth: dict[str, ServerFigures], floor: dict[str, Any] | None, workers: int, cpu: str
) -> None:
    print(f"\nthe trained reader on (CITEQA_READER_DEPTH, CITEQA_READER_SENTENCES), {workers} workers; {cpu}")
    print("| reader depth | p50 ms | p50 / floor | p95 ms | requests/s | requests/s / floor |")
    print("|---:|---:|---:|---:|---:|---:|")
    for depth, figures in {"0": without, **by_depth}.items():
        rate = figures["concurrent"]["per_second"]
        p50_against = f"{figures['p50_ms'] / floor['p50_ms']:.2f}" if floor else "-"
        rate_against = f"{rate / floor['concurrent']['per_second']:.2f}" if floor else "-"
        print(f"| {depth} | {figures['p50_ms']:.1f} | {p50_against} | {figures['p95_ms']:.1f} | {rate:.1f} | {rate_against} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=300, help="how many of the dataset's queries to time")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--floor-port", type=int, default=8767)
    parser.add_argument("--no-floor", action="store_true", help="skip the floor server")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients for the requests/s figure")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long the concurrent clients run")
    parser.add_argument("--workers", default="1,2", help="comma-separated counts of `citeqa serve --workers` to measure, in turn")
    parser.add_argument("--reader-depths", default="", help="comma-separated CITEQA_READER_DEPTH values to serve too")
    parser.add_argument("--reader-sentences", default="", help="CITEQA_READER_SENTENCES values (default: the setting)")
    parser.add_argument("--output", type=Path, help="write every figure here as JSON")
    args = parser.parse_args()
    worker_counts = [int(count) for count in args.workers.split(",")]
    reader_depths = [int(depth) for depth in args.reader_depths.split(",") if depth.strip()]

    settings = Settings()
    reader_sentences = [int(count) for count in args.reader_sentences.split(",") if count.strip()] or [settings.reader_sentences]
    dataset = load_beir(args.dataset)
    documents = dataset.documents()
    every_query = list(dataset.queries.values())
    queries = every_query[: args.queries]
    warm_up = every_query[args.queries : args.queries + 10]  # never timed, so the query cache gives nothing away
    spare = every_query[args.queries + 10 :] or queries  # for the concurrent clients
    embedder = settings.engine_settings().embedder().load()
    encoder_id = embedder.encoder_id
    print(f"encoder: {encoder_id}")
    with tempfile.TemporaryDirectory(prefix="citeqa-bench-") as folder:
        index_dir = Path(folder) / "index"
        started = time.perf_counter()
        engine = Engine.create(index_dir, settings.engine_settings(), embedder)
        engine.sync(documents, None, progress=TerminalProgress())
        build_seconds = time.perf_counter() - started
        stats = engine.stats()
        print(
            f"\n{dataset.name}: {len(documents)} documents -> {stats.chunks} chunks + {stats.units} sentences "
            f"in {build_seconds:.1f}s"
        )
        texts_per_second = (stats.chunks + stats.units) / build_seconds
        print(f"ingestion: {stats.chunks / build_seconds:.1f} chunks/s ({texts_per_second:.1f} texts embedded/s)")

        for query in warm_up:
            engine.search(query, args.top_k)
        in_process = []
        for query in queries:
            tick = time.perf_counter()
            engine.search(query, args.top_k)
            in_process.append((time.perf_counter() - tick) * 1000)

        engine.close()
        del engine, embedder  # the server runs in its own process; this one's model would only compete for memory
        env = os.environ | {"CITEQA_INDEX_DIR": str(index_dir)}
        by_workers: dict[int, ServerFigures] = {}
        for workers in worker_counts:
            command = [sys.executable, "-m", "citeqa", "serve", "--port", str(args.port), "--workers", str(workers)]
            server = Server(command, args.port, env)
            try:
                by_workers[workers] = measure_server(server, args.top_k, False, queries, warm_up, spare, args)
            finally:
                server.stop()
            by_workers[workers]["passages_per_s"] = len(documents) / build_seconds
        mine = by_workers[worker_counts[-1]]
        over_http = mine["sequential"]
        by_reader_depth: dict[str, ServerFigures] = {}
        for depth, sentences in itertools.product(reader_depths, reader_sentences):
            label = f"{depth}, {sentences or 'all'} sentences"
            command = [sys.executable, "-m", "citeqa", "serve", "--port", str(args.port), "--workers", str(worker_counts[-1])]
            reading = {"CITEQA_READER_DEPTH": str(depth), "CITEQA_READER_SENTENCES": str(sentences)}
            server = Server(command, args.port, env | reading)
            try:
                by_reader_depth[label] = measure_server(server, args.top_k, False, queries, warm_up, spare, args)
            finally:
                server.stop()
            by_reader_depth[label].pop("sequential")
        floor = None
        if not args.no_floor:
            floor_dir = Path(folder) / "floor"
            command = [sys.executable, "-m", "citeqa.eval.floor"]
            subprocess.run([*command, "ingest", "--dataset", str(args.dataset), "--out", str(floor_dir)], check=True)
            floor = json.loads((floor_dir / "ingest.json").read_text())
            server = Server([*command, "serve", "--index", str(floor_dir), "--port", str(args.floor_port)], args.floor_port)
            try:
                floor |= measure_server(server, args.top_k, True, queries, warm_up, spare, args)
            finally:
                server.stop()
            floor.pop("sequential")

    print(f"\nsearch latency over {len(queries)} queries, top_k={args.top_k} (ms)")
    print("| path | p50 | p95 | mean |")
    print("|---|---:|---:|---:|")
    for name, values in (("in-process", in_process), ("HTTP /v1/search", over_http)):
        print(f"| {name} | {statistics.median(values):.1f} | {percentile(values, 0.95):.1f} | {statistics.mean(values):.1f} |")
    print(f"HTTP / in-process median ratio: {statistics.median(over_http) / statistics.median(in_process):.2f}")
    cpu = cpu_name()
    for served in by_workers.values():
        served.pop("sequential")
    print_workers_table(by_workers, floor, args.clients, cpu)
    if floor is not None:
        print(f"\nciteqa ({worker_counts[-1]} workers) against the floor (sentence-transformers + FAISS IndexFlatIP, dense,")
        print(f"whole passages); {cpu}")
        print_floor_table(mine, floor, args.clients, args.seconds)
    if by_reader_depth:
        print_reader_table(mine, by_reader_depth, floor, worker_counts[-1], cpu)
    if args.output:
        figures = {"dataset": dataset.name, "cpu": cpu, "encoder": encoder_id, "citeqa": mine, "floor": floor}
        figures["by_reader_depth"] = by_reader_depth
        figures["by_workers"] = {str(count): values for count, values in by_workers.items()}
        figures["in_process"] = {"p50_ms": statistics.median(in_process), "p95_ms": percentile(in_process, 0.95)}
        args.output.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
