"""Upload jobs: large uploads (or `wait=false`) are parsed, split, embedded and committed by one background worker
per server, while searches go on answering from the last committed state.

A job commits once, at its end, so a reader sees all of its documents or none. Jobs live in memory: the board
keeps the queued and running ones and the last CITEQA_JOBS_KEPT finished ones. When the server stops, the
running job is stopped between two embedding slices and the queued ones are dropped; none of them commits
anything, none is resumed at the next start (the uploads are not kept), and their temporary files are removed
(a sweep of the collection's files removes any a killed server left behind). Upload such files again.
"""

from __future__ import annotations

import logging
import queue
import shutil
import sqlite3
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, Request

from citeqa.index.progress import WORK_STAGES, Progress, Stage, StopWhenAsked, WriteStopped
from citeqa.index.storage.manifest import IndexMissingError
from citeqa.index.storage.write_lock import WriterBusyError
from citeqa.index.writing.ingest import IncomingFile, IngestReport
from citeqa.service.errors import ApiError
from citeqa.service.schemas.documents import JobCounts, JobFile, JobInfo

log = logging.getLogger("citeqa.jobs")

JobState = Literal["queued", "running", "done", "failed"]
# How much of a job's time each stage takes, roughly (embedding dominates): the progress fraction's weights.
STAGE_WEIGHTS = {Stage.PARSING: 0.10, Stage.SPLITTING: 0.05, Stage.EMBEDDING: 0.80, Stage.COMMITTING: 0.05}
STOPPED = "the server stopped before the job committed; nothing of it was committed. Upload the files again."
# The name of the route that shows one job (routers/jobs.py): the 202 of an upload links to it by name.
JOB_ROUTE = "get_job"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class _File:
    filename: str
    doc_id: str | None
    size: int
    stage: Stage = Stage.QUEUED
    status: str | None = None
    reason: str | None = None


