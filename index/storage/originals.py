"""The original files behind documents, kept content-addressed in the collection: `<collection>/files/<sha256>`.

A citation points into the extracted text; the original lets a reader open the page the text came from. Files
are named by the sha256 of their bytes, so the same file added twice (or under two ids) is stored once, and a
name never changes meaning. A file is written to a temporary name and renamed into place, so a reader never
sees half a file; it is written before the commit that names it, so a committed document's original is
always there. Files no live document names any more (a deleted or replaced document's, or one written by a
write that never committed) are removed by `sweep`, once they are older than a grace period that covers any
write still in flight. With `durable` (the default), a stored file's bytes and its name in files/ are synced
before `put_*` returns, so a commit that names it after that survives a power cut with its original.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from citeqa.index.storage.durable import fsync_dir, fsync_file

ORIGINALS_DIR = "files"
INCOMING_DIR = ".incoming"  # uploads being received, one folder per request; renamed into files/ when stored
SHA256 = re.compile(r"[0-9a-f]{64}")
READ_BLOCK = 1 << 20
# An original written by a write that has not committed yet must survive a sweep: a day covers the slowest job.
DEFAULT_GRACE_SECONDS = 24 * 3600.0


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(READ_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


class OriginalStore:
    """One collection's original files."""

    def __init__(self, collection_folder: Path, durable: bool = True) -> None:
        self.folder = collection_folder / ORIGINALS_DIR
        self.durable = durable  # sync each stored file and the folder's entry before returning

    def path(self, sha256: str) -> Path | None:
        """Where the original with this hash is, or None when it is not stored (or the hash is malformed)."""
        if not SHA256.fullmatch(sha256):
            return None
        path = self.folder / sha256
        return path if path.is_file() else None

    def put_bytes(self, raw: bytes) -> str:
        """Store `raw` (once); returns its sha256."""
        sha256 = hashlib.sha256(raw).hexdigest()
        if not self._reuse(sha256):
            tmp = self._tmp_path()
            try:
                with tmp.open("wb") as handle:
                    handle.write(raw)
                    handle.flush()
                    if self.durable:
                        os.fsync(handle.fileno())
                self._rename(tmp, sha256)
            finally:
                tmp.unlink(missing_ok=True)
        return sha256

    def put_file(self, source: Path, sha256: str | None = None, move: bool = False) -> str:
        """Store the file at `source`; returns its sha256. With `move` (a temporary upload on the same disk), the
        file is renamed into place instead of copied."""
        sha256 = sha256 or sha256_file(source)
        if self._reuse(sha256):
            return sha256
        if move:
            if self.durable:
                fsync_file(source)  # an upload streamed to .incoming/ was never synced
            try:
                os.replace(source, self.folder / sha256)
            except OSError:
                pass  # another file system: copy instead
            else:
                if self.durable:
                    fsync_dir(self.folder)
                return sha256
        tmp = self._tmp_path()
        try:
            shutil.copyfile(source, tmp)
            if self.durable:
                fsync_file(tmp)
            self._rename(tmp, sha256)
        finally:
            tmp.unlink(missing_ok=True)
        return sha256

    def _rename(self, path: Path, sha256: str) -> None:
        """Move a complete file to its name; with `durable`, sync the folder so the name survives a power cut."""
        os.replace(path, self.folder / sha256)
        if self.durable:
            fsync_dir(self.folder)

    def incoming(self) -> Path:
        """A fresh folder for one upload's temporary files, on the same disk as the store (so storing is a rename).
        The caller removes it when done; a sweep removes any left behind by a stopped server."""
        folder = self.folder / INCOMING_DIR / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder

    def sweep(self, referenced: set[str] | Callable[[], set[str]], grace_seconds: float = DEFAULT_GRACE_SECONDS) -> list[str]:
        """Remove stored originals not in `referenced` and older than the grace period, and abandoned upload
        folders; returns the hashes removed. Call it while holding the collection's write lock, with the
        references of the committed state, so no commit can name a file between the listing and the removal.
        `referenced` may be a function: it is called only when some stored file is old enough to go, so a sweep
        after a write costs what the folder holds, not what the collection holds."""
        if not self.folder.is_dir():
            return []
        cutoff = time.time() - grace_seconds
        candidates = []
        for entry in self.folder.iterdir():
            if entry.name == INCOMING_DIR:
                for upload in entry.iterdir():
                    if _older(upload, cutoff):
                        shutil.rmtree(upload, ignore_errors=True)
            elif not _older(entry, cutoff):
                continue
            elif SHA256.fullmatch(entry.name):
                candidates.append(entry)
            elif entry.name.startswith(".tmp-"):
                entry.unlink(missing_ok=True)  # a write killed between writing and renaming
        if not candidates:
            return []
        keep = referenced() if callable(referenced) else referenced
        removed = []
        for entry in candidates:
            if entry.name not in keep:
                entry.unlink(missing_ok=True)
                removed.append(entry.name)
        return removed

    def _reuse(self, sha256: str) -> bool:
        """True when the file is stored already. Its time is refreshed, so a sweep that runs before the commit
        now naming it again (perhaps after a delete that left it unreferenced) keeps it."""
        if not self.folder.is_dir():
            self.folder.mkdir(parents=True, exist_ok=True)
            if self.durable:
                fsync_dir(self.folder.parent)  # files/ itself is a new name in the collection folder
        path = self.folder / sha256
        try:
            os.utime(path)
            return True
        except FileNotFoundError:
            return False

    def _tmp_path(self) -> Path:
        return self.folder / f".tmp-{uuid.uuid4().hex}"


def _older(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime <= cutoff
    except FileNotFoundError:
        return False
