"""The snapshot a collection's readers share: re-opened only when a commit moved the generation, with segment
readers and live masks carried over from the previous one (segments never change; their deletions only grow)."""

from __future__ import annotations

import threading
from pathlib import Path

from citeqa.index.storage.catalog import Catalog
from citeqa.index.storage.segment_reader import SegmentReader
from citeqa.index.storage.snapshot import LiveSegment, Snapshot
from citeqa.index.text.lexical import LexicalSettings


class SnapshotCache:
    def __init__(self, catalog: Catalog, segments_dir: Path) -> None:
        self.catalog = catalog
        self.segments_dir = segments_dir
        self._snapshot: Snapshot | None = None
        self._readers: dict[str, SegmentReader] = {}
        self._live: dict[str, tuple[int, LiveSegment]] = {}  # segment -> (deletions seen, its live masks)
        self._lock = threading.Lock()

    def current(self, lexical: LexicalSettings) -> Snapshot:
        """The last committed state; re-opened only when the generation moved (cheap to call per query)."""
        generation = self.catalog.generation()
        current = self._snapshot
        if current is not None and current.generation == generation:
            return current
        with self._lock:
            if self._snapshot is None or self._snapshot.generation != generation:
                self._snapshot = self._open(lexical)
            return self._snapshot

    def forget(self) -> None:
        """Drop the kept snapshot, so the next one is opened afresh (with new query-time settings)."""
        with self._lock:
            self._snapshot = None

    def _open(self, lexical: LexicalSettings) -> Snapshot:
        state = self.catalog.state()
        segments = []
        for name in state.segments:
            reader = self._readers.get(name)
            if reader is None:
                reader = self._readers[name] = SegmentReader(self.segments_dir / name)
            gone = state.deleted.get(name, [])
            cached = self._live.get(name)
            if cached is not None and cached[0] == len(gone):  # deletions only grow until a merge drops the segment
                segments.append(cached[1])
                continue
            segment = LiveSegment(reader, *reader.live_rows(gone)) if gone else LiveSegment(reader, None, None)
            self._live[name] = (len(gone), segment)
            segments.append(segment)
        for name in set(self._readers) - set(state.segments):  # merged away; old snapshots keep their open files
            self._readers.pop(name)
            self._live.pop(name, None)
        return Snapshot(state.generation, segments, lexical)
