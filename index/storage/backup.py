"""Backing up a collection at one generation while it keeps serving and writing, and restoring such a backup.

A backup is a folder that is itself a collection, plus a `backup.json`:

    <dest>/<name>/manifest.json, catalog.sqlite, segments/<s-…>/…, files/<sha256>   as in the collection
    <dest>/<name>/backup.json    generation, collection name, when, citeqa version, the manifest's facts, and the
                                 size and sha256 of every file, which a restore checks

Taking one. Segments are immutable and original files are named by their content, so one generation is the
catalog of that generation plus the files it names. Garbage collection (merged-away segments, unreferenced
originals) is the only thing that removes them, and it runs under the collection's write lock. So, under that lock:
an online copy of the catalog (SQLite's backup API, which reads one transaction) and hard links to every segment
file and every stored original, in a staging folder inside the collection (the same file system, so a link costs
a directory entry and the lock is held for milliseconds). After the lock is released, the files the copied catalog
names are copied out of the staging folder to the destination at leisure: a merge or a sweep may unlink the live
names meanwhile, but the staged links keep the data. Where a link cannot be made, the file is copied instead,
under the lock (slower, still consistent). A folder with the backup's name appears only once it is complete.

Restoring one checks that this installation would open it (model, encoder, format, chunking and BM25 settings:
IndexConfig.differences), copies it beside the target verifying every file's hash, and swaps it in under the
target's write lock; the previous folder goes to a trash name and is removed. A process that had the previous
collection open keeps serving the previous contents until it is restarted, and its writes are refused
(Collection.writing) rather than committed into the folder that was swapped out.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from citeqa import __version__
from citeqa.index.storage.catalog import CATALOG_FILE, now
from citeqa.index.storage.collection import LOCK_FILE, MANIFEST_FILE, SEGMENTS_DIR, STAGING_LOCK, STAGING_PREFIX, Collection
from citeqa.index.storage.durable import fsync_dir, fsync_tree
from citeqa.index.storage.manifest import IndexConfig, IndexMismatchError, Manifest
from citeqa.index.storage.originals import ORIGINALS_DIR, SHA256
from citeqa.index.storage.segment_writer import DOCS_FILE
from citeqa.index.storage.write_lock import file_lock

BACKUP_FILE = "backup.json"
BACKUP_FORMAT = 1  # the layout of a backup folder and its backup.json
COPY_BLOCK = 1 << 20


class BackupError(RuntimeError):
    """A backup that cannot be taken or restored, with the reason."""


@dataclass
class BackupInfo:
    """What backup.json says: which collection, which generation, what built it, and every file's size and hash."""

    collection: str
    generation: int
    created: str
    citeqa_version: str
    manifest: dict[str, Any]
    documents: int
    segments: list[str]
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # path inside the backup -> {bytes, sha256}
    missing_originals: list[str] = field(default_factory=list)  # named by a live document, absent from files/
    backup_format: int = BACKUP_FORMAT
    lock_ms: float = 0.0  # how long the collection's write lock was held to take it

    @property
    def total_bytes(self) -> int:
        return sum(int(entry["bytes"]) for entry in self.files.values())

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True), encoding="utf-8")

    @classmethod
    def read(cls, folder: Path) -> BackupInfo:
        path = folder / BACKUP_FILE
        if not path.is_file():
            raise BackupError(f"{folder} is not a citeqa backup (no {BACKUP_FILE})")
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            info = cls(**payload)
        except (OSError, ValueError, TypeError) as exc:
            raise BackupError(f"the backup description {path} is unreadable ({exc})") from exc
        if info.backup_format > BACKUP_FORMAT:
            raise BackupError(f"the backup at {folder} has format {info.backup_format}; this citeqa reads up to {BACKUP_FORMAT}")
        return info


# -- taking a backup ----------------------------------------------------------------------------------------------


def backup_collection(collection: Collection, name: str, dest_root: Path, timeout: float = 60.0) -> BackupInfo:
    """Copy `collection` at its current generation to `dest_root/name`, while other processes keep writing.

    The write lock is held only while the catalog is copied and the files linked into a staging folder; the copy
    to the destination happens after. Raises BackupError when `dest_root/name` exists already."""
    dest = dest_root / name
    if dest.exists():
        raise BackupError(f"{dest} exists already; back up into another folder or remove it first")
    dest_root.mkdir(parents=True, exist_ok=True)
    with _staging(collection, timeout) as (staging, lock_ms):
        partial = dest_root / f".{name}.partial-{uuid.uuid4().hex[:12]}"
        partial.mkdir()
        try:
            info = _copy_out(staging, partial, name)
            info.lock_ms = lock_ms
            info.write(partial / BACKUP_FILE)
            if collection.durable:
                fsync_tree(partial)
            os.replace(partial, dest)  # last: a folder under the backup's name is a complete backup
            if collection.durable:
                fsync_dir(dest_root)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    return info


