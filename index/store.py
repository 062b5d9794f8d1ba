"""The persisted index: documents, chunk table, FAISS vectors, BM25, and the manifest.

On disk an index folder holds versions and a `current` symlink naming the live one. A new version is
written in full beside the old, then `current` is swapped with os.replace (atomic on POSIX), so a
killed process leaves either the old index or the new one, never a half-written one.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import faiss
import numpy as np

from index.chunking import Chunk
from index.documents import Document
from index.lexical import LexicalIndex, LexicalSettings
from index.manifest import REBUILD_HINT, IndexConfig, IndexMissingError, Manifest

CURRENT_LINK = "current"


@dataclass
class IndexStore:
    manifest: Manifest
    documents: dict[str, Document]
    chunks: list[Chunk]
    dense: faiss.IndexFlatIP
    lexical: LexicalIndex

    @property
    def vectors(self) -> np.ndarray:
        return self.dense.reconstruct_n(0, self.dense.ntotal) if self.dense.ntotal else np.zeros((0, self.dense.d), np.float32)

    @cached_property
    def rows_by_document(self) -> dict[str, list[int]]:
        rows: dict[str, list[int]] = {}
        for row, chunk in enumerate(self.chunks):
            rows.setdefault(chunk.doc_id, []).append(row)
        return rows

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
        built_at: str,
    ) -> IndexStore:
        dense = faiss.IndexFlatIP(config.dimension)
        if len(chunks):
            dense.add(np.ascontiguousarray(vectors, dtype=np.float32))
        lexical = LexicalIndex.build(lexical_texts, LexicalSettings(**config.lexical))
        manifest = Manifest(config, {d.id: d.sha256 for d in documents}, len(chunks), built_at)
        return cls(manifest, {d.id: d for d in documents}, chunks, dense, lexical)

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
        faiss.write_index(self.dense, str(folder / "dense.faiss"))
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
        dense = faiss.read_index(str(folder / "dense.faiss"))
        if dense.ntotal != len(chunks) or len(chunks) != manifest.chunk_count:
            raise IndexMissingError(f"the index at {index_dir} is inconsistent; {REBUILD_HINT}")
        lexical = LexicalIndex.load(folder / "lexical", LexicalSettings(**expected.lexical), len(chunks))
        return cls(manifest, documents, chunks, dense, lexical)


def _remove_stale_versions(index_dir: Path, keep: str) -> None:
    for entry in index_dir.iterdir():
        if entry.name.startswith(("v-", ".staging-")) and entry.name != keep:
            shutil.rmtree(entry, ignore_errors=True)
