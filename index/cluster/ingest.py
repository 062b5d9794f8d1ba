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
import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from citeqa.index.cluster.connect import ClusterError, check_reachable, connect
from citeqa.index.engine import Engine
from citeqa.index.models.encoder_bundle import EncoderBundle, EncoderBundleError, bundle_encoder
from citeqa.index.parsing.dispatch import ParseLimits
from citeqa.index.progress import NO_PROGRESS, Progress, Stage
from citeqa.index.storage.collection import WriteResult
from citeqa.index.storage.incoming import IncomingArea
from citeqa.index.text.documents import DocumentError, SkippedFile, document_id_for
from citeqa.index.writing.builder import BuildSummary, IndexSettings, summarize
from citeqa.index.writing.ingest import (
    DEFAULT_LIMITS,
    FileOutcome,
    IncomingFile,
    IngestReport,
    Status,
    list_folder,
    read_file,
)

# Documents per segment a write task gathers at least: a few large segments, as a folder build in one process
# writes one (a segment of 50,000 chunks or more gets its HNSW graph; merges then have little to do).
SEGMENT_DOCUMENTS = 5_000
FILES_PER_BLOCK = 16  # rows per block read in: small enough that a lost worker's retry redoes little
DOCUMENTS_PER_BATCH = 32  # documents per encoder call of an actor (the encoder sorts their texts by length)
STOP_POLL_SECONDS = 0.5  # how often a server waiting for its driver process asks its progress whether to stop
DRIVER_EXIT_SECONDS = 10.0  # how long a driver process that sent its result may take to leave the cluster


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
    result = run_on_cluster(engine, items, job, engine.collection.hashes(ids), progress, isolated=True)
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
        # Merged in the background afterwards, as the server's other writes are: an error of the merge must not
        # make a committed job look as if it committed nothing.
        written = engine.writer.attach(area.received, result.unchanged, None, progress, background_merge=True)
    statuses, media_types = _statuses(written), result.media_types
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
                incoming.filename, incoming.doc_id, incoming.size, status, None, media_types.get(position)
            )
    return IngestReport([outcomes[position] for position in sorted(outcomes)])


def run_on_cluster(
    engine: Engine,
    items: list[dict[str, Any]],
    job: ClusterJob,
    committed: dict[str, str],
    progress: Progress = NO_PROGRESS,
    isolated: bool = False,
) -> ClusterResult:
    """Parse, split, embed and write `items` on the cluster; nothing touches the collection. A document whose text
    hash is `committed[doc_id]` is reported unchanged and never embedded. ClusterError unless every file came back
    exactly once.

    `isolated`: the Ray driver runs in a child process (what a server does), so that Ray's rules for its drivers
    never reach the server: Ray ends a driver whose head has been unreachable for a minute, and a driver cannot
    take back a pipeline it started. `progress` is asked every STOP_POLL_SECONDS whether to stop (it raises
    WriteStopped); the child is then killed, and with it, by Ray's own rule, its actors and tasks."""
    progress.begin(Stage.EMBEDDING, len(items))
    if not items:  # nothing to send: the cluster is not even asked
        return ClusterResult([])
    try:
        bundle = bundle_encoder(engine.embedder)
    except EncoderBundleError as exc:
        raise ClusterError(str(exc)) from exc
    work = ClusterWork(job, bundle, items, committed, engine.settings.index, engine.embedder.dimension)
    result = ClusterResult(_drive_in_child(work, progress) if isolated else _drive(work))
    _check_exactly_once(result, items)
    progress.advance(Stage.EMBEDDING, len(items))  # a last chance to stop, before the commit
    progress.end(Stage.EMBEDDING)
    return result


@dataclass(frozen=True)
class ClusterWork:
    """Everything a driver needs to run a job's pipeline, picklable (it crosses into the child process)."""

    job: ClusterJob
    bundle: EncoderBundle
    items: list[dict[str, Any]]
    committed: dict[str, str]
    settings: IndexSettings
    dimension: int


