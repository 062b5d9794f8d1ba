"""An immutable segment: a batch of documents with everything needed to search and cite them.

A write never changes a segment; it adds a new one (and records deletions in the catalog), so the cost of a
write is the cost of the documents it brings. Merges later copy live documents of small segments into one.
Each segment is a self-contained folder, so it can be built by another process and attached by a commit:

    segment.json        counts and the dense index kind
    docs.sqlite         the documents (id, title, source, sha256, text, metadata), read when needed
    chunks.npy          int64 [n, 6]: document, ordinal, start, end, first unit, end unit
    units.npy           int64 [m, 5]: document, start, end, first chunk, end chunk
    chunk_vectors.npy   float32 [n, d], memory-mapped (not in large segments: their graph holds the vectors)
    unit_vectors.npy    float32 [m, d], memory-mapped
    terms.json          the segment's vocabulary; term id = position
    term_ptr.npy, post_rows.npy, post_tfs.npy, lengths.npy    BM25 postings (CSR by term) and chunk lengths
    dense.faiss         only in large segments: an HNSW graph over chunk_vectors (an older segment's IVF index
                        here is ignored: it is scanned exactly until a merge rewrites it)
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from citeqa.index.text.chunking import Chunk
from citeqa.index.text.documents import Document
from citeqa.index.text.spans import Span

SEGMENT_FILE = "segment.json"
DOCS_TABLE = "CREATE TABLE docs (local INTEGER PRIMARY KEY, id TEXT, title TEXT, source TEXT, sha256 TEXT, text TEXT, meta TEXT)"
# From this many chunks on, a segment's dense side is an HNSW graph instead of an exact scan, and its sentence vectors
# are no longer scanned (see docs/storage.md and the scale benchmark in the README).
ANN_MIN_CHUNKS = 50_000
# HNSW with 32 neighbours per node, built looking at 40 candidates per insertion (faiss's default). A search looks at
# max(HNSW_SEARCH_DEPTH, k) candidates; a served search asks for 300 (RetrievalSettings.candidates). On 400k vectors
# recombined from real sentences, recall@10 against an exact scan is 0.967 at a depth of 300, against 0.939 at 128
# (docs/storage.md).
HNSW_NEIGHBOURS = 32
HNSW_BUILD_DEPTH = 40
HNSW_SEARCH_DEPTH = 128


@dataclass
class PreparedDocument:
    """A document split and embedded, ready to be written into a segment (the expensive part of a write)."""

    document: Document
    chunks: list[Chunk]
    units: list[Span]
    chunk_vectors: np.ndarray
    unit_vectors: np.ndarray
    chunk_terms: list[list[str]]  # the lexical tokens of each chunk's passage text


@dataclass
class SegmentInfo:
    name: str
    documents: int
    chunks: int
    units: int
    dense: str = "flat"
    doc_ids: list[str] = field(default_factory=list)  # local document number -> id
    doc_hashes: list[str] = field(default_factory=list)
    doc_chunks: list[int] = field(default_factory=list)
    doc_sources: list[str] = field(default_factory=list)


def expand_ranges(first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """The integers of every range [first[i], last[i]), concatenated in order (without a Python loop)."""
    sizes = last - first
    starts = np.cumsum(sizes) - sizes  # where each range's run begins in the result
    return np.repeat(first - starts, sizes) + np.arange(int(sizes.sum()), dtype=np.int64)


def _ranges(starts: np.ndarray, ends: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each span [lo, hi), the contiguous range of items (sorted spans [starts, ends)) that overlap it."""
    first = np.searchsorted(ends, lo, side="right")
    last = np.searchsorted(starts, hi, side="left")
    return first, np.maximum(first, last)