@dataclass
class Job:
    """One upload's state. Written by the worker, read by requests: every access holds `lock`."""

    collection: str
    files: list[_File]
    run: Callable[[Progress], IngestReport]  # the work itself: parse, split, embed, commit
    folder: Path | None = None  # the upload's temporary files, removed when the job ends
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    state: JobState = "queued"
    created: str = field(default_factory=now)
    started: str | None = None
    finished: str | None = None
    error: str | None = None
    totals: dict[Stage, int] = field(default_factory=dict)
    done: dict[Stage, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def for_files(
        cls, collection: str, files: list[IncomingFile], run: Callable[[Progress], IngestReport], folder: Path | None
    ) -> Job:
        entries = []
        for incoming in files:
            entry = _File(incoming.filename, incoming.doc_id, incoming.size)
            if incoming.refused:  # known before the job starts: fail it at once
                entry.stage, entry.status, entry.reason = Stage.FAILED, "failed", incoming.refused
            entries.append(entry)
        return cls(collection, entries, run, folder)

    def progress(self) -> float:
        if self.state == "done":
            return 1.0
        fraction = 0.0
        for stage, weight in STAGE_WEIGHTS.items():
            total = self.totals.get(stage)
            if total is not None:
                fraction += weight * (min(self.done.get(stage, 0), total) / total if total else 1.0)
        return round(min(fraction, 0.999), 4)

    def info(self) -> JobInfo:
        with self.lock:
            stages = [f.stage for f in self.files]
            counts = JobCounts(files=len(self.files), **{s.value: stages.count(s) for s in Stage})
            return JobInfo(
                id=self.id,
                collection=self.collection,
                state=self.state,
                progress=self.progress(),
                created=self.created,
                started=self.started,
                finished=self.finished,
                error=self.error,
                counts=counts,
                files=[JobFile(filename=f.filename, id=f.doc_id, bytes=f.size, stage=f.stage.value, status=f.status,
                               reason=f.reason) for f in self.files],
            )  # fmt: skip


class JobProgress(StopWhenAsked):
    """Moves a job's files through the stages as the ingestion reports them; stops the job when asked to."""

    def __init__(self, job: Job, stopping: threading.Event) -> None:
        super().__init__(stopping)
        self.job = job
        # A file is followed by its id; refused files have none and were failed when the job was made.
        self.by_id: dict[str, _File] = {}
        for entry in job.files:
            if entry.doc_id is not None and entry.stage is not Stage.FAILED:
                self.by_id.setdefault(entry.doc_id, entry)

    def begin(self, stage: Stage, total: int) -> None:
        with self.job.lock:
            self.job.totals[stage], self.job.done[stage] = total, 0

    def advance(self, stage: Stage, amount: int = 1) -> None:
        with self.job.lock:
            self.job.done[stage] = self.job.done.get(stage, 0) + amount
        super().advance(stage, amount)

    def files(self, doc_ids: Iterable[str], stage: Stage, reason: str | None = None) -> None:
        with self.job.lock:
            for doc_id in doc_ids:
                entry = self.by_id.get(doc_id)
                if entry is not None and entry.stage is not Stage.FAILED:
                    entry.stage, entry.reason = stage, reason
                    if stage is Stage.FAILED:
                        entry.status = "failed"


class JobsBusyError(RuntimeError):
    pass


@dataclass(frozen=True)
class BoardSummary:
    """What /metrics shows of the board: jobs by state now, files of unfinished jobs by stage, jobs ended so far."""

    jobs: dict[JobState, int]
    files_in_flight: dict[Stage, int]
    ended: dict[JobState, int]


class JobBoard:
    """The jobs of one server and the one worker thread that runs them, oldest first."""

    def __init__(self, kept: int = 100, max_queued: int = 20, stopping: threading.Event | None = None) -> None:
        """`stopping` may be shared with the server, which sets it the moment it is asked to stop (service/app.py)."""
        self.kept = kept
        self.max_queued = max_queued
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._stopping = stopping or threading.Event()
        self._worker: threading.Thread | None = None
        self._ended: dict[JobState, int] = {"done": 0, "failed": 0}  # never trimmed, unlike the finished jobs

    def start(self) -> None:
        self._worker = threading.Thread(target=self._work, name="citeqa-jobs", daemon=True)
        self._worker.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the running job before its commit and drop the queued ones (see the module notes)."""
        self._stopping.set()
        self._queue.put(None)
        if self._worker is not None:
            self._worker.join(timeout)
        while True:  # whatever the worker did not reach
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                self._finish(job, error=STOPPED)

    def submit(self, job: Job) -> Job:
        with self._lock:
            waiting = sum(j.state == "queued" for j in self._jobs.values())
            if self._stopping.is_set() or waiting >= self.max_queued:
                raise JobsBusyError(
                    f"{waiting} upload jobs are waiting already (CITEQA_MAX_QUEUED_JOBS); try again when they are done"
                )
            self._jobs[job.id] = job
            self._trim()
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(reversed(self._jobs.values()))

    def summary(self) -> BoardSummary:
        jobs: dict[JobState, int] = {"queued": 0, "running": 0, "done": 0, "failed": 0}
        in_flight = {stage: 0 for stage in (Stage.QUEUED, *WORK_STAGES)}
        for job in self.jobs():
            with job.lock:
                jobs[job.state] += 1
                if job.state in ("queued", "running"):
                    for entry in job.files:
                        if entry.stage in in_flight:
                            in_flight[entry.stage] += 1
        with self._lock:
            ended = dict(self._ended)
        return BoardSummary(jobs, in_flight, ended)

    def _trim(self) -> None:
        """Forget the oldest finished jobs beyond `kept` (queued and running ones are never forgotten)."""
        finished = [j.id for j in self._jobs.values() if j.state in ("done", "failed")]
        for job_id in finished[: max(0, len(finished) - self.kept)]:
            del self._jobs[job_id]

    def _work(self) -> None:
        while not self._stopping.is_set():
            job = self._queue.get()
            if job is None:
                break
            if self._stopping.is_set():
                self._finish(job, error=STOPPED)
                break
            self._run(job)

    def _run(self, job: Job) -> None:
        with job.lock:
            job.state, job.started = "running", now()
        try:
            report = job.run(JobProgress(job, self._stopping))
        except WriteStopped:
            self._finish(job, error=STOPPED)
        except (WriterBusyError, IndexMissingError, OSError, sqlite3.Error) as exc:  # busy writer, dropped collection, full disk
            log.warning("upload job %s failed: %s", job.id, exc)
            self._finish(job, error=f"nothing was committed: {exc}")
        except Exception as exc:  # anything else is a bug, but it fails this job only: the worker goes on
            log.exception("upload job %s failed", job.id)
            self._finish(job, error=f"nothing was committed: internal error ({type(exc).__name__}); see the server log")
        else:
            self._finish(job, report=report)

    def _finish(self, job: Job, report: IngestReport | None = None, error: str | None = None) -> None:
        with job.lock:
            job.finished = now()
            if report is not None:
                job.state = "done"
                for entry, outcome in zip(job.files, _aligned(job.files, report), strict=True):
                    if outcome is None:
                        continue
                    entry.status, entry.reason = outcome.status, outcome.reason
                    entry.stage = Stage.FAILED if outcome.status == "failed" else Stage.COMMITTED
            else:
                job.state, job.error = "failed", error
                for entry in job.files:
                    if entry.stage is not Stage.FAILED:
                        entry.stage, entry.status, entry.reason = Stage.FAILED, "failed", error
        if job.folder is not None:
            shutil.rmtree(job.folder, ignore_errors=True)
        with self._lock:
            self._ended[job.state] += 1
            self._trim()


def _aligned(files: list[_File], report: IngestReport) -> list:
    """The report's outcomes in the job's file order (ingest_files returns one per file, in order)."""
    outcomes = list(report.outcomes)
    return outcomes + [None] * (len(files) - len(outcomes))


async def get_jobs(request: Request) -> JobBoard:  # a coroutine, so FastAPI does not hop to a thread for it
    board = getattr(request.app.state, "jobs", None)
    if board is None:
        raise ApiError(503, "the server is starting; upload jobs are not available yet")
    return board


JobsDep = Annotated[JobBoard, Depends(get_jobs)]
