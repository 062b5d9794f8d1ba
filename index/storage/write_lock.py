"""One writer per collection: a thread lock inside the process, then an exclusive flock on a file across processes."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path


class WriterBusyError(RuntimeError):
    """Another process (or request) holds the collection's write lock for longer than we were told to wait."""


class WriteLock:
    """The write lock of one collection folder, for the threads of one process and across processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.Lock()  # writers of this process queue here before taking the file lock

    @contextlib.contextmanager
    def held(self, timeout: float) -> Iterator[None]:
        if not self._thread_lock.acquire(timeout=timeout):
            raise WriterBusyError(f"the collection at {self.path.parent} is busy with another write; try again")
        try:
            with file_lock(self.path, timeout=timeout):
                yield
        finally:
            self._thread_lock.release()


@contextlib.contextmanager
def file_lock(path: Path, timeout: float) -> Iterator[None]:
    """An exclusive flock; waits up to `timeout` seconds, then fails naming the holder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise WriterBusyError(
                        f"{path.parent} is being written by {holder}; waited {timeout:.0f}s, try again when it is done"
                    ) from None
                time.sleep(0.05)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"process {os.getpid()}")
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
