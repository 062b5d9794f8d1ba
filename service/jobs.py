"""Upload jobs: large uploads (or `wait=false`) are parsed, split, embedded and committed in the background, one job
at a time for the whole data home, while searches go on answering from the last committed state.

Jobs are durable. A job and its files are on disk (service/job_store.py) before its 202 is sent, so any server
process answers GET /v1/jobs/{id}, across restarts. Every process of a data home runs a `JobRunner`; the one that
holds the runner lock (a flock, which the kernel releases when its holder dies, however it dies) runs jobs,
oldest first, each claimed with a lease. A runner taking the lock puts back in the queue any job left `running`
by the one before it (which died), unless that job has been tried CITEQA_JOB_ATTEMPTS times: then it fails with
its reason, so a file that kills the server cannot do so forever.

A job commits once, at its end, so a reader sees all of its documents or none. Run again after a crash, it
commits nothing twice: ingestion compares content hashes, so whatever the first run committed is `unchanged`.
A server asked to stop ends its running job before the commit and puts it back in the queue; the next start
resumes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from citeqa.index.cluster.connect import ClusterError
from citeqa.index.progress import Progress, Stage, StopWhenAsked, WriteStopped
from citeqa.index.storage.collection import DocumentChangedError
from citeqa.index.storage.manifest import IndexMissingError
from citeqa.index.storage.write_lock import WriterBusyError
from citeqa.index.writing.ingest import IncomingFile, IngestReport
from citeqa.service.errors import ApiError
from citeqa.service.job_model import Job, JobFileEntry
from citeqa.service.job_store import BoardSummary, JobsBusyError, JobStore

log = logging.getLogger("citeqa.jobs")

# The name of the route that shows one job (routers/jobs.py): the 202 of an upload links to it by name.
JOB_ROUTE = "get_job"
LEASE_SECONDS = 60.0  # a running job's claim, renewed as it makes progress and by a heartbeat
HEARTBEAT_SECONDS = 10.0
SAVE_EVERY_SECONDS = 0.25  # how often embedding progress is written to the store (stage changes always are)
IDLE_POLL_SECONDS = 0.5  # how often a runner with nothing to do looks for jobs other processes queued
LOCK_POLL_SECONDS = 1.0  # how often a process without the runner lock tries to take it

# Runs one job: the job, its folder of files, and the progress to report to; returns what was committed.
JobWork = Callable[[Job, list[IncomingFile], Progress], IngestReport]


class JobProgress(StopWhenAsked):
    """Moves a job's files through the stages as the ingestion reports them, writes them to the store now and
    then, and stops the job when the server is asked to stop."""

    def __init__(self, job: Job, store: JobStore, stopping: threading.Event) -> None:
        super().__init__(stopping)
        self.job = job
        self.store = store
        self._saved = 0.0
        # A file is followed by its id; refused files have none and failed when the job was made.
        self.by_id: dict[str, JobFileEntry] = {}
        for entry in job.files:
            if entry.doc_id is not None and entry.stage is not Stage.FAILED:
                self.by_id.setdefault(entry.doc_id, entry)

    def save(self, force: bool = False) -> None:
        if force or time.monotonic() - self._saved >= SAVE_EVERY_SECONDS:
            self._saved = time.monotonic()
            self.store.save_progress(self.job, LEASE_SECONDS)

    def begin(self, stage: Stage, total: int) -> None:
        with self.job.lock:
            self.job.totals[stage], self.job.done[stage] = total, 0
        self.save(force=True)

    def advance(self, stage: Stage, amount: int = 1) -> None:
        with self.job.lock:
            self.job.done[stage] = self.job.done.get(stage, 0) + amount
        self.save()
        super().advance(stage, amount)

    def files(self, doc_ids: Iterable[str], stage: Stage, reason: str | None = None) -> None:
        with self.job.lock:
            for doc_id in doc_ids:
                entry = self.by_id.get(doc_id)
                if entry is not None and entry.stage is not Stage.FAILED:
                    entry.stage, entry.reason = stage, reason
                    if stage is Stage.FAILED:
                        entry.status = "failed"
        self.save(force=True)

    def pages(self, doc_id: str, done: int, total: int) -> None:
        with self.job.lock:
            entry = self.by_id.get(doc_id)
            if entry is not None:
                entry.pages_read, entry.pages_to_read = done, total
        self.save()
        super().pages(doc_id, done, total)


class JobRunner:
    """One per server process: a thread that waits for the runner lock, then runs the data home's jobs."""

    def __init__(self, store: JobStore, work: JobWork, stopping: threading.Event, max_attempts: int = 3) -> None:
        self.store = store
        self.work = work
        self.stopping = stopping
        self.max_attempts = max_attempts
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="citeqa-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the running job before its commit (it goes back to the queue) and stop looking for more."""
        self.stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """A job was queued by this process: look now rather than at the next poll."""
        self._wake.set()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                with _runner_lock(self.store.runner_lock) as held:
                    if not held:
                        self.stopping.wait(LOCK_POLL_SECONDS)
                        continue
                    for job in self.store.recover(self.owner, self.max_attempts):
                        log.warning("upload job %s failed: %s", job.id, job.error)
                    self._run_jobs()
            except (OSError, sqlite3.Error):  # a full disk, say: try again rather than lose the runner thread
                log.exception("the job runner failed; trying again")
                self.stopping.wait(LOCK_POLL_SECONDS)

    def _run_jobs(self) -> None:
        while not self.stopping.is_set():
            job = self.store.claim(self.owner, LEASE_SECONDS)
            if job is None:
                self._wake.wait(IDLE_POLL_SECONDS)
                self._wake.clear()
                continue
            self._run(job)

    def _run(self, job: Job) -> None:
        progress = JobProgress(job, self.store, self.stopping)
        files = job.incoming_files(self.store.job_folder(job.id))
        with _heartbeat(progress):
            try:
                report = self.work(job, files, progress)
            except WriteStopped:
                log.info("upload job %s stopped with the server; it is queued again", job.id)
                self.store.requeue(job, count_attempt=False)
                return
            except (WriterBusyError, DocumentChangedError, ClusterError) as exc:  # may pass: try again, a few times
                if job.attempts < self.max_attempts:
                    log.warning("upload job %s could not commit; queued again: %s", job.id, exc)
                    self.store.requeue(job, count_attempt=True)
                    return
                job.fail(f"nothing was committed: {exc}")
            except (IndexMissingError, KeyError, OSError, sqlite3.Error) as exc:  # dropped collection, full disk
                log.warning("upload job %s failed: %s", job.id, exc)
                job.fail(f"nothing was committed: {_reason(exc)}")
            except Exception as exc:  # anything else is a bug, but it fails this job only: the runner goes on
                log.exception("upload job %s failed", job.id)
                job.fail(f"nothing was committed: internal error ({type(exc).__name__}); see the server log")
            else:
                job.complete(report)
        self.store.finish(job)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyError):  # the collection's registry: it was dropped after the upload
        return f"the collection {exc} no longer exists"
    return str(exc)


