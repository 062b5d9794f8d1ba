"""Writing an immutable segment: a batch of documents with everything needed to search and cite them.

A write never changes a segment; it adds a new one (and records deletions in the catalog), so the cost of a
write is the cost of the documents it brings. Merges later copy live documents of small segments into one
(segment_merge.py). Each segment is a self-contained folder, so it can be built by another process and attached
by a commit:

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
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from citeqa.index.storage.durable import fsync_dir, fsync_tree
from citeqa.index.storage.hnsw import GRAPH_FILE, build_hnsw
from citeqa.index.storage.postings import Postings
from citeqa.index.text.chunking import Chunk
from citeqa.index.text.documents import Document
from citeqa.index.text.spans import Span

SEGMENT_FILE = "segment.json"
DOCS_FILE = "docs.sqlite"
# From this many chunks on, a segment's dense side is an HNSW graph instead of an exact scan, and its sentence vectors
# are no longer scanned (see docs/storage.md and docs/benchmarks.md, "Storage at scale").
ANN_MIN_CHUNKS = 50_000
DOCS_TABLE = "CREATE TABLE docs (local INTEGER PRIMARY KEY, id TEXT, title TEXT, source TEXT, sha256 TEXT, text TEXT, meta TEXT)"


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


def write_segment(segments_dir: Path, prepared: list[PreparedDocument], dimension: int, durable: bool = True) -> SegmentInfo:
    """Write a new segment of freshly prepared documents."""
    return staged(segments_dir, lambda folder, name: _write(folder, name, prepared, dimension), durable)


def staged(segments_dir: Path, build: Callable[[Path, str], SegmentInfo], durable: bool = True) -> SegmentInfo:
    """Build a segment folder under a temporary name and rename it into place once complete.

    With `durable`, the segment's files and folder are synced before the rename, and segments/ after it, so once
    this returns a power cut cannot take back what the catalog commit that follows will name."""
    name = f"s-{uuid.uuid4().hex[:16]}"
    staging = segments_dir / f".tmp-{name}"
    staging.mkdir(parents=True)
    try:
        info = build(staging, name)
        if durable:
            fsync_tree(staging)
        os.replace(staging, segments_dir / name)
        if durable:
            fsync_dir(segments_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return info


def _ranges(starts: np.ndarray, ends: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each span [lo, hi), the contiguous range of items (sorted spans [starts, ends)) that overlap it."""
    first = np.searchsorted(ends, lo, side="right")
    last = np.searchsorted(starts, hi, side="left")
    return first, np.maximum(first, last)


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
    np.save(folder / "unit_vectors.npy", stack_vectors([p.unit_vectors for p in prepared], dimension))
    _write_documents(folder / DOCS_FILE, [p.document for p in prepared])
    postings = Postings.from_terms([terms for p in prepared for terms in p.chunk_terms])
    chunk_vectors = stack_vectors([p.chunk_vectors for p in prepared], dimension)
    return finish_segment(folder, name, chunks, units, chunk_vectors, postings)


def finish_segment(
    folder: Path, name: str, chunks: np.ndarray, units: np.ndarray, chunk_vectors: np.ndarray, postings: Postings
) -> SegmentInfo:
    """Write the tables, postings and dense index beside docs.sqlite and unit_vectors.npy, then segment.json."""
    np.save(folder / "chunks.npy", chunks)
    np.save(folder / "units.npy", units)
    postings.save(folder)
    dense = "flat"
    if len(chunks) >= ANN_MIN_CHUNKS:
        faiss.write_index(build_hnsw(chunk_vectors), str(folder / GRAPH_FILE))  # holds the chunk vectors
        dense = "hnsw"
    else:
        np.save(folder / "chunk_vectors.npy", chunk_vectors)
    with sqlite3.connect(f"file:{folder / DOCS_FILE}?mode=ro", uri=True) as db:
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


def stack_vectors(blocks: list[np.ndarray], dimension: int) -> np.ndarray:
    """The blocks' rows as one contiguous float32 array ((0, dimension) when there are none)."""
    blocks = [b for b in blocks if len(b)]
    return np.ascontiguousarray(np.vstack(blocks), dtype=np.float32) if blocks else np.zeros((0, dimension), np.float32)


def _write_documents(path: Path, documents: list[Document]) -> None:
    with sqlite3.connect(path) as db:
        db.execute(DOCS_TABLE)
        db.executemany(
            "INSERT INTO docs VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(i, d.id, d.title, d.source, d.sha256, d.text, json.dumps(d.meta)) for i, d in enumerate(documents)],
        )
    db.close()