@dataclass
class Postings:
    """A segment's BM25 postings: CSR by term id (rows ascending within a term) and each chunk's length in terms."""

    vocabulary: list[str]  # term id -> term
    term_ptr: np.ndarray  # int64 [terms + 1]
    rows: np.ndarray  # int32, local chunk rows
    tfs: np.ndarray  # float32, raw term frequencies
    lengths: np.ndarray  # float32 [chunks]

    @classmethod
    def from_terms(cls, chunk_terms: list[list[str]]) -> Postings:
        vocabulary: dict[str, int] = {}
        term_ids: list[int] = []
        rows: list[int] = []
        tfs: list[int] = []
        lengths = np.zeros(len(chunk_terms), dtype=np.float32)
        for row, terms in enumerate(chunk_terms):
            lengths[row] = len(terms)
            for term, count in Counter(terms).items():
                term_ids.append(vocabulary.setdefault(term, len(vocabulary)))
                rows.append(row)
                tfs.append(count)
        return cls._sorted(list(vocabulary), np.asarray(term_ids, np.int64), np.asarray(rows, np.int64), np.asarray(tfs), lengths)

    @classmethod
    def _sorted(cls, vocabulary: list[str], terms: np.ndarray, rows: np.ndarray, tfs: np.ndarray, lengths) -> Postings:
        """From parallel (term id, row, tf) arrays in any order; terms without a posting are dropped."""
        counts = np.bincount(terms, minlength=len(vocabulary))
        used = counts > 0  # entries sorted by term id line up with the used terms in id order
        order = np.lexsort((rows, terms))
        return cls(
            [term for term, keep in zip(vocabulary, used.tolist(), strict=True) if keep],
            np.concatenate(([0], np.cumsum(counts[used]))).astype(np.int64),
            rows[order].astype(np.int32),
            tfs[order].astype(np.float32),
            np.asarray(lengths, dtype=np.float32),
        )

    def save(self, folder: Path) -> None:
        np.save(folder / "term_ptr.npy", self.term_ptr)
        np.save(folder / "post_rows.npy", self.rows)
        np.save(folder / "post_tfs.npy", self.tfs)
        np.save(folder / "lengths.npy", self.lengths)
        (folder / "terms.json").write_text(json.dumps(self.vocabulary), encoding="utf-8")


def write_segment(segments_dir: Path, prepared: list[PreparedDocument], dimension: int) -> SegmentInfo:
    """Write a new segment of freshly prepared documents."""
    return _staged(segments_dir, lambda folder, name: _write(folder, name, prepared, dimension))


def merge_segments(
    segments_dir: Path, parts: list[tuple[SegmentReader, np.ndarray]], check: Callable[[], None] = lambda: None
) -> SegmentInfo:
    """Write one segment holding the live documents of several, given as (reader, bool per local document).

    Everything is copied as arrays: tables renumbered, vectors and postings filtered, document rows copied from
    SQLite to SQLite. Nothing is parsed, embedded or tokenised again, and no per-document Python object is made,
    so a merge costs a pass over the data (plus the graph build for a large segment). `check` is called between
    steps and may raise to stop the merge before anything is renamed into place."""
    return _staged(segments_dir, lambda folder, name: _merge(folder, name, parts, check))