@contextlib.contextmanager
def _staging(collection: Collection, timeout: float) -> Iterator[tuple[Path, float]]:
    """A staging folder holding one generation: the catalog copied, every segment file and original linked.
    Yields it with the milliseconds the write lock was held; removes it afterwards."""
    staging = collection.folder / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    lock_handle = None
    try:
        with collection.writing(timeout):
            started = time.perf_counter()
            staging.mkdir()
            # Locked before the write lock is released: garbage collection (under the write lock) removes only
            # staging folders whose lock is free, so this one stays until we are done, however long the copy.
            lock_handle = (staging / STAGING_LOCK).open("a+")
            fcntl.flock(lock_handle, fcntl.LOCK_EX)
            _copy_catalog(collection.folder / CATALOG_FILE, staging / CATALOG_FILE)
            shutil.copyfile(collection.folder / MANIFEST_FILE, staging / MANIFEST_FILE)  # written once, at creation
            for segment in _catalog_segments(staging / CATALOG_FILE):
                source = collection.folder / SEGMENTS_DIR / segment
                for path in source.iterdir():
                    if path.is_file():
                        _link_or_copy(path, staging / SEGMENTS_DIR / segment / path.name)
            originals = collection.folder / ORIGINALS_DIR
            if originals.is_dir():
                # Every stored original, referenced or not: listing a folder is cheaper than reading which ones the
                # live documents name, and that is worked out after the lock is released.
                for path in originals.iterdir():
                    if SHA256.fullmatch(path.name):
                        _link_or_copy(path, staging / ORIGINALS_DIR / path.name)
            lock_ms = (time.perf_counter() - started) * 1000
        yield staging, lock_ms
    finally:
        if lock_handle is not None:
            lock_handle.close()
        shutil.rmtree(staging, ignore_errors=True)


def _copy_catalog(source: Path, target: Path) -> None:
    """An online copy of the catalog as of its last commit (SQLite's backup API reads one consistent state, WAL
    included), left as one self-contained file (rollback journal; opening it as a collection turns WAL back on)."""
    with contextlib.closing(sqlite3.connect(source, timeout=60)) as src, contextlib.closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links, or a link count at its limit: copy (under the lock)
        shutil.copyfile(source, target)


def _catalog_segments(catalog: Path) -> list[str]:
    with contextlib.closing(_read_only(catalog)) as db:
        return [row[0] for row in db.execute("SELECT name FROM segments ORDER BY created, name")]


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write: `immutable` also keeps SQLite from creating journal files beside a file
    that is a hard link to a live segment's."""
    return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)


