"""A segment opened for reading: its tables and vectors memory-mapped, its documents fetched from SQLite when asked."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

from citeqa.index.storage.document_cache import DOCUMENT_CACHE_CHARACTERS, DocumentCache
from citeqa.index.storage.hnsw import GRAPH_FILE, graph_vectors, open_graph, search_graph
from citeqa.index.storage.rows import expand_ranges
from citeqa.index.storage.segment_writer import DOCS_FILE, SEGMENT_FILE
from citeqa.index.text.chunking import Chunk
from citeqa.index.text.documents import Document

# Units whose terms a reader keeps. About 1 KB each; a server answering many different questions over a large
# segment would otherwise come to hold every unit's terms (gigabytes at a million chunks). A squad-dev-a or SciFact
# collection fits whole.
UNIT_TERMS_CACHED = 200_000
DOC_IDS_CACHED = 200_000  # document ids kept per segment reader (about 20 MB at most)


def mapped(path: Path) -> np.ndarray:
    """A read-only memory-mapped array, as a plain ndarray view: np.memmap's Python-level __getitem__ has a cost
    on every index, and quotes index unit rows thousands of times per query (docs/tuning.md)."""
    return np.asarray(np.load(path, mmap_mode="r"))


class SegmentReader:
    """A segment opened for reading: arrays memory-mapped, documents fetched from SQLite when asked for."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        meta = json.loads((folder / SEGMENT_FILE).read_text(encoding="utf-8"))
        self.name: str = meta["name"]
        self.dense_kind: str = meta.get("dense", "flat")
        self.chunks = mapped(folder / "chunks.npy")
        self.units = mapped(folder / "units.npy")
        self.unit_vectors = mapped(folder / "unit_vectors.npy")
        self.term_ptr = mapped(folder / "term_ptr.npy")
        self.post_rows = mapped(folder / "post_rows.npy")
        self.post_tfs = mapped(folder / "post_tfs.npy")
        self.lengths = np.load(folder / "lengths.npy")
        self.vocabulary = {term: i for i, term in enumerate(json.loads((folder / "terms.json").read_text(encoding="utf-8")))}
        self.ann: faiss.Index | None = None
        if self.dense_kind == "hnsw":
            self.ann = open_graph(folder / GRAPH_FILE)
            self.chunk_vectors = graph_vectors(self.ann)
        else:
            self.chunk_vectors = mapped(folder / "chunk_vectors.npy")
        # Opened now, not on first use: a merge may remove the folder while an old snapshot still reads it.
        self._db = sqlite3.connect(f"file:{folder / DOCS_FILE}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        self._db_lock = threading.Lock()
        self.document_count: int = meta["documents"]
        self._documents = DocumentCache(DOCUMENT_CACHE_CHARACTERS)
        # unit row -> stemmed terms: quotes tokenise each unit once, not once per query (see unit_terms)
        self._unit_terms: dict[int, tuple[str, ...]] = {}
        self._unit_terms_lock = threading.Lock()
        self.unit_terms_limit = UNIT_TERMS_CACHED
        self._doc_ids: dict[int, str] = {}  # local number -> id, as asked (doc_id)

    @property
    def chunk_count(self) -> int:
        return len(self.chunks)

    def nearest(self, vector: np.ndarray, count: int, live: faiss.IDSelector | None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, local rows) of up to `count` live chunks nearest to `vector` through the segment's approximate
        index, best first; `live` admits the rows still live (None: all are)."""
        assert self.ann is not None  # callers ask only a segment with a graph (reader.ann is not None)
        return search_graph(self.ann, vector, count, live)

    def doc_id(self, local: int) -> str:
        """The id of a document, read when asked (a search needs a few; a list of all would cost start-up time and
        memory in proportion to the segment) and kept: ranking documents by their best chunks asks for hundreds a
        query, again and again."""
        found = self._doc_ids.get(local)
        if found is not None:
            return found
        cached = self._documents.get(local)
        if cached is not None:
            found = cached.id
        else:
            with self._db_lock:
                found = str(self._db.execute("SELECT id FROM docs WHERE local = ?", (local,)).fetchone()[0])
        if len(self._doc_ids) >= DOC_IDS_CACHED:  # a bound, not an order: the next queries fill it again
            self._doc_ids.clear()
        self._doc_ids[local] = found
        return found

    def live_rows(self, gone: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Bool per chunk row and per unit row, False for the rows of the documents `gone` (local numbers). Rows are
        stored in document order, so each document's rows are found by bisection: the cost follows the deletions."""
        masks = []
        numbers = np.asarray(sorted(gone), dtype=np.int64)
        for table in (self.chunks, self.units):
            live = np.ones(len(table), dtype=bool)
            documents = table[:, 0]
            first, last = np.searchsorted(documents, numbers, "left"), np.searchsorted(documents, numbers, "right")
            live[expand_ranges(first, last)] = False
            masks.append(live)
        return masks[0], masks[1]

    def document(self, local: int) -> Document:
        cached = self._documents.get(local)
        if cached is not None:
            return cached
        with self._db_lock:
            row = self._db.execute("SELECT id, title, source, text, sha256, meta FROM docs WHERE local = ?", (local,)).fetchone()
        document = Document(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]) if row[5] else {})
        self._documents.put(local, document)
        return document

    def unit_terms(self, rows: list[int], tokenize: Callable[[list[str]], list[list[str]]]) -> list[tuple[str, ...]]:
        """The stemmed terms of each unit row (tuples, so per-unit statistics can be cached on them). Units not seen
        before are tokenised in one call: a query's first look at a few dozen units costs one call, not one each.
        When the kept terms would pass `unit_terms_limit`, they are dropped and the asked ones tokenised afresh."""
        with self._unit_terms_lock:
            kept = self._unit_terms
            wanted = set(rows)
            missing = sorted(row for row in wanted if row not in kept)
            if missing and len(kept) + len(missing) > self.unit_terms_limit:
                kept.clear()
                missing = sorted(wanted)
            if missing:
                texts = []
                for row in missing:
                    document, start, end = (int(x) for x in self.units[row, :3])
                    texts.append(self.document(document).text[start:end])
                for row, terms in zip(missing, tokenize(texts), strict=True):
                    kept[row] = tuple(terms)
            return [kept[row] for row in rows]

    @property
    def unit_terms_kept(self) -> int:
        return len(self._unit_terms)

    def original_hashes(self) -> dict[int, str]:
        """local number -> sha256 of the document's original file, for documents parsed from files."""
        with self._db_lock:
            rows = self._db.execute(
                "SELECT local, json_extract(meta, '$.original.sha256') FROM docs WHERE json_valid(meta)"
            ).fetchall()
        return {int(local): sha for local, sha in rows if isinstance(sha, str)}

    def chunk(self, row: int) -> Chunk:
        local, ordinal, start, end = (int(x) for x in self.chunks[row, :4])
        document = self.document(local)
        return Chunk(document.id, ordinal, start, end, document.text[start:end])

    def close(self) -> None:
        self._db.close()
