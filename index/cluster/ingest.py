"""Ingestion on a Ray cluster, committed here in one commit: `citeqa index DIR --ray ADDRESS` (a folder, mirrored as
`citeqa index` mirrors it) and upload jobs of a server with a Ray address (a list of files, added or updated).

The driver (this process) reads the files, in a stable order; workers parse and split them (a map step, which Ray
Data fuses into the encoder actors' processes), embed them (an actor pool, each actor running the driver's own ONNX
file) and write whole segments (the sink). The segments come back as bytes into the collection's incoming area,
are checked there against the manifest, and the driver attaches them all in one commit (`Writer.attach`). Until
that commit nothing is visible; a job that fails at any point leaves the collection as it was and its incoming
area removed. A driver that dies leaves the same: the durability of a job is its record in the job store
(service/jobs.py), which puts it back in the queue, not Ray's.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from citeqa.index.cluster.connect import ClusterError, connect
from citeqa.index.engine import Engine
from citeqa.index.models.encoder_bundle import EncoderBundleError, bundle_encoder
from citeqa.index.parsing.dispatch import ParseLimits
from citeqa.index.progress import NO_PROGRESS, Progress, Stage
from citeqa.index.storage.collection import WriteResult
from citeqa.index.storage.incoming import IncomingArea
from citeqa.index.text.documents import DocumentError, SkippedFile, document_id_for
from citeqa.index.writing.builder import BuildSummary, summarize
from citeqa.index.writing.ingest import DEFAULT_LIMITS, FileOutcome, IncomingFile, IngestReport, list_folder, read_file

# Documents per segment a write task gathers at least: a few large segments, as a folder build in one process
# writes one (a segment of 50,000 chunks or more gets its HNSW graph; merges then have little to do).
SEGMENT_DOCUMENTS = 5_000
FILES_PER_BLOCK = 16  # rows per block read in: small enough that a lost worker's retry redoes little
DOCUMENTS_PER_BATCH = 32  # documents per encoder call of an actor (the encoder sorts their texts by length)
STOP_POLL_SECONDS = 0.5  # how often a driver waiting for the cluster asks its progress whether to stop


@dataclass(frozen=True)
class ClusterJob:
    """How a job runs on the cluster: its address, parse limits, most encoder actors (None: one per cluster CPU)
    and documents per segment."""

    address: str
    limits: ParseLimits = DEFAULT_LIMITS
    workers: int | None = None
    segment_documents: int = SEGMENT_DOCUMENTS


@dataclass
class ClusterResult:
    """What the cluster returned for a job's files, gathered from every write task (one entry per file)."""

    returns: list[dict[str, Any]]

    @property
    def failed(self) -> dict[int, tuple[str, bool]]:
        """position -> (why it failed, whether it is a kind of file citeqa does not read)."""
        return {position: (reason, unsupported) for r in self.returns for position, reason, unsupported in r["failed"]}

    @property
    def unchanged(self) -> dict[str, str]:
        return {doc_id: sha for r in self.returns for doc_id, sha in r["unchanged"].items()}

    @property
    def media_types(self) -> dict[int, str]:
        return {position: media for r in self.returns for position, media in r["media_types"].items()}

    @property
    def segments(self) -> list[Any]:
        return [r["segment"] for r in self.returns if r["segment"] is not None]


def build_on_cluster(engine: Engine, corpus: Path, job: ClusterJob) -> BuildSummary:
    """Sync the collection of `engine` with the folder `corpus` through the cluster (see the module's doc). Raises
    ClusterError when the cluster cannot run the job or returns something other than each file exactly once; then
    nothing was committed."""
    started = time.perf_counter()
    items, skipped, origin = _read_folder(corpus)
    result = run_on_cluster(engine, items, job, committed=engine.collection.hashes())
    failed = result.failed
    with IncomingArea(engine.collection.folder, engine.collection.manifest.config, engine.collection.durable) as area:
        for segment in result.segments:
            area.receive(segment)
        for item in items:
            if item["position"] not in failed:  # stored before the commit that names it, as a folder build does
                engine.originals.put_bytes(item["raw"])
        written = engine.writer.attach(area.received, result.unchanged, origin)
    summary = summarize(written, len(items) - len(failed), engine.stats().chunks, time.perf_counter() - started)
    path_of = {item["position"]: item["path"] for item in items}
    summary.skipped = skipped + [SkippedFile(path_of[p], reason) for p, (reason, _) in sorted(failed.items())]
    return summary


