"""A collection's catalog: one SQLite file (WAL) naming its segments, its live documents, its deletions and the
generation that every commit bumps.

    segments    name, counts, dense kind, when created (the order snapshots list them in)
    documents   id -> segment and local number, with its sha256, chunk count, update time and source
    deletions   (segment, local number) of every replaced or removed version still inside a segment
    meta        generation, created
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from citeqa.index.storage.segment_writer import SegmentInfo

CATALOG_FILE = "catalog.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (name TEXT PRIMARY KEY, documents INTEGER, chunks INTEGER, units INTEGER,
    dense TEXT, created TEXT);
CREATE TABLE IF NOT EXISTS documents (id TEXT PRIMARY KEY, segment TEXT NOT NULL, local INTEGER NOT NULL,
    sha256 TEXT NOT NULL, chunks INTEGER NOT NULL, updated TEXT NOT NULL, source TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deletions (segment TEXT NOT NULL, local INTEGER NOT NULL, PRIMARY KEY (segment, local));
"""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class DocumentRow:
    id: str
    segment: str
    local: int
    sha256: str
    chunks: int
    updated: str
    source: str


@dataclass(frozen=True)
class CatalogState:
    """What one commit left: its generation, its segments in order, and each segment's deleted local numbers."""

    generation: int
    segments: list[str]
    deleted: dict[str, list[int]]


class Catalog:
    """The catalog of one collection, shared by the threads of a process (one connection, one lock)."""

    def __init__(self, folder: Path, durable: bool = True) -> None:
        self._db = sqlite3.connect(folder / CATALOG_FILE, check_same_thread=False, isolation_level=None, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        # Every commit (writes and merges alike) goes through this one connection. In WAL mode, synchronous=FULL
        # syncs the WAL at each commit, so a commit that has returned survives a power cut, not only a crash of the
        # process (SQLite's documentation of PRAGMA synchronous); NORMAL stays consistent but may lose the last
        # commits to a power cut. Not durable (CITEQA_DURABLE_WRITES=false) trades that for fewer fsyncs.
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._lock = threading.Lock()

    @staticmethod
    def exists(folder: Path) -> bool:
        return (folder / CATALOG_FILE).is_file()

    @staticmethod
    def create(folder: Path) -> None:
        """An empty catalog at generation 0 (kept as it is if one is there)."""
        with contextlib.closing(sqlite3.connect(folder / CATALOG_FILE)) as db:
            db.executescript(SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
            db.execute("INSERT OR IGNORE INTO meta VALUES ('created', ?)", (now(),))
            db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- reading ----------------------------------------------------------------------------------

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def generation(self) -> int:
        return int(self.query("SELECT value FROM meta WHERE key = 'generation'")[0][0])

    def state(self) -> CatalogState:
        """The segment list, deletions and generation of one commit, read in one transaction."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                generation = int(self._db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
                names = [r[0] for r in self._db.execute("SELECT name FROM segments ORDER BY created, name")]
                deleted: dict[str, list[int]] = {}
                for segment, local in self._db.execute("SELECT segment, local FROM deletions"):
                    deleted.setdefault(segment, []).append(local)
            finally:
                self._db.execute("COMMIT")
        return CatalogState(generation, names, deleted)

    def documents(self) -> list[DocumentRow]:
        return [DocumentRow(*row) for row in self.query("SELECT * FROM documents ORDER BY id")]

    def document_page(self, after: str | None, limit: int) -> tuple[list[DocumentRow], int]:
        """Up to `limit` live documents whose ids sort after `after` (from the first when None), in id order, and
        how many live documents there are, read in one transaction. Keyset paging on the primary key: each page
        reads only its own rows, and a page that starts after the previous page's last id neither repeats nor
        skips a document that stayed put, whatever was added or removed in between."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                if after is None:
                    rows = self._db.execute("SELECT * FROM documents ORDER BY id LIMIT ?", (limit,)).fetchall()
                else:
                    query = "SELECT * FROM documents WHERE id > ? ORDER BY id LIMIT ?"
                    rows = self._db.execute(query, (after, limit)).fetchall()
                total = int(self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])
            finally:
                self._db.execute("COMMIT")
        return [DocumentRow(*row) for row in rows], total

    def document_row(self, doc_id: str) -> DocumentRow | None:
        rows = self.query("SELECT * FROM documents WHERE id = ?", (doc_id,))
        return DocumentRow(*rows[0]) if rows else None

    def hashes(self, ids: list[str] | None = None) -> dict[str, str]:
        """Content hash of each live document (of `ids` only, when given: a write reads what it touches)."""
        if ids is None:
            return dict(self.query("SELECT id, sha256 FROM documents"))
        found: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            marks = ",".join("?" * len(batch))
            found.update(self.query(f"SELECT id, sha256 FROM documents WHERE id IN ({marks})", tuple(batch)))
        return found

    def sources(self) -> dict[str, str]:
        """Each live document's source."""
        return dict(self.query("SELECT id, source FROM documents"))

    def counts(self) -> tuple[int, int]:
        documents, chunks = self.query("SELECT COUNT(*), COALESCE(SUM(chunks), 0) FROM documents")[0]
        return int(documents), int(chunks)

    def live_locals(self) -> dict[str, set[int]]:
        """Segment name -> the local numbers of its live documents."""
        live: dict[str, set[int]] = {}
        for segment, local in self.query("SELECT segment, local FROM documents"):
            live.setdefault(segment, set()).add(int(local))
        return live

    def segment_locals(self, segment: str) -> list[int]:
        """The local numbers of one segment's live documents."""
        return [local for (local,) in self.query("SELECT local FROM documents WHERE segment = ?", (segment,))]

    def segment_sizes(self) -> list[tuple[str, int]]:
        """(name, chunks) of every segment, oldest first."""
        return self.query("SELECT name, chunks FROM segments ORDER BY created, name")

    def segment_names(self) -> set[str]:
        return {r[0] for r in self.query("SELECT name FROM segments")}

    # -- committing -------------------------------------------------------------------------------

    def commit(self, infos: list[SegmentInfo], removals: list[str], dropped: Sequence[str] = ()) -> int:
        """In one transaction: attach the segments `infos` and point their documents at them, remove the documents
        `removals`, drop the segments `dropped` (merged away), and bump the generation, which is returned. Each
        version replaced or removed is recorded as deleted in its segment."""
        stamp = now()
        with self._lock:
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
