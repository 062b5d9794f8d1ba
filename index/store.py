"""The persisted index: documents, chunk table, FAISS vectors, BM25, and the manifest.

On disk an index folder holds versions and a `current` symlink naming the live one. A new version is
written in full beside the old, then `current` is swapped with os.replace (atomic on POSIX), so a
killed process leaves either the old index or the new one, never a half-written one.
"""

from __future__ import annotations

import bisect
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import faiss
import numpy as np

from citeqa.index.chunking import Chunk
from citeqa.index.documents import Document
from citeqa.index.lexical import LexicalIndex, LexicalSettings
from citeqa.index.manifest import REBUILD_HINT, IndexConfig, IndexMissingError, Manifest

CURRENT_LINK = "current"


class Unit(NamedTuple):
    """An evidence unit (a sentence, or a short one with the next): what a quote can be."""

    doc_id: str
    start: int
    end: int


def _rows_by_document(items: list[Chunk] | list[Unit]) -> dict[str, list[int]]:
    """Row numbers grouped by document id, in row order."""
    rows: dict[str, list[int]] = {}
    for row, item in enumerate(items):
        rows.setdefault(item.doc_id, []).append(row)
    return rows


def _all_vectors(index: faiss.IndexFlatIP) -> np.ndarray:
    return index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)


