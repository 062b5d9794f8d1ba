"""Where upload jobs live: one SQLite file in the data home's jobs folder (Settings.jobs_dir), shared by every
server process that serves it.

    <home>/jobs/jobs.sqlite     one row per job: its files and their stages, state, attempts, owner and lease
    <home>/jobs/<job id>/       the uploaded files of a job that has not ended (removed when it ends)
    <home>/jobs/runner.lock     held (flock) by the one process that runs jobs

A job's row and its folder appear together: the folder is moved in inside the transaction that inserts the row,
and a sweep (in its own write transaction, so it never runs between the two) removes any folder without a job
that is still to run. Every state change is a transaction with synchronous=FULL: a job accepted with a 202 is
on disk before the reply is sent.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from citeqa.index.progress import WORK_STAGES, Stage
from citeqa.service.job_model import Job, JobFileEntry, JobState, now

DATABASE = "jobs.sqlite"
RUNNER_LOCK = "runner.lock"

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- submission order: jobs run oldest first
    id TEXT UNIQUE NOT NULL,
    collection TEXT NOT NULL,
    state TEXT NOT NULL,
    created TEXT NOT NULL,
    started TEXT,
    finished TEXT,
    finished_at REAL,                       -- time.time() when it ended: finished jobs are kept for an age
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,    -- times a runner claimed it
    owner TEXT,                             -- the runner that holds it while it runs
    lease_until REAL,                       -- when that claim lapses unless renewed
    files TEXT NOT NULL,                    -- JSON: each file's name, id, size, hash, stage, status, reason
    totals TEXT NOT NULL DEFAULT '{}',      -- JSON: the amount of work of each stage
    done TEXT NOT NULL DEFAULT '{}'         -- JSON: the work of each stage done so far
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, seq);
CREATE TABLE IF NOT EXISTS ended (state TEXT PRIMARY KEY, count INTEGER NOT NULL);
"""

UNFINISHED: tuple[JobState, ...] = ("queued", "running")


class JobsBusyError(RuntimeError):
    """Too many jobs are waiting already."""


@dataclass(frozen=True)
class BoardSummary:
    """What /metrics shows of the jobs: jobs by state now, files of unfinished jobs by stage, jobs ended so far."""

    jobs: dict[JobState, int]
    files_in_flight: dict[Stage, int]
    ended: dict[JobState, int]


@dataclass(frozen=True)
class Retention:
    """How many finished jobs are kept, and for how long (whichever removes a job first)."""

    kept: int = 100
    seconds: float = 7 * 24 * 3600.0


