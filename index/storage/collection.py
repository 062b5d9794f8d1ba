"""A collection on disk: a catalog (SQLite, WAL), immutable segments, and one writer at a time.

    <collection>/manifest.json     what builds this collection's contents (model, chunker, lexical settings)
    <collection>/catalog.sqlite    segments, live documents (id -> segment and local number), deletions, generation
                                   (see catalog.py)
    <collection>/segments/<name>/  immutable segments (see segment_writer.py)
    <collection>/write.lock        held (flock) by the one process writing (see write_lock.py)
    <collection>/files/<sha256>    the original files documents were parsed from (see originals.py)
    <collection>/.backup-<id>/     a backup being taken: hard links to one generation's files (see backup.py)

A write stages a segment folder, then commits in one SQLite transaction that attaches the segment, points the
documents at it, records the old versions as deleted and bumps the generation. A killed writer leaves either the
old state or the new one; a staged folder that no commit references is removed by the next writer. Readers open a
snapshot of one generation and notice a newer one on their next query, whichever process committed it.

Durable (the default): a segment's files and folder are synced before the commit names them, and the commit
syncs the catalog's WAL, so a commit that returned survives a power cut (see durable.py, catalog.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from citeqa.index.progress import stop_if_asked
from citeqa.index.storage.catalog import CATALOG_FILE, Catalog, DocumentRow, now
from citeqa.index.storage.durable import fsync_dir, fsync_file
from citeqa.index.storage.manifest import REBUILD_HINT, IndexConfig, IndexMismatchError, IndexMissingError, Manifest
from citeqa.index.storage.originals import DEFAULT_GRACE_SECONDS, OriginalStore
from citeqa.index.storage.segment_merge import merge_segments
from citeqa.index.storage.segment_reader import SegmentReader
from citeqa.index.storage.segment_writer import PreparedDocument, SegmentInfo, write_segment
from citeqa.index.storage.snapshot import Snapshot
from citeqa.index.storage.snapshot_cache import SnapshotCache
from citeqa.index.storage.write_lock import WriteLock, file_lock
from citeqa.index.text.chunking import Chunk
from citeqa.index.text.documents import Document
from citeqa.index.text.lexical import LexicalSettings

MANIFEST_FILE = "manifest.json"
SEGMENTS_DIR = "segments"
LOCK_FILE = "write.lock"
# A backup stages hard links to one generation's files in `<collection>/.backup-<id>/` and holds a flock on the
# STAGING_LOCK file inside it until it is done; a staging folder whose lock is free was left by a killed backup.
STAGING_PREFIX = ".backup-"
STAGING_LOCK = ".lock"
# Segments built elsewhere wait in `<collection>/.incoming-<id>/` for the one commit that attaches them, locked the
# same way while their job runs (incoming.py); one whose lock is free was left by a job that died.
INCOMING_PREFIX = ".incoming-"
# Log-structured merge policy: segments are grouped by size tier (powers of MERGE_FACTOR chunks); a tier holding
# MERGE_FACTOR segments is merged into one, so a document is copied O(log n) times over its life.
MERGE_FACTOR = 8


class DocumentChangedError(RuntimeError):
    """A document a job left out as unchanged was changed by another writer before the job's commit."""


class CollectionReplacedError(RuntimeError):
    """The collection's folder was replaced (a restore, a rebuild) after this process opened it."""


@dataclass
class WriteResult:
    added: list[str]
    updated: list[str]
    unchanged: list[str]
    removed: list[str]
    generation: int

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


