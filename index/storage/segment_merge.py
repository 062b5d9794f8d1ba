"""Merging segments: the live documents of several segments copied, as arrays, into one new segment."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np

from citeqa.index.storage.postings import Postings
from citeqa.index.storage.segment_reader import SegmentReader
from citeqa.index.storage.segment_writer import DOCS_FILE, DOCS_TABLE, SegmentInfo, finish_segment, stack_vectors, staged


def merge_segments(
    segments_dir: Path,
    parts: list[tuple[SegmentReader, np.ndarray]],
    check: Callable[[], None] = lambda: None,
    durable: bool = True,
) -> SegmentInfo:
    """Write one segment holding the live documents of several, given as (reader, bool per local document).

    Everything is copied as arrays: tables renumbered, vectors and postings filtered, document rows copied from
    SQLite to SQLite. Nothing is parsed, embedded or tokenised again, and no per-document Python object is made,
    so a merge costs a pass over the data (plus the graph build for a large segment). `check` is called between
    steps and may raise to stop the merge before anything is renamed into place. `durable`: as in `staged`."""
    return staged(segments_dir, lambda folder, name: _merge(folder, name, parts, check), durable)


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
    _copy_documents(folder / DOCS_FILE, parts)
    postings = _merged_postings(postings_parts)
    check()
    return finish_segment(
        folder,
        name,
        np.concatenate(chunk_tables),
        np.concatenate(unit_tables),
        stack_vectors(chunk_vectors, dimension),
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
    return Postings.from_entries(list(vocabulary), *joined)


def _copy_documents(path: Path, parts: list[tuple[SegmentReader, np.ndarray]]) -> None:
    """Copy the live documents' rows from each segment's docs.sqlite into a new one, numbered in order."""
    with sqlite3.connect(path) as db:
        db.execute(DOCS_TABLE)
        base = 0
        for reader, live in parts:
            db.execute("ATTACH DATABASE ? AS old", (f"file:{reader.folder / DOCS_FILE}?mode=ro",))
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