class JobStore:
    """The jobs of one data home. Thread-safe (one connection, one lock); safe across processes (SQLite)."""

    def __init__(self, folder: Path, retention: Retention = Retention(), max_queued: int = 20) -> None:
        self.folder = folder
        self.retention = retention
        self.max_queued = max_queued
        folder.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(folder / DATABASE, check_same_thread=False, isolation_level=None, timeout=60)
        # WAL lets every process read while one writes; FULL syncs each commit, so an accepted job survives a
        # power cut, not only a crash.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    @property
    def runner_lock(self) -> Path:
        return self.folder / RUNNER_LOCK

    def job_folder(self, job_id: str) -> Path:
        return self.folder / job_id

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: BEGIN IMMEDIATE takes SQLite's write lock at once, so every process's writes
        to the jobs queue one after another."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, params: tuple = ()) -> list[Job]:
        with self._lock:
            return [_job_of(row) for row in self._db.execute(f"SELECT {COLUMNS} FROM jobs {sql}", params)]

    # -- submitting and reading ----------------------------------------------------------------------

    def submit(self, job: Job, upload_folder: Path | None, refuse: bool = False) -> Job:
        """Record `job` as queued and move its uploaded files into its folder, in one transaction. Raises
        JobsBusyError when `max_queued` jobs wait already, or when `refuse` (the server is stopping)."""
        with self._transaction() as db:
            waiting = db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0]
            if refuse or waiting >= self.max_queued:
                raise JobsBusyError(
                    f"{waiting} upload jobs are waiting already (CITEQA_MAX_QUEUED_JOBS); try again when they are done"
                    if not refuse
                    else "the server is stopping; upload again in a moment"
                )
            db.execute(
                "INSERT INTO jobs (id, collection, state, created, files) VALUES (?, ?, 'queued', ?, ?)",
                (job.id, job.collection, job.created, _files_json(job.files)),
            )
            if upload_folder is not None:
                # Inside the transaction: if the move fails, the row is rolled back; if the process dies after
                # the move, the folder has no row and the next sweep removes it.
                shutil.move(upload_folder, self.job_folder(job.id))
        return job

    def get(self, job_id: str) -> Job | None:
        found = self._rows("WHERE id = ?", (job_id,))
        return found[0] if found else None

    def recent(self) -> list[Job]:
        """Unfinished jobs and the kept finished ones, newest first."""
        return self._rows("ORDER BY seq DESC")

    def summary(self) -> BoardSummary:
        jobs: dict[JobState, int] = {"queued": 0, "running": 0, "done": 0, "failed": 0}
        in_flight = {stage: 0 for stage in (Stage.QUEUED, *WORK_STAGES)}
        with self._lock:
            for state, count in self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
                jobs[state] = count
            ended: dict[JobState, int] = {"done": 0, "failed": 0}
            ended.update(dict(self._db.execute("SELECT state, count FROM ended")))
        for job in self._rows("WHERE state IN ('queued', 'running')"):
            for entry in job.files:
                if entry.stage in in_flight:
                    in_flight[entry.stage] += 1
        return BoardSummary(jobs, in_flight, ended)

    # -- running -------------------------------------------------------------------------------------

    def claim(self, owner: str, lease_seconds: float) -> Job | None:
        """The oldest queued job, now running for `owner` until its lease lapses; None when none waits."""
        with self._transaction() as db:
            row = db.execute(f"SELECT {COLUMNS} FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1").fetchone()
            if row is None:
                return None
            job = _job_of(row)
            job.state, job.started, job.owner = "running", job.started or now(), owner
            job.attempts += 1
            job.lease_until = time.time() + lease_seconds
            job.restart_files()
            db.execute(
                "UPDATE jobs SET state = 'running', started = ?, attempts = ?, owner = ?, lease_until = ?, files = ?,"
                " totals = '{}', done = '{}' WHERE id = ?",
                (job.started, job.attempts, owner, job.lease_until, _files_json(job.files), job.id),
            )
        return job

    def save_progress(self, job: Job, lease_seconds: float) -> None:
        """Write a running job's stages and renew its lease (only while it is still this runner's)."""
        with job.lock:
            files, totals, done = _files_json(job.files), _stage_json(job.totals), _stage_json(job.done)
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET files = ?, totals = ?, done = ?, lease_until = ?"
                " WHERE id = ? AND owner = ? AND state = 'running'",
                (files, totals, done, time.time() + lease_seconds, job.id, job.owner),
            )

    def requeue(self, job: Job, count_attempt: bool) -> None:
        """Put a running job back in the queue (the server is stopping, or the writer was busy); it starts over.
        A stop the server asked for does not count as an attempt."""
        with self._transaction() as db:
            attempts = job.attempts if count_attempt else max(0, job.attempts - 1)
            job.restart_files()
            db.execute(
                "UPDATE jobs SET state = 'queued', owner = NULL, lease_until = NULL, attempts = ?, files = ?,"
                " totals = '{}', done = '{}' WHERE id = ?",
                (attempts, _files_json(job.files), job.id),
            )

    def finish(self, job: Job) -> None:
        """Record a job that ended (`job.state` done or failed), count it, forget old finished jobs, and remove
        the folders of jobs that will never run again."""
        with job.lock:
            files, totals, done = _files_json(job.files), _stage_json(job.totals), _stage_json(job.done)
        cutoff = time.time() - self.retention.seconds
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET state = ?, finished = ?, finished_at = ?, error = ?, owner = NULL, lease_until = NULL,"
                " files = ?, totals = ?, done = ? WHERE id = ?",
                (job.state, job.finished, time.time(), job.error, files, totals, done, job.id),
            )
            db.execute("INSERT INTO ended VALUES (?, 1) ON CONFLICT (state) DO UPDATE SET count = count + 1", (job.state,))
            db.execute(
                "DELETE FROM jobs WHERE state IN ('done', 'failed') AND (finished_at < ? OR seq NOT IN ("
                " SELECT seq FROM jobs WHERE state IN ('done', 'failed') ORDER BY seq DESC LIMIT ?))",
                (cutoff, self.retention.kept),
            )
            self._sweep(db)

    def recover(self, owner: str, max_attempts: int) -> list[Job]:
        """Called by a runner that has just taken the runner lock: any job still `running` belongs to a runner
        that died (it held the lock). Each goes back to the queue, or ends `failed` once it has been tried
        `max_attempts` times; returns the failed ones. Folders without a job to run are removed."""
        failed = []
        with self._transaction() as db:
            rows = db.execute(f"SELECT {COLUMNS} FROM jobs WHERE state = 'running' AND owner IS NOT ?", (owner,))
            for job in [_job_of(row) for row in rows.fetchall()]:
                # A job that died at its commit may have committed: only another run can tell (what it committed
                # comes back `unchanged`), so it is never failed for its attempts; a commit is too short to be
                # what keeps killing a server.
                reached_commit = any(entry.stage in (Stage.COMMITTING, Stage.COMMITTED) for entry in job.files)
                if job.attempts >= max_attempts and not reached_commit:
                    job.fail(
                        f"nothing was committed: the server stopped while running this job {job.attempts} times "
                        "(CITEQA_JOB_ATTEMPTS); see the server log"
                    )
                    db.execute(
                        "UPDATE jobs SET state = 'failed', finished = ?, finished_at = ?, error = ?, owner = NULL,"
                        " lease_until = NULL, files = ? WHERE id = ?",
                        (job.finished, time.time(), job.error, _files_json(job.files), job.id),
                    )
                    db.execute("INSERT INTO ended VALUES ('failed', 1) ON CONFLICT (state) DO UPDATE SET count = count + 1")
                    failed.append(job)
                else:
                    job.restart_files()
                    db.execute(
                        "UPDATE jobs SET state = 'queued', owner = NULL, lease_until = NULL, files = ?, totals = '{}',"
                        " done = '{}' WHERE id = ?",
                        (_files_json(job.files), job.id),
                    )
            self._sweep(db)
        return failed

    def _sweep(self, db: sqlite3.Connection) -> None:
        """Remove job folders whose job will not run again (inside a write transaction: see the module notes)."""
        keep = {row[0] for row in db.execute("SELECT id FROM jobs WHERE state IN ('queued', 'running')")}
        for entry in self.folder.iterdir():
            if entry.is_dir() and entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)


COLUMNS = "id, collection, state, created, started, finished, error, attempts, owner, lease_until, files, totals, done"


def _job_of(row: tuple) -> Job:
    job_id, collection, state, created, started, finished, error, attempts, owner, lease, files, totals, done = row
    return Job(
        collection=collection,
        files=[JobFileEntry.from_json(entry) for entry in json.loads(files)],
        id=job_id,
        state=state,
        created=created,
        started=started,
        finished=finished,
        error=error,
        attempts=attempts,
        owner=owner,
        lease_until=lease,
        totals={Stage(k): v for k, v in json.loads(totals).items()},
        done={Stage(k): v for k, v in json.loads(done).items()},
    )


def _files_json(files: list[JobFileEntry]) -> str:
    return json.dumps([entry.to_json() for entry in files])


def _stage_json(counts: dict[Stage, int]) -> str:
    return json.dumps({stage.value: count for stage, count in counts.items()})
