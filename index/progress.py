"""What an ingestion reports while it runs: stages, how far each has got, and which file is where.

index/ only calls these hooks; the command line draws progress bars from them (console.py) and the service
keeps a job's state with them (service/jobs.py). A hook may raise to stop the work: a job being cancelled
raises from `advance`, between two embedding batches, and nothing is committed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from enum import StrEnum


class Stage(StrEnum):
    """Where a file is. A job's files move forward through these; `failed` can follow any of them."""

    QUEUED = "queued"
    PARSING = "parsing"
    SPLITTING = "splitting"
    EMBEDDING = "embedding"
    COMMITTING = "committing"
    COMMITTED = "committed"
    FAILED = "failed"


# The stages that have an amount of work to count (files parsed, documents split, texts embedded, commits made).
WORK_STAGES = (Stage.PARSING, Stage.SPLITTING, Stage.EMBEDDING, Stage.COMMITTING)


class Progress:
    """Receives an ingestion's events. This base class ignores them all, so callers may pass nothing."""

    def begin(self, stage: Stage, total: int) -> None:
        """`stage` starts, with `total` units of work (files, documents, texts or commits)."""

    def advance(self, stage: Stage, amount: int = 1) -> None:
        """`amount` more units of `stage` are done."""

    def end(self, stage: Stage) -> None:
        """`stage` is finished."""

    def files(self, doc_ids: Iterable[str], stage: Stage, reason: str | None = None) -> None:
        """These documents (by id) entered `stage`; `reason` says why, for `failed`."""

    def pages(self, doc_id: str, done: int, total: int) -> None:
        """OCR has read `done` of the `total` pages of this document that it reads (while it is being parsed)."""


NO_PROGRESS = Progress()


class WriteStopped(Exception):
    """Raised when the process is stopping: the write (or merge) ends before its commit, committing nothing."""


class StopWhenAsked(Progress):
    """Stops a write when `stopping` is set, at the next unit of work before the commit.

    Never once the commit has begun: a write that committed must be reported as such, and the commit is quick."""

    def __init__(self, stopping: threading.Event) -> None:
        self.stopping = stopping

    def advance(self, stage: Stage, amount: int = 1) -> None:
        if stage in WORK_STAGES and stage is not Stage.COMMITTING:
            stop_if_asked(self.stopping)

    def pages(self, doc_id: str, done: int, total: int) -> None:
        stop_if_asked(self.stopping)  # OCR takes seconds a page: a stopping server need not wait for a whole file


def stop_if_asked(stopping: threading.Event | None) -> None:
    """A point where a write (or a merge) may end cleanly: raises WriteStopped once `stopping` is set."""
    if stopping is not None and stopping.is_set():
        raise WriteStopped