def _drive(work: ClusterWork) -> list[dict[str, Any]]:
    """Join the cluster and run the pipeline in this process; what every write task returned."""
    ray = connect(work.job.address)
    from ray.exceptions import RayError

    from citeqa.index.cluster.sink import SegmentSink  # imports ray.data: only once a cluster is there
    from citeqa.index.cluster.stages import EmbedActor, parse_and_split

    cpus = int(ray.cluster_resources().get("CPU", 0))
    if cpus < 1:
        raise ClusterError(f"the Ray cluster at {work.job.address} has no CPUs for workers")
    workers = work.job.workers or cpus
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the file list's order, whatever finishes first
    context.enable_progress_bars = False
    sink = SegmentSink(work.dimension, work.job.segment_documents)
    try:
        bundle = ray.put(work.bundle)
        dataset = ray.data.from_items(work.items, override_num_blocks=max(1, math.ceil(len(work.items) / FILES_PER_BLOCK)))
        dataset = dataset.map_batches(
            parse_and_split,
            batch_format="pandas",
            fn_kwargs={"limits": work.job.limits, "settings": work.settings, "committed": work.committed},
        )
        dataset = dataset.map_batches(
            EmbedActor,
            batch_format="pandas",
            batch_size=DOCUMENTS_PER_BATCH,
            fn_constructor_kwargs={"bundle": [bundle], "settings": work.settings, "threads": 1},
            # Started at full size: an autoscaling pool that starts at one actor was measured never to grow on a
            # job of a few hundred files. It may shrink to one when a node is lost (Ray restarts that actor elsewhere).
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=workers, initial_size=workers),
            num_cpus=1,
        )
        dataset.write_datasink(sink)
    except RayError as exc:  # a task that failed past its retries, an object lost with every copy
        raise ClusterError(f"the Ray cluster at {work.job.address} could not run the job: {exc}") from exc
    return sink.returns


def _drive_in_child(work: ClusterWork, progress: Progress) -> list[dict[str, Any]]:
    """`_drive` in a child process (see run_on_cluster), asking `progress` now and then whether to stop."""
    check_reachable(work.job.address)  # before a process is started for nothing
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no copy of the server's threads or locks
    receiver, sender = context.Pipe(duplex=False)
    driver = context.Process(target=_drive_and_send, args=(work, sender), name="citeqa-ray-driver")
    driver.start()
    sender.close()
    try:
        while not receiver.poll(STOP_POLL_SECONDS):
            if not driver.is_alive():
                break
            progress.advance(Stage.EMBEDDING, 0)  # raises WriteStopped when the server is asked to stop
        try:
            kind, value = receiver.recv()
        except EOFError:
            progress.advance(Stage.EMBEDDING, 0)  # a stop signal sent to the whole process group ends the child too
            raise ClusterError(f"the Ray driver process ended without a result (exit code {driver.exitcode})") from None
    finally:
        driver.join(DRIVER_EXIT_SECONDS)
        if driver.is_alive():
            driver.kill()
            driver.join()
        receiver.close()
    if kind == "error":
        raise ClusterError(value)
    return value


def _drive_and_send(work: ClusterWork, sender: Connection) -> None:
    """The child's whole life: run the pipeline and send back ("ok", returns) or ("error", reason)."""
    try:
        outcome: tuple[str, Any] = ("ok", _drive(work))
    except ClusterError as exc:
        outcome = ("error", str(exc))
    except Exception as exc:  # anything else fails the job with its name, never the server
        outcome = ("error", f"the Ray driver failed: {type(exc).__name__}: {exc}")
    sender.send(outcome)
    sender.close()


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


def _statuses(written: WriteResult) -> dict[str, Status]:
    statuses: dict[str, Status] = dict.fromkeys(written.unchanged, "unchanged")
    statuses.update(dict.fromkeys(written.added, "added"))
    statuses.update(dict.fromkeys(written.updated, "updated"))
    return statuses