@dataclass
class IndexStore:
    manifest: Manifest
    documents: dict[str, Document]
    chunks: list[Chunk]
    dense: faiss.IndexFlatIP  # one vector per chunk, id = chunk row
    lexical: LexicalIndex
    units: list[Unit]
    unit_dense: faiss.IndexFlatIP  # one vector per evidence unit, id = unit row

    @cached_property
    def vectors(self) -> np.ndarray:
        return _all_vectors(self.dense)

    @cached_property
    def unit_vectors(self) -> np.ndarray:
        return _all_vectors(self.unit_dense)

    @cached_property
    def units_by_document(self) -> dict[str, list[int]]:
        return _rows_by_document(self.units)

    @cached_property
    def units_of_chunk(self) -> list[np.ndarray]:
        """For each chunk row, the unit rows that overlap it (units of a document are in text order)."""
        result = []
        for chunk in self.chunks:
            rows = self.units_by_document.get(chunk.doc_id, [])
            ends = [self.units[r].end for r in rows]
            first = bisect.bisect_right(ends, chunk.start)
            inside = [r for r in rows[first:] if self.units[r].start < chunk.end]
            result.append(np.asarray(inside, dtype=np.int64))
        return result

    @cached_property
    def chunks_of_unit(self) -> list[list[int]]:
        result: list[list[int]] = [[] for _ in self.units]
        for chunk_row, unit_rows in enumerate(self.units_of_chunk):
            for unit_row in unit_rows.tolist():
                result[unit_row].append(chunk_row)
        return result

    @cached_property
    def rows_by_document(self) -> dict[str, list[int]]:
        return _rows_by_document(self.chunks)

    @property
    def chunk_counts(self) -> dict[str, int]:
        return {doc_id: len(rows) for doc_id, rows in self.rows_by_document.items()}

    def chunks_of(self, doc_id: str) -> list[int]:
        return self.rows_by_document.get(doc_id, [])

    # -- building -------------------------------------------------------------------------------

    @classmethod
    def assemble(
        cls,
        config: IndexConfig,
        documents: list[Document],
        chunks: list[Chunk],
        vectors: np.ndarray,
        lexical_texts: list[str],
        units: list[Unit],
        unit_vectors: np.ndarray,
        built_at: str,
    ) -> IndexStore:
        lexical = LexicalIndex.build(lexical_texts, LexicalSettings(**config.lexical))
        manifest = Manifest(config, {d.id: d.sha256 for d in documents}, len(chunks), built_at)
        dense, unit_dense = _flat_index(vectors, config.dimension), _flat_index(unit_vectors, config.dimension)
        return cls(manifest, {d.id: d for d in documents}, chunks, dense, lexical, units, unit_dense)

    # -- persistence ----------------------------------------------------------------------------

    def save(self, index_dir: Path) -> Path:
        """Write a new version beside the live one and make it current atomically."""
        index_dir.mkdir(parents=True, exist_ok=True)
        version = index_dir / f"v-{uuid.uuid4().hex[:12]}"
        staging = index_dir / f".staging-{version.name}"
        staging.mkdir()
        try:
            self._write(staging)
            os.replace(staging, version)
            link = index_dir / f".{CURRENT_LINK}-{version.name}"
            link.symlink_to(version.name)
            os.replace(link, index_dir / CURRENT_LINK)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _remove_stale_versions(index_dir, keep=version.name)
        return version

    def _write(self, folder: Path) -> None:
        with (folder / "documents.jsonl").open("w", encoding="utf-8") as out:
            for doc in self.documents.values():
                out.write(
                    json.dumps({"id": doc.id, "title": doc.title, "source": doc.source, "sha256": doc.sha256, "text": doc.text})
                    + "\n"
                )
        with (folder / "chunks.jsonl").open("w", encoding="utf-8") as out:
            for chunk in self.chunks:
                out.write(json.dumps([chunk.doc_id, chunk.ordinal, chunk.start, chunk.end]) + "\n")
        with (folder / "units.jsonl").open("w", encoding="utf-8") as out:
            for unit in self.units:
                out.write(json.dumps(list(unit)) + "\n")
        faiss.write_index(self.dense, str(folder / "dense.faiss"))
        faiss.write_index(self.unit_dense, str(folder / "units.faiss"))
        self.lexical.save(folder / "lexical")
        self.manifest.write(folder / "manifest.json")  # last: a folder with a manifest is complete

    @classmethod
    def exists(cls, index_dir: Path) -> bool:
        return (index_dir / CURRENT_LINK / "manifest.json").is_file()

    @classmethod
    def read_manifest(cls, index_dir: Path) -> Manifest:
        if not cls.exists(index_dir):
            raise IndexMissingError(f"no index at {index_dir}; build one with `citeqa index`")
        return Manifest.read(index_dir / CURRENT_LINK / "manifest.json")

    @classmethod
    def load(cls, index_dir: Path, expected: IndexConfig) -> IndexStore:
        """Load the live version; refuse (IndexMismatchError) one built with other settings."""
        manifest = cls.read_manifest(index_dir)
        manifest.require_compatible(expected)
        folder = (index_dir / CURRENT_LINK).resolve()
        documents: dict[str, Document] = {}
        with (folder / "documents.jsonl").open(encoding="utf-8") as lines:
            for line in lines:
                row = json.loads(line)
                documents[row["id"]] = Document(row["id"], row["title"], row["source"], row["text"], row["sha256"])
        chunks: list[Chunk] = []
        with (folder / "chunks.jsonl").open(encoding="utf-8") as lines:
            for line in lines:
                doc_id, ordinal, start, end = json.loads(line)
                chunks.append(Chunk(doc_id, ordinal, start, end, documents[doc_id].text[start:end]))
        with (folder / "units.jsonl").open(encoding="utf-8") as lines:
            units = [Unit(*json.loads(line)) for line in lines]
        dense = faiss.read_index(str(folder / "dense.faiss"))
        unit_dense = faiss.read_index(str(folder / "units.faiss"))
        if dense.ntotal != len(chunks) or len(chunks) != manifest.chunk_count or unit_dense.ntotal != len(units):
            raise IndexMissingError(f"the index at {index_dir} is inconsistent; {REBUILD_HINT}")
        lexical = LexicalIndex.load(folder / "lexical", LexicalSettings(**expected.lexical), len(chunks))
        return cls(manifest, documents, chunks, dense, lexical, units, unit_dense)


def _flat_index(vectors: np.ndarray, dimension: int) -> faiss.IndexFlatIP:
    """Exact inner-product search; on L2-normalised vectors that is cosine similarity."""
    index = faiss.IndexFlatIP(dimension)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def _remove_stale_versions(index_dir: Path, keep: str) -> None:
    for entry in index_dir.iterdir():
        if entry.name.startswith(("v-", ".staging-")) and entry.name != keep:
            shutil.rmtree(entry, ignore_errors=True)