@contextlib.contextmanager
def _heartbeat(progress: JobProgress) -> Iterator[None]:
    """Renew the running job's lease while it works, also through a long parse that reports nothing."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(HEARTBEAT_SECONDS):
            try:
                progress.save(force=True)
            except sqlite3.Error:
                log.warning("could not renew the lease of upload job %s", progress.job.id)

    thread = threading.Thread(target=beat, name="citeqa-job-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@contextlib.contextmanager
def _runner_lock(path: Path) -> Iterator[bool]:
    """Try the runner lock once: yields whether this process holds it (until the block ends)."""
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class JobBoard:
    """What requests see of the jobs: submit, look up, list and count them; the runner of this process beside."""

    def __init__(self, store: JobStore, runner: JobRunner) -> None:
        self.store = store
        self.runner = runner

    def start(self) -> None:
        self.runner.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.runner.stop(timeout)
        self.store.close()

    def submit(self, job: Job, upload_folder: Path | None) -> Job:
        """Queue `job`, moving its files into the store. JobsBusyError when too many wait or the server stops."""
        self.store.submit(job, upload_folder, refuse=self.runner.stopping.is_set())
        self.runner.wake()
        return job

    def get(self, job_id: str) -> Job | None:
        return self.store.get(job_id)

    def jobs(self) -> list[Job]:
        return self.store.recent()

    def summary(self) -> BoardSummary:
        return self.store.summary()


async def get_jobs(request: Request) -> JobBoard:  # a coroutine, so FastAPI does not hop to a thread for it
    board = getattr(request.app.state, "jobs", None)
    if board is None:
        raise ApiError(503, "the server is starting; upload jobs are not available yet")
    return board


JobsDep = Annotated[JobBoard, Depends(get_jobs)]

__all__ = ["JOB_ROUTE", "Job", "JobBoard", "JobRunner", "JobStore", "JobsBusyError", "JobsDep"]
