"""An upload job's state: its files and the stage each is in, how far each stage has got, and how it ended.

The same object is what the job store reads and writes (service/job_store.py), what the runner moves forward
(service/jobs.py) and what GET /v1/jobs/{id} shows.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from citeqa.index.progress import Stage
from citeqa.index.writing.ingest import IncomingFile, IngestReport
from citeqa.service.schemas.documents import JobCounts, JobFile, JobInfo

JobState = Literal["queued", "running", "done", "failed"]
# How much of a job's time each stage takes, roughly (embedding dominates): the progress fraction's weights.
STAGE_WEIGHTS = {Stage.PARSING: 0.10, Stage.SPLITTING: 0.05, Stage.EMBEDDING: 0.80, Stage.COMMITTING: 0.05}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class JobFileEntry:
    """One uploaded file of a job: where its bytes are (`name`, inside the job's folder) and how far it got."""

    filename: str
    doc_id: str | None
    size: int
    name: str = ""  # the file's name in the job's folder
    sha256: str | None = None
    refused: str | None = None  # known when the upload arrived: the file fails at once
    stage: Stage = Stage.QUEUED
    status: str | None = None
    reason: str | None = None
    pages_read: int | None = None  # OCR: pages of this file read so far, of pages_to_read
    pages_to_read: int | None = None

    @classmethod
    def of(cls, incoming: IncomingFile) -> JobFileEntry:
        entry = cls(incoming.filename, incoming.doc_id, incoming.size, incoming.path.name, incoming.sha256, incoming.refused)
        if incoming.refused:
            entry.stage, entry.status, entry.reason = Stage.FAILED, "failed", incoming.refused
        return entry

    def to_json(self) -> dict[str, Any]:
        return {
            "filename": self.filename, "doc_id": self.doc_id, "size": self.size, "name": self.name, "sha256": self.sha256,
            "refused": self.refused, "stage": self.stage.value, "status": self.status, "reason": self.reason,
            "pages_read": self.pages_read, "pages_to_read": self.pages_to_read,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobFileEntry:
        return cls(**(data | {"stage": Stage(data["stage"])}))


@dataclass
class Job:
    """One upload's state. Written by the runner, read by requests: access to files and counts holds `lock`."""

    collection: str
    files: list[JobFileEntry]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    state: JobState = "queued"
    created: str = field(default_factory=now)
    started: str | None = None
    finished: str | None = None
    error: str | None = None
    attempts: int = 0
    owner: str | None = None
    lease_until: float | None = None
    totals: dict[Stage, int] = field(default_factory=dict)
    done: dict[Stage, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def for_files(cls, collection: str, files: list[IncomingFile]) -> Job:
        return cls(collection, [JobFileEntry.of(incoming) for incoming in files])

    def incoming_files(self, folder: Path) -> list[IncomingFile]:
        """The job's files as ingestion takes them. Not `temporary`: they are copied into the store, never moved,
        so a job that is run again after a crash still finds every file in its folder."""
        return [
            IncomingFile(folder / entry.name, entry.filename, entry.doc_id, entry.size, entry.sha256, refused=entry.refused)
            for entry in self.files
        ]

    def restart_files(self) -> None:
        """Back to the start, for another run: every file not refused on arrival is queued again."""
        with self.lock:
            for entry in self.files:
                if not entry.refused:
                    entry.stage, entry.status, entry.reason = Stage.QUEUED, None, None
            self.totals, self.done = {}, {}

    def fail(self, error: str) -> None:
        """Ended with nothing committed: every file fails with the job's reason."""
        with self.lock:
            self.state, self.error, self.finished = "failed", error, now()
            for entry in self.files:
                if entry.stage is not Stage.FAILED:
                    entry.stage, entry.status, entry.reason = Stage.FAILED, "failed", error

    def complete(self, report: IngestReport) -> None:
        """Committed: each file takes its outcome (ingest_files reports one per file, in order)."""
        with self.lock:
            self.state, self.finished = "done", now()
            for entry, outcome in zip(self.files, report.outcomes, strict=False):
                entry.status, entry.reason = outcome.status, outcome.reason
                entry.stage = Stage.FAILED if outcome.status == "failed" else Stage.COMMITTED

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
                attempts=self.attempts,
                counts=counts,
                files=[JobFile(filename=f.filename, id=f.doc_id, bytes=f.size, stage=f.stage.value, status=f.status,
                               reason=f.reason, pages_read=f.pages_read, pages_to_read=f.pages_to_read)
                       for f in self.files],
            )  # fmt: skip
