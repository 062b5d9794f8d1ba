"""Segments built elsewhere (by Ray workers, index/cluster/) shipped as bytes, checked, and held in a collection's
incoming area until one commit attaches them all (`Collection.attach`).

A segment is a self-contained folder, so a worker that never sees the collection can build one; what it cannot
be trusted to do is build it with the collection's settings. Each shipped segment therefore carries what built it
(the index config: model fingerprint, encoder and ONNX file hash, chunker, BM25) and a sha256 per file; the
committer refuses a segment whose config is not the manifest's or whose bytes do not match.

The area is `<collection>/.incoming-<id>/`, locked (flock on its `.lock`) for as long as its job runs: the
collection's garbage collection removes an incoming area only when its lock is free (its job died), never one in
use, and a job removes its own area whatever happens to it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from citeqa.index.storage.collection import INCOMING_PREFIX, STAGING_LOCK
from citeqa.index.storage.durable import fsync_tree
from citeqa.index.storage.manifest import IndexConfig
from citeqa.index.storage.segment_writer import SEGMENT_FILE, SegmentInfo


class IncomingSegmentError(RuntimeError):
    """A shipped segment was built with other settings than the collection's, or its bytes arrived damaged."""


@dataclass(frozen=True)
class ShippedSegment:
    info: SegmentInfo
    config: dict[str, object]  # asdict(IndexConfig) of what built it
    files: dict[str, bytes]  # path inside the segment folder -> bytes
    sha256: dict[str, str]  # the same paths -> sha256 of the bytes, computed where they were written

    @property
    def doc_ids(self) -> list[str]:
        return self.info.doc_ids


def pack_segment(folder: Path, info: SegmentInfo, config: IndexConfig) -> ShippedSegment:
    """A finished segment folder as bytes, with what built it."""
    files = {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}
    if SEGMENT_FILE not in files:
        raise IncomingSegmentError(f"{folder} is not a finished segment (no {SEGMENT_FILE})")
    return ShippedSegment(info, asdict(config), files, {name: hashlib.sha256(data).hexdigest() for name, data in files.items()})


class IncomingArea:
    """A job's folder of received segments inside a collection, locked while the job runs and removed when it ends
    (committed or not: once committed, its segments were moved into `segments/`)."""

    def __init__(self, collection_folder: Path, expected: IndexConfig, durable: bool = True) -> None:
        self.expected = expected
        self.durable = durable
        token = uuid.uuid4().hex[:12]
        # Locked under a name garbage collection does not look at, then renamed: it never sees it unlocked.
        staging = collection_folder / f".new{INCOMING_PREFIX}{token}"
        staging.mkdir()
        self._lock = (staging / STAGING_LOCK).open("a+")
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.folder = collection_folder / f"{INCOMING_PREFIX}{token}"
        os.replace(staging, self.folder)
        self.received: list[tuple[Path, SegmentInfo]] = []

    def receive(self, shipped: ShippedSegment) -> SegmentInfo:
        """Check a shipped segment against the collection's config and its hashes, and write it into the area."""
        differences = self.expected.differences(IndexConfig(**shipped.config))  # type: ignore[arg-type]
        if differences:
            raise IncomingSegmentError(
                f"segment {shipped.info.name} was built with other settings than the collection's: " + "; ".join(differences)
            )
        if set(shipped.files) != set(shipped.sha256):
            raise IncomingSegmentError(f"segment {shipped.info.name} arrived with files its record does not list")
        target = self.folder / shipped.info.name
        if target.exists():
            raise IncomingSegmentError(f"segment {shipped.info.name} arrived twice")
        for name, data in shipped.files.items():
            if hashlib.sha256(data).hexdigest() != shipped.sha256[name]:
                raise IncomingSegmentError(f"segment {shipped.info.name}: {name} does not match its sha256")
            path = target / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if self.durable:
            fsync_tree(target)
        self.received.append((target, shipped.info))
        return shipped.info

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self._lock.close()

    def __enter__(self) -> IncomingArea:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None) -> None:
        self.close()