def _staged(segments_dir: Path, build: Callable[[Path, str], SegmentInfo]) -> SegmentInfo:
    """Build a segment folder under a temporary name and rename it into place once complete."""
    name = f"s-{uuid.uuid4().hex[:16]}"
    staging = segments_dir / f".tmp-{name}"
    staging.mkdir(parents=True)
    try:
        info = build(staging, name)
        os.replace(staging, segments_dir / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return info


def _write(folder: Path, name: str, prepared: list[PreparedDocument], dimension: int) -> SegmentInfo:
    chunk_rows: list[list[int]] = []
    unit_rows: list[list[int]] = []
    for local, item in enumerate(prepared):
        unit_base, chunk_base = len(unit_rows), len(chunk_rows)
        u_starts = np.array([u.start for u in item.units], dtype=np.int64)
        u_ends = np.array([u.end for u in item.units], dtype=np.int64)
        c_starts = np.array([c.start for c in item.chunks], dtype=np.int64)
        c_ends = np.array([c.end for c in item.chunks], dtype=np.int64)
        u_first, u_last = _ranges(u_starts, u_ends, c_starts, c_ends)
        c_first, c_last = _ranges(c_starts, c_ends, u_starts, u_ends)
        for i, chunk in enumerate(item.chunks):
            chunk_rows.append([local, chunk.ordinal, chunk.start, chunk.end, unit_base + u_first[i], unit_base + u_last[i]])
        for j, unit in enumerate(item.units):
            unit_rows.append([local, unit.start, unit.end, chunk_base + c_first[j], chunk_base + c_last[j]])
    chunks = np.asarray(chunk_rows, dtype=np.int64).reshape(-1, 6)
    units = np.asarray(unit_rows, dtype=np.int64).reshape(-1, 5)
    np.save(folder / "unit_vectors.npy", _stack([p.unit_vectors for p in prepared], dimension))
    _write_documents(folder / "docs.sqlite", [p.document for p in prepared])
    postings = Postings.from_terms([terms for p in prepared for terms in p.chunk_terms])
    chunk_vectors = _stack([p.chunk_vectors for p in prepared], dimension)
    return _finish(folder, name, chunks, units, chunk_vectors, postings)


def _merge(folder: Path, name: str, parts: list[tuple[SegmentReader, np.ndarray]], check: Callable[[], None]) -> SegmentInfo:
    keep_chunks = [live[reader.chunks[:, 0]] for reader, live in parts]
    keep_units = [live[reader.units[:, 0]] for reader, live in parts]
    dimension = int(parts[0][0].unit_vectors.shape[1])
    unit_count = sum(int(k.sum()) for k in keep_units)
    unit_vectors = np.lib.format.open_memmap(folder / "unit_vectors.npy", "w+", np.float32, (unit_count, dimension))
    chunk_tables, unit_tables, chunk_vectors, postings_parts = [], [], [], []
    bases = np.zeros(3, dtype=np.int64)  # documents, chunks, units written so far
    for (reader, live), keep_c, keep_u in zip(parts, keep_chunks, keep_units, strict=True):
        check()
        documents, chunks, units = _before_each(live), _before_each(keep_c), _before_each(keep_u)
        table = np.array(reader.chunks[keep_c])
        table[:, 0] = documents[table[:, 0]] + bases[0]
        table[:, 4:6] = units[table[:, 4:5]] + (table[:, 4:6] - table[:, 4:5]) + bases[2]
        chunk_tables.append(table)
        table = np.array(reader.units[keep_u])
        table[:, 0] = documents[table[:, 0]] + bases[0]
        table[:, 3:5] = chunks[table[:, 3:4]] + (table[:, 3:5] - table[:, 3:4]) + bases[1]
        unit_tables.append(table)
        unit_vectors[bases[2] : bases[2] + units[-1]] = reader.unit_vectors[keep_u]
        chunk_vectors.append(np.asarray(reader.chunk_vectors[keep_c], dtype=np.float32))
        postings_parts.append((reader, keep_c, chunks[:-1] + bases[1]))
        bases += (documents[-1], chunks[-1], units[-1])
    unit_vectors.flush()
    del unit_vectors
    check()
    _copy_documents(folder / "docs.sqlite", parts)
    postings = _merged_postings(postings_parts)
    check()
    return _finish(
        folder,
        name,
        np.concatenate(chunk_tables),
        np.concatenate(unit_tables),
        _stack(chunk_vectors, dimension),
        postings,
    )


def _before_each(keep: np.ndarray) -> np.ndarray:
    """For a bool mask, how many kept items come before each position, with the total appended (so position
    len(keep), an empty range's end, maps too)."""
    return np.concatenate(([0], np.cumsum(keep))).astype(np.int64)


def _merged_postings(parts: list[tuple[SegmentReader, np.ndarray, np.ndarray]]) -> Postings:
    """The postings of the kept chunks of several segments, on one vocabulary. Each part is (reader, bool per chunk,
    new row of each chunk)."""
    vocabulary: dict[str, int] = {}
    terms, rows, tfs, lengths = [], [], [], []
    for reader, keep, new_rows in parts:
        global_ids = np.array([vocabulary.setdefault(term, len(vocabulary)) for term in reader.vocabulary], dtype=np.int64)
        entry_terms = np.repeat(np.arange(len(global_ids)), np.diff(reader.term_ptr))
        local_rows = np.asarray(reader.post_rows, dtype=np.int64)
        alive = keep[local_rows]
        terms.append(global_ids[entry_terms[alive]])
        rows.append(new_rows[local_rows[alive]])
        tfs.append(np.asarray(reader.post_tfs)[alive])
        lengths.append(reader.lengths[keep])
    joined = (np.concatenate(part) for part in (terms, rows, tfs, lengths))
    return Postings._sorted(list(vocabulary), *joined)


def _copy_documents(path: Path, parts: list[tuple[SegmentReader, np.ndarray]]) -> None:
    """Copy the live documents' rows from each segment's docs.sqlite into a new one, numbered in order."""
    with sqlite3.connect(path) as db:
        db.execute(DOCS_TABLE)
        base = 0
        for reader, live in parts:
            db.execute("ATTACH DATABASE ? AS old", (f"file:{reader.folder / 'docs.sqlite'}?mode=ro",))
            kept = np.flatnonzero(live)
            db.execute("CREATE TEMP TABLE renumber (old INTEGER PRIMARY KEY, new INTEGER)")
            db.executemany("INSERT INTO renumber VALUES (?, ?)", zip(kept.tolist(), range(base, base + len(kept)), strict=True))
            db.execute(
                "INSERT INTO docs SELECT r.new, d.id, d.title, d.source, d.sha256, d.text, d.meta "
                "FROM old.docs d JOIN renumber r ON d.local = r.old ORDER BY r.new"
            )
            db.execute("DROP TABLE renumber")
            db.commit()
            db.execute("DETACH DATABASE old")
            base += len(kept)
    db.close()


def _finish(
    folder: Path, name: str, chunks: np.ndarray, units: np.ndarray, chunk_vectors: np.ndarray, postings: Postings
) -> SegmentInfo:
    """Write the tables, postings and dense index beside docs.sqlite and unit_vectors.npy, then segment.json."""
    np.save(folder / "chunks.npy", chunks)
    np.save(folder / "units.npy", units)
    postings.save(folder)
    dense = "flat"
    if len(chunks) >= ANN_MIN_CHUNKS:
        faiss.write_index(_build_hnsw(chunk_vectors), str(folder / "dense.faiss"))  # holds the chunk vectors
        dense = "hnsw"
    else:
        np.save(folder / "chunk_vectors.npy", chunk_vectors)
    with sqlite3.connect(f"file:{folder / 'docs.sqlite'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT id, sha256, source FROM docs ORDER BY local").fetchall()
    db.close()
    doc_chunks = np.bincount(chunks[:, 0], minlength=len(rows)).tolist() if len(rows) else []
    info = SegmentInfo(
        name, len(rows), len(chunks), len(units), dense,
        [r[0] for r in rows], [r[1] for r in rows], doc_chunks, [r[2] for r in rows],
    )  # fmt: skip
    meta = {"name": name, "documents": info.documents, "chunks": info.chunks, "units": info.units, "dense": dense}
    (folder / SEGMENT_FILE).write_text(json.dumps(meta), encoding="utf-8")  # last: a folder with it is complete
    return info


def _stack(blocks: list[np.ndarray], dimension: int) -> np.ndarray:
    blocks = [b for b in blocks if len(b)]
    return np.ascontiguousarray(np.vstack(blocks), dtype=np.float32) if blocks else np.zeros((0, dimension), np.float32)


def _build_hnsw(vectors: np.ndarray) -> faiss.Index:
    """An HNSW graph over inner product (the vectors are normalised, so it ranks by cosine)."""
    index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_BUILD_DEPTH
    index.add(vectors)
    return index


def live_selector(live: np.ndarray) -> faiss.IDSelector:
    """A faiss selector admitting only the live rows, so an approximate search never spends its results on deleted
    chunks (asking for more results instead would cost as many extra as there are deletions)."""
    bitmap = np.packbits(live, bitorder="little")  # faiss tests bit (id & 7) of byte (id >> 3)
    selector = faiss.IDSelectorBitmap(len(live), faiss.swig_ptr(bitmap))
    selector.referenced_objects = [bitmap]  # the selector reads the array; it must live as long as it does
    return selector


def _graph_vectors(index: faiss.Index) -> np.ndarray:
    """The vectors an HNSW graph was built on, as a read-only view of its memory-mapped storage (no copy; the view is
    valid while `index` lives, which the reader holding both ensures)."""
    storage = faiss.downcast_index(index.storage)
    view = faiss.rev_swig_ptr(storage.codes.data(), index.ntotal * index.d * 4).view(np.float32)
    view = view.reshape(index.ntotal, index.d)
    view.flags.writeable = False  # the mapping is read-only: a write would fault
    return view


def _mapped(path: Path) -> np.ndarray:
    """A read-only memory-mapped array, as a plain ndarray view: np.memmap's Python-level __getitem__ costs a
    microsecond or two per index, and quotes index unit rows thousands of times per query."""
    return np.asarray(np.load(path, mmap_mode="r"))


def _write_documents(path: Path, documents: list[Document]) -> None:
    with sqlite3.connect(path) as db:
        db.execute(DOCS_TABLE)
        db.executemany(
            "INSERT INTO docs VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(i, d.id, d.title, d.source, d.sha256, d.text, json.dumps(d.meta)) for i, d in enumerate(documents)],
        )
    db.close()


# Text of recently read documents kept per segment reader. A query quotes from about 20 chunks, and under load
# concurrent queries touch many documents; counting characters rather than documents bounds memory whatever the
# documents' sizes (a squad-dev-a or SciFact collection fits whole; a few long PDFs do not).
DOCUMENT_CACHE_CHARACTERS = 8_000_000


# Units whose terms a reader keeps. About 1 KB each; a server answering many different questions over a large
# segment would otherwise come to hold every unit's terms (gigabytes at a million chunks). A squad-dev-a or SciFact
# collection fits whole.
UNIT_TERMS_CACHED = 200_000


class _DocumentCache:
    """Least-recently-used documents by local number, bounded by their total text length; safe across threads."""

    def __init__(self, characters: int) -> None:
        self.characters = characters
        self._held = 0
        self._documents: OrderedDict[int, Document] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, local: int) -> Document | None:
        with self._lock:
            document = self._documents.get(local)
            if document is not None:
                self._documents.move_to_end(local)
            return document

    def put(self, local: int, document: Document) -> None:
        with self._lock:
            if local in self._documents:
                return
            self._documents[local] = document
            self._held += len(document.text)
            while self._held > self.characters and len(self._documents) > 1:
                _, dropped = self._documents.popitem(last=False)
                self._held -= len(dropped.text)


