"""The one write path of a collection: prepare what changed (outside the write lock), commit it (under the lock),
then merge small segments and sweep unreferenced originals.

`citeqa index` (a folder, `sync`), `citeqa add`, uploads and upload jobs (`ingest_files`), JSON documents
(`upsert`), deletes, and the eval's builds all write through here, by way of `Engine`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from citeqa.index.parsing.dispatch import ParseLimits
from citeqa.index.progress import NO_PROGRESS, Progress, Stage, WriteStopped
from citeqa.index.storage.collection import Collection, WriteResult
from citeqa.index.storage.originals import OriginalStore
from citeqa.index.storage.segment_writer import SegmentInfo
from citeqa.index.text.documents import Document
from citeqa.index.writing.builder import Preparer
from citeqa.index.writing.ingest import DEFAULT_LIMITS, IncomingFile, IngestReport, parse_files

log = logging.getLogger("citeqa.engine")


class Writer:
    def __init__(self, collection: Collection, preparer: Preparer, timeout: float) -> None:
        self.collection = collection
        self.preparer = preparer
        self.timeout = timeout  # seconds a write waits for the collection's write lock
        self._merging = threading.Lock()
        self._closing = threading.Event()  # a background merge stops at its next step once this is set
        # A server merges after each write in a background thread. A command that exits right after its writes
        # turns this off and calls `settle` before it exits (a daemon thread would be cut short at exit).
        self.background_merges = True

    @property
    def originals(self) -> OriginalStore:
        """The collection's original files (`<collection>/files/<sha256>`)."""
        return OriginalStore(self.collection.folder, self.collection.durable)

    def upsert(self, documents: list[Document], progress: Progress = NO_PROGRESS) -> WriteResult:
        """Add or replace documents in one commit. Splitting and embedding happen before the write lock is taken;
        `progress` hears of every stage (and may raise to stop before the commit)."""
        return self._write(documents, None, progress, self._merge_after)

    def sync(self, documents: list[Document], source_prefix: str | None, progress: Progress = NO_PROGRESS) -> WriteResult:
        """Bring the collection in line with a folder's `documents` in one commit: add and update them, and remove
        the documents whose source starts with `source_prefix` (that came from that folder) and are not among them.
        Documents from elsewhere (uploads, other folders) stay. Ids must be unique."""
        mirror = (source_prefix, {d.id for d in documents}) if source_prefix else None
        # A folder build merges in the foreground, before it reports: its caller usually exits right after.
        return self._write(documents, mirror, progress, self._merge_now)

    def ingest_files(
        self,
        files: Sequence[IncomingFile],
        source_prefix: str,
        limits: ParseLimits = DEFAULT_LIMITS,
        progress: Progress = NO_PROGRESS,
    ) -> IngestReport:
        """Parse `files`, store their originals, and add or replace their documents in one commit: one outcome per
        file, in order; a bad file fails alone. Raises what the commit raises (WriterBusyError, ...): then nothing
        was committed."""
        parsed = parse_files(self.originals, files, source_prefix, limits, progress)
        result = self.upsert(parsed.documents, progress=progress) if parsed.documents else None
        return parsed.report(result)

    def attach(
        self,
        segments: list[tuple[Path, SegmentInfo]],
        unchanged: dict[str, str],
        source_prefix: str | None,
        progress: Progress = NO_PROGRESS,
        background_merge: bool = False,
    ) -> WriteResult:
        """Commit segments prepared elsewhere (a Ray ingestion's, checked in an incoming area) in one commit, as
        `sync` commits a folder's: documents from `source_prefix` found in neither `segments` nor `unchanged` are
        removed. Merges in the foreground after, as a folder build does, or with `background_merge` as `upsert`
        does (a server's upload job)."""
        ids = [doc_id for _, info in segments for doc_id in info.doc_ids] + list(unchanged)
        mirror = (source_prefix, set(ids)) if source_prefix else None
        progress.begin(Stage.COMMITTING, 1)
        progress.files(ids, Stage.COMMITTING)
        result = self.collection.attach(segments, unchanged, timeout=self.timeout, mirror=mirror)
        progress.advance(Stage.COMMITTING)
        progress.end(Stage.COMMITTING)
        progress.files(ids, Stage.COMMITTED)
        (self._merge_after if background_merge else self._merge_now)(result)
        return result

    def delete(self, doc_ids: list[str]) -> WriteResult:
        result = self.collection.write([], doc_ids, timeout=self.timeout)
        self._merge_after(result)
        return result

    def merge(self, force: bool = False) -> int:
        return self.collection.merge(timeout=self.timeout, force=force, stopping=self._closing)

    def settle(self) -> None:
        """Merge small segments and sweep unreferenced originals now, in the foreground: what a command that wrote
        with background merges off does before it exits."""
        with self._merging:
            self._merge_and_sweep()

    def close(self) -> None:
        """Stop a background merge at its next step (before its commit: nothing is lost) and wait for it."""
        self._closing.set()
        with self._merging:
            pass

    def _write(
        self,
        documents: list[Document],
        mirror: tuple[str, set[str]] | None,
        progress: Progress,
        then: Callable[[WriteResult], None],
    ) -> WriteResult:
        current = self.collection.hashes([d.id for d in documents])
        changed = [d for d in documents if current.get(d.id) != d.sha256]
        prepared = self.preparer.prepare(changed, progress=progress)
        ids = [d.id for d in documents]
        progress.begin(Stage.COMMITTING, 1)
        progress.files(ids, Stage.COMMITTING)
        result = self.collection.write(prepared, [], timeout=self.timeout, mirror=mirror)
        progress.advance(Stage.COMMITTING)
        progress.end(Stage.COMMITTING)
        progress.files(ids, Stage.COMMITTED)
        result.unchanged = sorted(set(result.unchanged) | ({d.id for d in documents} - {d.id for d in changed}))
        then(result)
        return result

    def _merge_now(self, result: WriteResult) -> None:
        if result.changed:
            self.settle()

    def _merge_after(self, result: WriteResult) -> None:
        """Compact small segments after a write and sweep originals no commit names any more, off the request's
        path (one merge at a time); nothing when background merges are off."""
        if not self.background_merges or not result.changed or not self._merging.acquire(blocking=False):
            return

        def run() -> None:
            try:
                self._merge_and_sweep()
            except WriteStopped:
                log.info("background merge stopped: the collection is closing")
            except Exception:  # a failed merge or sweep leaves the committed state as it was
                log.exception("background merge failed")
            finally:
                self._merging.release()

        threading.Thread(target=run, name="citeqa-merge", daemon=True).start()

    def _merge_and_sweep(self) -> None:
        self.merge()
        # A replaced or deleted document may have left its original file unreferenced.
        self.collection.sweep_originals(timeout=self.timeout)
