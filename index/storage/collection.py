"""A collection on disk: a catalog (SQLite, WAL), immutable segments, and one writer at a time.

    <collection>/manifest.json     what builds this collection's contents (model, chunker, lexical settings)
    <collection>/catalog.sqlite    segments, live documents (id -> segment and local number), deletions, generation
    <collection>/segments/<name>/  immutable segments (see segment.py)
    <collection>/write.lock        held (flock) by the one process writing
    <collection>/files/<sha256>    the original files documents were parsed from (see originals.py)

A write stages a segment folder, then commits in one SQLite transaction that attaches the segment, points the
documents at it, records the old versions as deleted and bumps the generation. A killed writer leaves either the
old state or the new one; a staged folder that no commit references is removed by the next writer. Readers open a
snapshot of one generation and notice a newer one on their next query, whichever process committed it.
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from citeqa.index.progress import stop_if_asked
from citeqa.index.storage.manifest import REBUILD_HINT, IndexConfig, IndexMismatchError, IndexMissingError, Manifest
from citeqa.index.storage.originals import DEFAULT_GRACE_SECONDS, OriginalStore
from citeqa.index.storage.segment import PreparedDocument, SegmentInfo, SegmentReader, merge_segments, write_segment
from citeqa.index.storage.snapshot import LiveSegment, Snapshot
from citeqa.index.text.chunking import Chunk
from citeqa.index.text.documents import Document
from citeqa.index.text.lexical import LexicalSettings

MANIFEST_FILE = "manifest.json"
CATALOG_FILE = "catalog.sqlite"
SEGMENTS_DIR = "segments"
LOCK_FILE = "write.lock"
# Log-structured merge policy: segments are grouped by size tier (powers of MERGE_FACTOR chunks); a tier holding
# MERGE_FACTOR segments is merged into one, so a document is copied O(log n) times over its life.
MERGE_FACTOR = 8

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (name TEXT PRIMARY KEY, documents INTEGER, chunks INTEGER, units INTEGER,
    dense TEXT, created TEXT);
CREATE TABLE IF NOT EXISTS documents (id TEXT PRIMARY KEY, segment TEXT NOT NULL, local INTEGER NOT NULL,
    sha256 TEXT NOT NULL, chunks INTEGER NOT NULL, updated TEXT NOT NULL, source TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deletions (segment TEXT NOT NULL, local INTEGER NOT NULL, PRIMARY KEY (segment, local));
"""


class WriterBusyError(RuntimeError):
    """Another process (or request) holds the collection's write lock for longer than we were told to wait."""