def ingest_files_on_cluster(
    engine: Engine, files: Sequence[IncomingFile], source_prefix: str, job: ClusterJob, progress: Progress = NO_PROGRESS
) -> IngestReport:
    """`Engine.ingest_files` on the cluster: add or replace the documents of `files` in one commit, one outcome
    per file, in order; a bad file fails alone. Raises ClusterError (or what the commit raises): nothing committed."""
    outcomes: dict[int, FileOutcome] = {}
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for position, incoming in enumerate(files):
        reason = incoming.refused or (None if incoming.doc_id is not None else "no id")
        if reason is None and incoming.doc_id in seen:
            reason = f"another file in this request has the id '{incoming.doc_id}'"
        if reason is None:
            try:
                raw = read_file(incoming.path)
            except DocumentError as exc:
                reason = str(exc)
        if reason is not None:
            outcomes[position] = FileOutcome(incoming.filename, incoming.doc_id, incoming.size, "failed", reason)
            continue
        assert incoming.doc_id is not None
        seen.add(incoming.doc_id)
        items.append(
            _item(position, str(incoming.path), incoming.doc_id, incoming.filename, f"{source_prefix}{incoming.doc_id}", raw)
        )
    ids = [item["doc_id"] for item in items]
    progress.files(ids, Stage.EMBEDDING)  # parsed, split and embedded on the cluster, all at once
    result = run_on_cluster(engine, items, job, committed=engine.collection.hashes(ids), progress=progress)
    failed = result.failed
    for item in items:
        if item["position"] in failed:
            progress.files([item["doc_id"]], Stage.FAILED, failed[item["position"]][0])
    with IncomingArea(engine.collection.folder, engine.collection.manifest.config, engine.collection.durable) as area:
        for segment in result.segments:
            area.receive(segment)
        for item in items:
            if item["position"] not in failed:
                engine.originals.put_bytes(item["raw"])
        written = engine.writer.attach(area.received, result.unchanged, None, progress)
    statuses = _statuses(written)
    for item in items:
        position, incoming = item["position"], files[item["position"]]
        if position in failed:
            reason, unsupported = failed[position]
            outcomes[position] = FileOutcome(
                incoming.filename, incoming.doc_id, incoming.size, "failed", reason, unsupported=unsupported
            )
        else:
            status = statuses.get(item["doc_id"], "unchanged")
            outcomes[position] = FileOutcome(
                incoming.filename, incoming.doc_id, incoming.size, status, None, result.media_types.get(position)
            )
    return IngestReport([outcomes[position] for position in sorted(outcomes)])


def run_on_cluster(
    engine: Engine, items: list[dict[str, Any]], job: ClusterJob, committed: dict[str, str], progress: Progress = NO_PROGRESS
) -> ClusterResult:
    """Parse, split, embed and write `items` on the cluster; nothing touches the collection. A document whose text
    hash is `committed[doc_id]` is reported unchanged and never embedded. `progress` is asked now and then whether
    to stop (it raises WriteStopped). ClusterError unless every file came back exactly once."""
    ray = connect(job.address)
    from citeqa.index.cluster.sink import SegmentSink  # imports ray.data: only once a cluster is there
    from citeqa.index.cluster.stages import EmbedActor, parse_and_split

    cpus = int(ray.cluster_resources().get("CPU", 0))
    if cpus < 1:
        raise ClusterError(f"the Ray cluster at {job.address} has no CPUs for workers")
    workers = job.workers or cpus
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the file list's order, whatever finishes first
    context.enable_progress_bars = False
    try:
        bundle = ray.put(bundle_encoder(engine.embedder))
    except EncoderBundleError as exc:
        raise ClusterError(str(exc)) from exc
    sink = SegmentSink(engine.embedder.dimension, job.segment_documents)
    progress.begin(Stage.EMBEDDING, len(items))
    if items:
        dataset = ray.data.from_items(items, override_num_blocks=max(1, math.ceil(len(items) / FILES_PER_BLOCK)))
        dataset = dataset.map_batches(
            parse_and_split,
            batch_format="pandas",
            fn_kwargs={"limits": job.limits, "settings": engine.settings.index, "committed": committed},
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
        _wait_for(lambda: dataset.write_datasink(sink), progress)
    result = ClusterResult(sink.returns)
    _check_exactly_once(result, items)
    progress.advance(Stage.EMBEDDING, len(items))  # a last chance to stop, before the commit
    progress.end(Stage.EMBEDDING)
    return result


def _wait_for(run: Callable[[], object], progress: Progress) -> None:
    """Run the pipeline in a thread and ask `progress` every STOP_POLL_SECONDS whether to stop: a server asked to
    stop ends its job (WriteStopped) without waiting for the cluster; the abandoned pipeline ends with the driver."""
    error: list[BaseException] = []

    def target() -> None:
        try:
            run()
        except BaseException as exc:  # raised again in the caller's thread below
            error.append(exc)

    thread = threading.Thread(target=target, name="citeqa-cluster-job", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(STOP_POLL_SECONDS)
        progress.advance(Stage.EMBEDDING, 0)
    if error:
        raise error[0]


def _item(position: int, path: str, doc_id: str, filename: str, source: str, raw: bytes) -> dict[str, Any]:
    """One row sent out: the file's place in the job's list (any result traces back to exactly one file), its path
    (for reports), id, name, source and bytes (they travel with the row: workers need no access to this machine)."""
    return {"position": position, "path": path, "doc_id": doc_id, "filename": filename, "source": source, "raw": raw}


def _read_folder(corpus: Path) -> tuple[list[dict[str, Any]], list[SkippedFile], str | None]:
    """One row per file of the folder, in its sorted order; the files that could not be read; its source prefix."""
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
        items.append(_item(position, str(path), doc_id, path.name, f"{base.name}/{doc_id}", raw))
    return items, skipped, origin


def _check_exactly_once(result: ClusterResult, items: list[dict[str, Any]]) -> None:
    positions = [p for r in result.returns for p in r["positions"]]
    if sorted(positions) != sorted(item["position"] for item in items):
        raise ClusterError(
            f"the cluster returned {len(positions)} file results for {len(items)} files "
            f"({len(set(positions))} distinct); nothing was committed"
        )


def _statuses(written: WriteResult) -> dict[str, str]:
    statuses = dict.fromkeys(written.unchanged, "unchanged")
    statuses.update(dict.fromkeys(written.added, "added"))
    statuses.update(dict.fromkeys(written.updated, "updated"))
    return statuses