def _catalog_facts(catalog: Path) -> tuple[int, list[str], dict[str, set[int]]]:
    """Generation, segments (oldest first) and each segment's live local numbers, from a catalog file."""
    with contextlib.closing(_read_only(catalog)) as db:
        generation = int(db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
        segments = [row[0] for row in db.execute("SELECT name FROM segments ORDER BY created, name")]
        live: dict[str, set[int]] = {}
        for segment, local in db.execute("SELECT segment, local FROM documents"):
            live.setdefault(segment, set()).add(int(local))
    return generation, segments, live


def _referenced_originals(staging: Path, live: dict[str, set[int]]) -> set[str]:
    """The sha256 of every live document's original file, read from the staged segments' documents."""
    referenced: set[str] = set()
    for segment, locals_ in live.items():
        with contextlib.closing(_read_only(staging / SEGMENTS_DIR / segment / DOCS_FILE)) as db:
            rows = db.execute("SELECT local, json_extract(meta, '$.original.sha256') FROM docs WHERE json_valid(meta)")
            referenced |= {sha for local, sha in rows if isinstance(sha, str) and int(local) in locals_}
    return referenced


def _copy_out(staging: Path, target: Path, name: str) -> BackupInfo:
    """Copy what the staged catalog names to `target`, hashing as it copies; returns the backup's description."""
    generation, segments, live = _catalog_facts(staging / CATALOG_FILE)
    referenced = _referenced_originals(staging, live)
    stored = {p.name for p in (staging / ORIGINALS_DIR).iterdir()} if (staging / ORIGINALS_DIR).is_dir() else set()
    paths = [Path(CATALOG_FILE), Path(MANIFEST_FILE)]
    for segment in segments:
        paths += sorted(p.relative_to(staging) for p in (staging / SEGMENTS_DIR / segment).iterdir())
    paths += [Path(ORIGINALS_DIR) / sha for sha in sorted(referenced & stored)]
    files = {}
    for relative in paths:
        size, digest = _copy_hashed(staging / relative, target / relative)
        files[relative.as_posix()] = {"bytes": size, "sha256": digest}
    manifest = json.loads((staging / MANIFEST_FILE).read_text(encoding="utf-8"))
    return BackupInfo(
        collection=name,
        generation=generation,
        created=now(),
        citeqa_version=__version__,
        manifest=manifest,
        documents=sum(len(locals_) for locals_ in live.values()),
        segments=segments,
        files=files,
        missing_originals=sorted(referenced - stored),
    )


def _copy_hashed(source: Path, target: Path) -> tuple[int, str]:
    """Copy one file, returning its size and sha256 (one read serves both)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as reader, target.open("wb") as writer:
        for block in iter(lambda: reader.read(COPY_BLOCK), b""):
            digest.update(block)
            writer.write(block)
            size += len(block)
    return size, digest.hexdigest()


# -- restoring ----------------------------------------------------------------------------------------------------


def check_compatible(source: Path, expected: IndexConfig) -> BackupInfo:
    """The backup's description, once its manifest is one this installation would open (IndexMismatchError
    naming each difference otherwise)."""
    info = BackupInfo.read(source)
    manifest = Manifest.read(source / MANIFEST_FILE)
    differences = expected.differences(manifest.config)
    if differences:
        raise IndexMismatchError(
            f"the backup at {source} was built with other settings than this installation's ("
            + "; ".join(differences)
            + "); restore it where those settings are in force (its manifest.json lists them)"
        )
    return info


def restore_collection(
    source: Path, target: Path, expected: IndexConfig, replace: bool = False, timeout: float = 60.0, durable: bool = True
) -> BackupInfo:
    """Restore the backup at `source` as the collection folder `target`.

    Refuses (IndexMismatchError) a backup this installation would not open, and (BackupError) an existing
    collection unless `replace`, or a damaged backup (a file whose hash differs from backup.json's). The copy is
    made and checked beside the target first, then swapped in under the target's write lock."""
    info = check_compatible(source, expected)
    if target.exists() and any(target.iterdir()):
        if not Collection.exists(target):  # never move aside a folder that is not a collection, --replace or not
            raise BackupError(f"{target} exists and is not a collection; restore elsewhere or remove it first")
        if not replace:
            raise BackupError(f"a collection exists at {target}; pass --replace to replace it with the backup")
    target.parent.mkdir(parents=True, exist_ok=True)
    incoming = target.parent / f".restore-{target.name}-{uuid.uuid4().hex[:12]}"
    incoming.mkdir()
    try:
        _copy_checked(source, incoming, info)
        if durable:
            fsync_tree(incoming)
        _swap_in(incoming, target, timeout)
        if durable:
            fsync_dir(target.parent)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
    return info


def _copy_checked(source: Path, target: Path, info: BackupInfo) -> None:
    """Copy every file backup.json lists, checking its size and hash, then check the catalog agrees with it."""
    for relative, expected in info.files.items():
        path = Path(relative)
        if path.is_absolute() or ".." in path.parts:
            raise BackupError(f"the backup at {source} names a file outside it: {relative}")
        try:
            size, digest = _copy_hashed(source / path, target / path)
        except FileNotFoundError:
            raise BackupError(f"the backup at {source} is incomplete: {relative} is missing") from None
        if size != expected["bytes"] or digest != expected["sha256"]:
            raise BackupError(f"the backup at {source} is damaged: {relative} differs from what {BACKUP_FILE} records")
    (target / SEGMENTS_DIR).mkdir(exist_ok=True)
    generation, segments, _ = _catalog_facts(target / CATALOG_FILE)
    if generation != info.generation:
        raise BackupError(f"the backup at {source} is damaged: its catalog is at generation {generation}, not {info.generation}")
    for segment in segments:
        if not (target / SEGMENTS_DIR / segment / "segment.json").is_file():
            raise BackupError(f"the backup at {source} is damaged: segment {segment} is missing")


def _swap_in(incoming: Path, target: Path, timeout: float) -> None:
    """Put `incoming` in `target`'s place. An existing collection is moved aside under its write lock, so no
    writer is part-way through a commit, and removed after."""
    if not target.exists():
        os.replace(incoming, target)
        return
    trash = target.with_name(f".trash-{target.name}-{os.getpid()}-{time.monotonic_ns()}")
    with file_lock(target / LOCK_FILE, timeout=timeout):
        os.replace(target, trash)
        os.replace(incoming, target)
    shutil.rmtree(trash, ignore_errors=True)


def is_backup(folder: Path) -> bool:
    return (folder / BACKUP_FILE).is_file()


def backups_in(folder: Path) -> dict[str, Path]:
    """The collection backups at `folder`: itself when it is one, else the backups one level down, by the name
    each was taken from."""
    if is_backup(folder):
        return {BackupInfo.read(folder).collection: folder}
    found = {}
    for child in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not child.name.startswith(".") and is_backup(child):
            found[BackupInfo.read(child).collection] = child
    return found