class SegmentReader:
    """A segment opened for reading: arrays memory-mapped, documents fetched from SQLite when asked for."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        meta = json.loads((folder / SEGMENT_FILE).read_text(encoding="utf-8"))
        self.name: str = meta["name"]
        self.dense_kind: str = meta.get("dense", "flat")
        self.chunks = _mapped(folder / "chunks.npy")
        self.units = _mapped(folder / "units.npy")
        self.unit_vectors = _mapped(folder / "unit_vectors.npy")
        self.term_ptr = _mapped(folder / "term_ptr.npy")
        self.post_rows = _mapped(folder / "post_rows.npy")
        self.post_tfs = _mapped(folder / "post_tfs.npy")
        self.lengths = np.load(folder / "lengths.npy")
        self.vocabulary = {term: i for i, term in enumerate(json.loads((folder / "terms.json").read_text(encoding="utf-8")))}
        self.ann: faiss.Index | None = None
        if self.dense_kind == "hnsw":
            # Memory-mapped in place (IO_FLAG_MMAP_IFC): the graph's vectors stay in the page cache, shared by every
            # process, and a search touches only the nodes it visits.
            self.ann = faiss.read_index(str(folder / "dense.faiss"), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
            self.chunk_vectors = _graph_vectors(self.ann)
        else:
            self.chunk_vectors = _mapped(folder / "chunk_vectors.npy")
        # Opened now, not on first use: a merge may remove the folder while an old snapshot still reads it.
        self._db = sqlite3.connect(f"file:{folder / 'docs.sqlite'}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        self._db_lock = threading.Lock()
        self.document_count: int = meta["documents"]
        self._documents = _DocumentCache(DOCUMENT_CACHE_CHARACTERS)
        # unit row -> stemmed terms: quotes tokenise each unit once, not once per query (see unit_terms)
        self._unit_terms: dict[int, tuple[str, ...]] = {}
        self._unit_terms_lock = threading.Lock()
        self.unit_terms_limit = UNIT_TERMS_CACHED

    @property
    def chunk_count(self) -> int:
        return len(self.chunks)

    def nearest(self, vector: np.ndarray, count: int, live: faiss.IDSelector | None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, local rows) of up to `count` live chunks nearest to `vector` through the segment's approximate
        index, best first; `live` admits the rows still live (None: all are)."""
        params = faiss.SearchParametersHNSW(sel=live, efSearch=max(HNSW_SEARCH_DEPTH, count))
        scores, found = self.ann.search(vector.reshape(1, -1), min(count, self.chunk_count), params=params)
        keep = found[0] >= 0
        return scores[0][keep], found[0][keep]

    def doc_id(self, local: int) -> str:
        """The id of a document, read when asked (a search needs a few; a list of all would cost start-up time and
        memory in proportion to the segment)."""
        cached = self._documents.get(local)
        if cached is not None:
            return cached.id
        with self._db_lock:
            return self._db.execute("SELECT id FROM docs WHERE local = ?", (local,)).fetchone()[0]

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