@dataclass(frozen=True)
class DocumentRow:
    id: str
    segment: str
    local: int
    sha256: str
    chunks: int
    updated: str
    source: str


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


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Collection:
    """The front door to one collection's storage. Thread-safe: readers share snapshots, writers queue."""

    def __init__(self, folder: Path, manifest: Manifest) -> None:
        self.folder = folder
        self.manifest = manifest
        self.lexical = LexicalSettings(**manifest.config.lexical)
        self._db = sqlite3.connect(folder / CATALOG_FILE, check_same_thread=False, isolation_level=None, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db_lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._readers: dict[str, SegmentReader] = {}
        self._live: dict[str, tuple[int, LiveSegment]] = {}  # segment -> (deletions seen, its live masks)
        self._snapshot_lock = threading.Lock()
        self._thread_lock = threading.Lock()  # writers of this process queue here before taking the file lock

    # -- opening ----------------------------------------------------------------------------------

    @staticmethod
    def exists(folder: Path) -> bool:
        return (folder / MANIFEST_FILE).is_file() and (folder / CATALOG_FILE).is_file()

    @classmethod
    def read_manifest(cls, folder: Path) -> Manifest:
        if (folder / "current").is_symlink():
            raise IndexMismatchError(f"the index at {folder} has an older format (versioned folders); {REBUILD_HINT}")
        if not cls.exists(folder):
            raise IndexMissingError(f"no index at {folder}; build one with `citeqa index`")
        return Manifest.read(folder / MANIFEST_FILE)

    @classmethod
    def open(cls, folder: Path, expected: IndexConfig) -> Collection:
        """Open an existing collection; refuse (IndexMismatchError) one built with other settings."""
        manifest = cls.read_manifest(folder)
        manifest.require_compatible(expected)
        return cls(folder, manifest)

    @classmethod
    def create(cls, folder: Path, config: IndexConfig) -> Collection:
        """Create an empty collection (or open it, if another process just created one with the same settings)."""
        folder.mkdir(parents=True, exist_ok=True)
        with _file_lock(folder / LOCK_FILE, timeout=60):
            if not (folder / MANIFEST_FILE).is_file():
                if (folder / "current").is_symlink():
                    raise IndexMismatchError(f"the index at {folder} has an older format (versioned folders); {REBUILD_HINT}")
                (folder / SEGMENTS_DIR).mkdir(exist_ok=True)
                with contextlib.closing(sqlite3.connect(folder / CATALOG_FILE)) as db:
                    db.executescript(SCHEMA)
                    db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
                    db.execute("INSERT OR IGNORE INTO meta VALUES ('created', ?)", (now(),))
                    db.commit()
                tmp = folder / f".{MANIFEST_FILE}.tmp"
                Manifest(config, built_at=now()).write(tmp)
                os.replace(tmp, folder / MANIFEST_FILE)  # last: a folder with a manifest is a collection
        return cls.open(folder, config)

    @classmethod
    def remove(cls, folder: Path) -> None:
        """Delete a collection's folder, under its write lock so no writer is mid-commit."""
        with _file_lock(folder / LOCK_FILE, timeout=60):
            trash = folder.with_name(f".trash-{folder.name}-{os.getpid()}-{time.monotonic_ns()}")
            os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def close(self) -> None:
        with self._db_lock:
            self._db.close()

    # -- reading ----------------------------------------------------------------------------------

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._db_lock:
            return self._db.execute(sql, params).fetchall()

    def generation(self) -> int:
        return int(self._query("SELECT value FROM meta WHERE key = 'generation'")[0][0])

    def snapshot(self) -> Snapshot:
        """The last committed state; re-opened only when the generation moved (cheap to call per query)."""
        generation = self.generation()
        current = self._snapshot
        if current is not None and current.generation == generation:
            return current
        with self._snapshot_lock:
            if self._snapshot is None or self._snapshot.generation != generation:
                self._snapshot = self._open_snapshot()
            return self._snapshot

    def forget_snapshot(self) -> None:
        """Drop the cached snapshot (after changing query-time settings such as BM25's k1 and b)."""
        with self._snapshot_lock:
            self._snapshot = None

    def _open_snapshot(self) -> Snapshot:
        # One read transaction: the segment list, deletions and generation of one commit.
        with self._db_lock:
            self._db.execute("BEGIN")
            try:
                generation = int(self._db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
                names = [r[0] for r in self._db.execute("SELECT name FROM segments ORDER BY created, name")]
                deleted: dict[str, list[int]] = {}
                for segment, local in self._db.execute("SELECT segment, local FROM deletions"):
                    deleted.setdefault(segment, []).append(local)
            finally:
                self._db.execute("COMMIT")
        segments = []
        for name in names:
            reader = self._readers.get(name)
            if reader is None:
                reader = self._readers[name] = SegmentReader(self.folder / SEGMENTS_DIR / name)
            gone = deleted.get(name, [])
            cached = self._live.get(name)
            if cached is not None and cached[0] == len(gone):  # deletions only grow until a merge drops the segment
                segments.append(cached[1])
                continue
            segment = LiveSegment(reader, *reader.live_rows(gone)) if gone else LiveSegment(reader, None, None)
            self._live[name] = (len(gone), segment)
            segments.append(segment)
        for name in set(self._readers) - set(names):  # merged away; old snapshots keep their open files
            self._readers.pop(name)
            self._live.pop(name, None)
        return Snapshot(generation, segments, self.lexical)

    def documents(self) -> list[DocumentRow]:
        return [DocumentRow(*row) for row in self._query("SELECT * FROM documents ORDER BY id")]

    def document_row(self, doc_id: str) -> DocumentRow | None:
        rows = self._query("SELECT * FROM documents WHERE id = ?", (doc_id,))
        return DocumentRow(*rows[0]) if rows else None

    def hashes(self, ids: list[str] | None = None) -> dict[str, str]:
        """Content hash of each live document (of `ids` only, when given: a write reads what it touches)."""
        if ids is None:
            return dict(self._query("SELECT id, sha256 FROM documents"))
        found: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            marks = ",".join("?" * len(batch))
            found.update(self._query(f"SELECT id, sha256 FROM documents WHERE id IN ({marks})", tuple(batch)))
        return found

    def counts(self) -> tuple[int, int]:
        documents, chunks = self._query("SELECT COUNT(*), COALESCE(SUM(chunks), 0) FROM documents")[0]
        return int(documents), int(chunks)

    def document(self, doc_id: str) -> Document | None:
        entry = self.document_entry(doc_id)
        return entry[1] if entry else None

    def document_entry(self, doc_id: str) -> tuple[DocumentRow, Document] | None:
        """A document's catalog row and the document it points at, read together (one row, one version)."""
        for _ in range(3):  # a merge may drop the row's segment between the two reads: read the row again
            row = self.document_row(doc_id)
            if row is None:
                return None
            for segment in self.snapshot().segments:
                if segment.reader.name == row.segment:
                    return row, segment.reader.document(row.local)
            try:  # committed after the snapshot we hold: open the segment directly
                return row, SegmentReader(self.folder / SEGMENTS_DIR / row.segment).document(row.local)
            except (OSError, sqlite3.Error):
                continue
        return None

    def chunks(self, doc_id: str) -> list[Chunk]:
        row = self.document_row(doc_id)
        if row is None:
            return []
        reader = next((s.reader for s in self.snapshot().segments if s.reader.name == row.segment), None)
        reader = reader or SegmentReader(self.folder / SEGMENTS_DIR / row.segment)
        return [reader.chunk(int(r)) for r in np.flatnonzero(np.asarray(reader.chunks[:, 0]) == row.local)]

    def referenced_originals(self) -> set[str]:
        """The sha256 of every live document's original file (documents parsed from files)."""
        live: dict[str, set[int]] = {}
        for segment, local in self._query("SELECT segment, local FROM documents"):
            live.setdefault(segment, set()).add(int(local))
        readers = {s.reader.name: s.reader for s in self.snapshot().segments}
        referenced = set()
        for name, locals_ in live.items():
            reader = readers.get(name) or SegmentReader(self.folder / SEGMENTS_DIR / name)
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
        """The collection's one writer: a thread lock for this process, a file lock across processes."""
        if not self._thread_lock.acquire(timeout=timeout):
            raise WriterBusyError(f"the collection at {self.folder} is busy with another write; try again")
        try:
            with _file_lock(self.folder / LOCK_FILE, timeout=timeout):
                yield
        finally:
            self._thread_lock.release()

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
                sources = dict(self._query("SELECT id, source FROM documents"))
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
                write_segment(self.folder / SEGMENTS_DIR, batch, self.manifest.config.dimension) for batch in _batches(fresh)
            ]
            result.generation = self._commit(infos, sorted(removals))
        return result

    def _commit(self, infos: list[SegmentInfo], removals: list[str], dropped: list[str] = ()) -> int:
        stamp = now()
        with self._db_lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for info in infos:
                    db.execute(
                        "INSERT INTO segments VALUES (?, ?, ?, ?, ?, ?)",
                        (info.name, info.documents, info.chunks, info.units, info.dense, f"{stamp}|{time.time_ns():020d}"),
                    )
                    for local, (doc_id, sha, chunks, source) in enumerate(
                        zip(info.doc_ids, info.doc_hashes, info.doc_chunks, info.doc_sources, strict=True)
                    ):
                        old = db.execute("SELECT segment, local FROM documents WHERE id = ?", (doc_id,)).fetchone()
                        if old is not None and old[0] not in dropped:
                            db.execute("INSERT OR IGNORE INTO deletions VALUES (?, ?)", old)
                        db.execute(
                            "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (doc_id, info.name, local, sha, chunks, stamp, source),
                        )
                for doc_id in removals:
                    old = db.execute("SELECT segment, local FROM documents WHERE id = ?", (doc_id,)).fetchone()
                    if old is not None:
                        db.execute("INSERT OR IGNORE INTO deletions VALUES (?, ?)", old)
                        db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
                for name in dropped:
                    db.execute("DELETE FROM segments WHERE name = ?", (name,))
                    db.execute("DELETE FROM deletions WHERE segment = ?", (name,))
                generation = int(db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]) + 1
                db.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(generation),))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return generation

    def _collect_garbage(self) -> None:
        """Remove segment folders no commit references: staged by a killed writer, or merged away."""
        referenced = {r[0] for r in self._query("SELECT name FROM segments")}
        for entry in (self.folder / SEGMENTS_DIR).iterdir():
            if entry.name not in referenced:
                shutil.rmtree(entry, ignore_errors=True)

    # -- merging ----------------------------------------------------------------------------------

    def merge(self, timeout: float = 60.0, force: bool = False, stopping: threading.Event | None = None) -> int:
        """Merge segments that fill a size tier (or, with force, all of them) into one; returns how many were merged.

        Live documents are copied as they are stored (vectors, tables, postings, text): nothing is embedded or
        tokenised again. Once `stopping` is set, the merge raises WriteStopped at its next step before the commit;
        a segment it staged is removed by the next write."""
        with self.writing(timeout):
            rows = self._query("SELECT name, chunks FROM segments ORDER BY created, name")
            chosen = [name for name, _ in rows] if force else _tier_to_merge(rows)
            if len(chosen) < 2:
                return 0
            by_name = {s.reader.name: s.reader for s in self.snapshot().segments}
            parts = []
            for name in chosen:
                reader = by_name[name]
                live = np.zeros(reader.document_count, dtype=bool)
                live[[local for (local,) in self._query("SELECT local FROM documents WHERE segment = ?", (name,))]] = True
                parts.append((reader, live))
            stop_if_asked(stopping)
            segments = self.folder / SEGMENTS_DIR
            has_live = any(live.any() for _, live in parts)
            infos = [merge_segments(segments, parts, lambda: stop_if_asked(stopping))] if has_live else []
            stop_if_asked(stopping)
            self._commit(infos, [], dropped=chosen)
            self._collect_garbage()
            self.snapshot()  # open the merged segment here, in the background, rather than in the next search
            return len(chosen)


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


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float) -> Iterator[None]:
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