class Collection:
    """The front door to one collection's storage. Thread-safe: readers share snapshots, writers queue."""

    def __init__(self, folder: Path, manifest: Manifest, durable: bool = True) -> None:
        self.folder = folder
        self.manifest = manifest
        self.durable = durable  # fsync segments and originals before the commit that names them (CITEQA_DURABLE_WRITES)
        self.lexical = LexicalSettings(**manifest.config.lexical)
        # Which catalog file this process opened: a restore (or a rebuild) swaps in another folder under the same
        # name, and a writer that still holds the old catalog must not commit into the one that was swapped out.
        self._identity = _file_identity(folder / CATALOG_FILE)
        self.catalog = Catalog(folder, durable)
        self._lock = WriteLock(folder / LOCK_FILE)
        self._snapshots = SnapshotCache(self.catalog, folder / SEGMENTS_DIR)

    # -- opening ----------------------------------------------------------------------------------

    @staticmethod
    def exists(folder: Path) -> bool:
        return (folder / MANIFEST_FILE).is_file() and Catalog.exists(folder)

    @classmethod
    def read_manifest(cls, folder: Path) -> Manifest:
        if (folder / "current").is_symlink():
            raise IndexMismatchError(f"the index at {folder} has an older format (versioned folders); {REBUILD_HINT}")
        if not cls.exists(folder):
            raise IndexMissingError(f"no index at {folder}; build one with `citeqa index`")
        return Manifest.read(folder / MANIFEST_FILE)

    @classmethod
    def open(cls, folder: Path, expected: IndexConfig, durable: bool = True) -> Collection:
        """Open an existing collection; refuse (IndexMismatchError) one built with other settings."""
        manifest = cls.read_manifest(folder)
        manifest.require_compatible(expected)
        return cls(folder, manifest, durable)

    @classmethod
    def create(cls, folder: Path, config: IndexConfig, durable: bool = True) -> Collection:
        """Create an empty collection (or open it, if another process just created one with the same settings)."""
        folder.mkdir(parents=True, exist_ok=True)
        with file_lock(folder / LOCK_FILE, timeout=60):
            if not (folder / MANIFEST_FILE).is_file():
                if (folder / "current").is_symlink():
                    raise IndexMismatchError(f"the index at {folder} has an older format (versioned folders); {REBUILD_HINT}")
                (folder / SEGMENTS_DIR).mkdir(exist_ok=True)
                Catalog.create(folder)
                tmp = folder / f".{MANIFEST_FILE}.tmp"
                Manifest(config, built_at=now()).write(tmp)
                if durable:
                    fsync_file(folder / CATALOG_FILE)
                    fsync_file(tmp)
                os.replace(tmp, folder / MANIFEST_FILE)  # last: a folder with a manifest is a collection
                if durable:
                    fsync_dir(folder)
                    fsync_dir(folder.parent)
        return cls.open(folder, config, durable)

    @classmethod
    def remove(cls, folder: Path) -> None:
        """Delete a collection's folder, under its write lock so no writer is mid-commit."""
        with file_lock(folder / LOCK_FILE, timeout=60):
            trash = folder.with_name(f".trash-{folder.name}-{os.getpid()}-{time.monotonic_ns()}")
            os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def close(self) -> None:
        self.catalog.close()

    # -- reading ----------------------------------------------------------------------------------

    def generation(self) -> int:
        return self.catalog.generation()

    def snapshot(self) -> Snapshot:
        """The last committed state; re-opened only when the generation moved (cheap to call per query)."""
        return self._snapshots.current(self.lexical)

    def scored_with(self, lexical: LexicalSettings) -> Collection:
        """The same collection, its snapshots scoring BM25 with other k1 and b (they act at query time: postings keep
        raw term frequencies); this one is unchanged. Tokenising must be the index's own."""
        if replace(lexical, k1=self.lexical.k1, b=self.lexical.b) != self.lexical:
            raise ValueError("only BM25's k1 and b can change at query time; tokenising is the index's own")
        view = Collection(self.folder, self.manifest, self.durable)
        view.lexical = lexical
        return view

    def segment_reader(self, name: str, snapshot: Snapshot | None = None) -> SegmentReader:
        """The reader of segment `name`: the snapshot's (the current one by default), or, for a segment committed
        after that snapshot, the segment opened directly (OSError or sqlite3.Error when a merge removed it since)."""
        reader = (snapshot or self.snapshot()).reader(name)
        return reader if reader is not None else SegmentReader(self.folder / SEGMENTS_DIR / name)

    def documents(self) -> list[DocumentRow]:
        return self.catalog.documents()

    def document_row(self, doc_id: str) -> DocumentRow | None:
        return self.catalog.document_row(doc_id)

    def hashes(self, ids: list[str] | None = None) -> dict[str, str]:
        """Content hash of each live document (of `ids` only, when given: a write reads what it touches)."""
        return self.catalog.hashes(ids)

    def counts(self) -> tuple[int, int]:
        return self.catalog.counts()

    def document(self, doc_id: str) -> Document | None:
        entry = self.document_entry(doc_id)
        return entry[1] if entry else None

    def document_entry(self, doc_id: str) -> tuple[DocumentRow, Document] | None:
        """A document's catalog row and the document it points at, read together (one row, one version)."""
        for _ in range(3):  # a merge may drop the row's segment between the two reads: read the row again
            row = self.document_row(doc_id)
            if row is None:
                return None
            reader = self.snapshot().reader(row.segment)
            if reader is not None:
                return row, reader.document(row.local)
            try:  # committed after the snapshot we hold: open the segment directly
                return row, self.segment_reader(row.segment).document(row.local)
            except (OSError, sqlite3.Error):
                continue
        return None

    def chunks(self, doc_id: str) -> list[Chunk]:
        row = self.document_row(doc_id)
        if row is None:
            return []
        reader = self.segment_reader(row.segment)
        return [reader.chunk(int(r)) for r in np.flatnonzero(np.asarray(reader.chunks[:, 0]) == row.local)]

    def referenced_originals(self) -> set[str]:
        """The sha256 of every live document's original file (documents parsed from files)."""
        snapshot = self.snapshot()
        referenced = set()
        for name, locals_ in self.catalog.live_locals().items():
            reader = self.segment_reader(name, snapshot)
            referenced |= {sha for local, sha in reader.original_hashes().items() if local in locals_}
        return referenced

    def sweep_originals(self, timeout: float = 60.0, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> list[str]:
        """Remove original files no live document names (after the grace period); returns their hashes. Under the
        write lock, so no commit can start naming a file while the references are read."""
        with self.writing(timeout):
            return OriginalStore(self.folder).sweep(self.referenced_originals, grace_seconds)

    # -- writing ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self, timeout: float) -> Iterator[None]:
        """The collection's one writer: a thread lock for this process, a file lock across processes. Refuses
        (CollectionReplacedError) once the folder holds another catalog than the one this process opened."""
        with self._lock.held(timeout):
            if _file_identity(self.folder / CATALOG_FILE) != self._identity:
                raise CollectionReplacedError(
                    f"the collection at {self.folder} was replaced (restored or rebuilt) after this process opened it; "
                    "restart this process to write to it"
                )
            yield

    def write(
        self,
        upserts: list[PreparedDocument],
        deletes: list[str],
        timeout: float = 60.0,
        mirror: tuple[str, set[str]] | None = None,
    ) -> WriteResult:
        """Add or replace `upserts` and remove `deletes`, in one commit. `mirror = (prefix, ids)` also removes every
        document whose source starts with prefix (it came from that folder) and whose id is not in ids."""
        with self.writing(timeout):
            self._collect_garbage()
            current = self.hashes(None if mirror else [p.document.id for p in upserts] + list(deletes))
            fresh = [p for p in upserts if current.get(p.document.id) != p.document.sha256]
            unchanged = [p.document.id for p in upserts if current.get(p.document.id) == p.document.sha256]
            removals = {d for d in deletes if d in current}
            if mirror is not None:
                prefix, wanted = mirror
                sources = self.catalog.sources()
                removals |= {d for d, source in sources.items() if source.startswith(prefix) and d not in wanted}
            removals -= {p.document.id for p in fresh}
            result = WriteResult(
                added=[p.document.id for p in fresh if p.document.id not in current],
                updated=[p.document.id for p in fresh if p.document.id in current],
                unchanged=unchanged,
                removed=sorted(removals),
                generation=self.generation(),
            )
            if not result.changed:
                return result
            infos = [
                write_segment(self.folder / SEGMENTS_DIR, batch, self.manifest.config.dimension, self.durable)
                for batch in _batches(fresh)
            ]
            result.generation = self.catalog.commit(infos, sorted(removals))
        return result

    def attach(
        self,
        segments: list[tuple[Path, SegmentInfo]],
        unchanged: dict[str, str],
        timeout: float = 60.0,
        mirror: tuple[str, set[str]] | None = None,
    ) -> WriteResult:
        """Attach segments built elsewhere (folders in an incoming area, checked by incoming.py) in one commit.

        `unchanged` maps the ids left out of the segments (found unchanged when the job began) to the hash they had
        then. Under the write lock, added / updated / unchanged / removed are worked out again by content hash from
        the catalog as it is now; a document left out as unchanged that changed since refuses the whole commit
        (DocumentChangedError), so nothing is attached. `mirror` as in `write`. The segments' folders are moved into
        segments/ just before the catalog commit that names them (an unnamed one is removed by the next writer)."""
        ids = [doc_id for _, info in segments for doc_id in info.doc_ids]
        if len(set(ids)) != len(ids) or set(ids) & set(unchanged):
            raise ValueError("a document is in two incoming segments (or both in one and left out as unchanged)")
        with self.writing(timeout):
            self._collect_garbage()
            current = self.hashes(None if mirror else ids + list(unchanged))
            moved = [doc_id for doc_id, sha in unchanged.items() if current.get(doc_id) != sha]
            if moved:
                raise DocumentChangedError(
                    f"{len(moved)} document(s) changed while the job ran (first: {moved[0]}); nothing was committed, run it again"
                )
            hashes = {doc_id: sha for _, info in segments for doc_id, sha in zip(info.doc_ids, info.doc_hashes, strict=True)}
            removals: set[str] = set()
            if mirror is not None:
                prefix, wanted = mirror
                removals = {d for d, source in self.catalog.sources().items() if source.startswith(prefix) and d not in wanted}
            removals -= set(ids)
            result = WriteResult(
                added=[d for d in ids if d not in current],
                updated=[d for d in ids if d in current and current[d] != hashes[d]],
                # Same content as committed (another writer got there first): attached anyway, reported unchanged.
                unchanged=sorted(set(unchanged) | {d for d in ids if current.get(d) == hashes[d]}),
                removed=sorted(removals),
                generation=self.generation(),
            )
            if not result.changed:
                return result
            target = self.folder / SEGMENTS_DIR
            for folder, info in segments:
                os.replace(folder, target / info.name)
            if self.durable and segments:
                fsync_dir(target)
            result.generation = self.catalog.commit([info for _, info in segments], sorted(removals))
        return result

    def _collect_garbage(self) -> None:
        """Remove segment folders no commit references (staged by a killed writer, or merged away), and backup
        staging folders whose backup is gone (killed before it removed its own)."""
        referenced = self.catalog.segment_names()
        for entry in (self.folder / SEGMENTS_DIR).iterdir():
            if entry.name not in referenced:
                shutil.rmtree(entry, ignore_errors=True)
        remove_abandoned_staging(self.folder)

    # -- merging ----------------------------------------------------------------------------------

    def merge(self, timeout: float = 60.0, force: bool = False, stopping: threading.Event | None = None) -> int:
        """Merge segments that fill a size tier (or, with force, all of them) into one; returns how many were merged.

        Live documents are copied as they are stored (vectors, tables, postings, text): nothing is embedded or
        tokenised again. Once `stopping` is set, the merge raises WriteStopped at its next step before the commit;
        a segment it staged is removed by the next write."""
        with self.writing(timeout):
            rows = self.catalog.segment_sizes()
            chosen = [name for name, _ in rows] if force else _tier_to_merge(rows)
            if len(chosen) < 2:
                return 0
            snapshot = self.snapshot()
            parts = []
            for name in chosen:
                reader = self.segment_reader(name, snapshot)
                live = np.zeros(reader.document_count, dtype=bool)
                live[self.catalog.segment_locals(name)] = True
                parts.append((reader, live))
            stop_if_asked(stopping)
            segments = self.folder / SEGMENTS_DIR
            has_live = any(live.any() for _, live in parts)
            infos = [merge_segments(segments, parts, lambda: stop_if_asked(stopping), self.durable)] if has_live else []
            stop_if_asked(stopping)
            self.catalog.commit(infos, [], dropped=chosen)
            self._collect_garbage()
            self.snapshot()  # open the merged segment here, in the background, rather than in the next search
            return len(chosen)


def remove_abandoned_staging(folder: Path) -> None:
    """Remove the collection's backup staging folders and incoming areas that no running backup or job holds. Call
    it under the write lock: a backup creates its folder and locks it under that lock, and a job's incoming area is
    locked before it gets its name, so none is seen here unlocked while in use."""
    for entry in [*folder.glob(f"{STAGING_PREFIX}*"), *folder.glob(f"{INCOMING_PREFIX}*")]:
        lock_path = entry / STAGING_LOCK
        try:
            handle = lock_path.open("a+")  # created if the backup was killed before it made its lock
        except OSError:
            shutil.rmtree(entry, ignore_errors=True)
            continue
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a backup is copying from it
            shutil.rmtree(entry, ignore_errors=True)


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def _tier_to_merge(rows: list[tuple[str, int]]) -> list[str]:
    tiers: dict[int, list[str]] = {}
    for name, chunks in rows:
        tiers.setdefault(int(math.log(max(chunks, 1), MERGE_FACTOR)), []).append(name)
    for tier in sorted(tiers):
        if len(tiers[tier]) >= MERGE_FACTOR:
            return tiers[tier]
    return []


def _batches(prepared: list[PreparedDocument], max_chunks: int = 250_000) -> Iterator[list[PreparedDocument]]:
    """Split a large write into several segments (one commit still attaches them all)."""
    batch: list[PreparedDocument] = []
    size = 0
    for item in prepared:
        batch.append(item)
        size += len(item.chunks)
        if size >= max_chunks:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
