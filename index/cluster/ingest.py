"""`citeqa index DIR --ray ADDRESS`: a folder built on a Ray cluster and committed here, in one commit.

The driver (this process) lists the folder in a stable order and reads the files; workers parse and split them
(a map step, which Ray Data fuses into the encoder actors' processes), embed them (an actor pool, each actor
running the driver's own ONNX file) and write whole segments (the sink). The segments come back as bytes into the
collection's incoming area, are checked there against the manifest, and the driver attaches them all in one commit
(`Writer.attach`). Until that commit nothing is visible; a job that fails at any point leaves the collection as it
was and its incoming area removed.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from citeqa.index.cluster.connect import ClusterError, connect
from citeqa.index.engine import Engine
from citeqa.index.models.encoder_bundle import EncoderBundleError, bundle_encoder
from citeqa.index.parsing.dispatch import ParseLimits
from citeqa.index.storage.incoming import IncomingArea
from citeqa.index.text.documents import DocumentError, SkippedFile, document_id_for
from citeqa.index.writing.builder import BuildSummary, summarize
from citeqa.index.writing.ingest import DEFAULT_LIMITS, list_folder, read_file

# Documents per segment a write task gathers at least: a few large segments, as a folder build in one process
# writes one (a segment of 50,000 chunks or more gets its HNSW graph; merges then have little to do).
SEGMENT_DOCUMENTS = 5_000
FILES_PER_BLOCK = 16  # rows per block read in: small enough that a lost worker's retry redoes little
DOCUMENTS_PER_BATCH = 32  # documents per encoder call of an actor (the encoder sorts their texts by length)


def build_on_cluster(
    engine: Engine,
    corpus: Path,
    address: str,
    limits: ParseLimits = DEFAULT_LIMITS,
    workers: int | None = None,
    segment_documents: int = SEGMENT_DOCUMENTS,
) -> BuildSummary:
    """Sync the collection of `engine` with the folder `corpus` through the cluster at `address` (see the module's
    doc). `workers`: most encoder actors (default: the cluster's CPUs). Raises ClusterError when the cluster cannot
    run the job or returns something other than each file exactly once; then nothing was committed."""
    started = time.perf_counter()
    ray = connect(address)
    from citeqa.index.cluster.sink import SegmentSink  # imports ray.data: only once a cluster is there
    from citeqa.index.cluster.stages import EmbedActor, parse_and_split

    items, skipped, origin = _read_folder(corpus)
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if cpus < 1:
        raise ClusterError(f"the Ray cluster at {address} has no CPUs for workers")
    workers = workers or cpus
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the file list's order, whatever finishes first
    context.enable_progress_bars = False
    try:
        bundle = ray.put(bundle_encoder(engine.embedder))
    except EncoderBundleError as exc:
        raise ClusterError(str(exc)) from exc
    sink = SegmentSink(engine.embedder.dimension, segment_documents)
    if items:
        dataset = ray.data.from_items(items, override_num_blocks=max(1, math.ceil(len(items) / FILES_PER_BLOCK)))
        dataset = dataset.map_batches(
            parse_and_split,
            batch_format="pandas",
            fn_kwargs={"limits": limits, "settings": engine.settings.index, "committed": engine.collection.hashes()},
        )
        dataset = dataset.map_batches(
            EmbedActor,
            batch_format="pandas",
            batch_size=DOCUMENTS_PER_BATCH,
            fn_constructor_kwargs={"bundle": [bundle], "settings": engine.settings.index, "threads": 1},
            # Started at full size: an autoscaling pool that starts at one actor was measured never to grow on a
            # job of a few hundred files. It may shrink to one when a node is lost (Ray restarts that actor elsewhere).
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=workers, initial_size=workers),
            num_cpus=1,
        )
        dataset.write_datasink(sink)
    returns = sink.returns
    _check_exactly_once(returns, items)
    return _commit(engine, origin, items, returns, skipped, started)


def _read_folder(corpus: Path) -> tuple[list[dict[str, Any]], list[SkippedFile], str | None]:
    """One row per file to send out: its place in the sorted list, path, id, name, source and bytes (the bytes
    travel with the rows, so workers need no access to this machine's files); the files that could not be read;
    the folder's source prefix."""
    base, paths, origin = list_folder(corpus)
    items: list[dict[str, Any]] = []
    skipped: list[SkippedFile] = []
    seen: set[str] = set()
    for position, path in enumerate(paths):
        doc_id = document_id_for(path, base)
        if doc_id in seen:
            skipped.append(SkippedFile(str(path), f"duplicate document id '{doc_id}'"))
            continue
        seen.add(doc_id)
        try:
            raw = read_file(path)
        except DocumentError as exc:
            skipped.append(SkippedFile(str(path), str(exc)))
            continue
        source = f"{base.name}/{doc_id}"
        items.append(
            {"position": position, "path": str(path), "doc_id": doc_id, "filename": path.name, "source": source, "raw": raw}
        )
    return items, skipped, origin


def _check_exactly_once(returns: list[dict[str, Any]], items: list[dict[str, Any]]) -> None:
    positions = [p for r in returns for p in r["positions"]]
    if sorted(positions) != sorted(item["position"] for item in items):
        raise ClusterError(
            f"the cluster returned {len(positions)} file results for {len(items)} files "
            f"({len(set(positions))} distinct); nothing was committed"
        )


def _commit(
    engine: Engine,
    origin: str | None,
    items: list[dict[str, Any]],
    returns: list[dict[str, Any]],
    skipped: list[SkippedFile],
    started: float,
) -> BuildSummary:
    """Receive every segment into the incoming area (checked against the manifest), store the originals of the
    files that parsed, and attach everything in one commit."""
    by_position = {item["position"]: item for item in items}
    failed = {position: reason for r in returns for position, reason in r["failed"]}
    unchanged = {doc_id: sha for r in returns for doc_id, sha in r["unchanged"].items()}
    collection = engine.collection
    with IncomingArea(collection.folder, collection.manifest.config, collection.durable) as area:
        for returned in returns:
            if returned["segment"] is not None:
                area.receive(returned["segment"])
        for position, item in by_position.items():
            if position not in failed:  # stored before the commit that names it, as a folder build does
                engine.originals.put_bytes(item["raw"])
        result = engine.writer.attach(area.received, unchanged, origin)
    parsed = len(items) - len(failed)
    summary = summarize(result, parsed, engine.stats().chunks, time.perf_counter() - started)
    summary.skipped = skipped + [SkippedFile(by_position[p]["path"], reason) for p, reason in sorted(failed.items())]
    return summary
