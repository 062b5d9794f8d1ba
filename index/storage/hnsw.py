"""A large segment's dense side: an HNSW graph over its chunk vectors, built once, read in place, searched among
the live rows only."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

# HNSW with 32 neighbours per node, built looking at 40 candidates per insertion (faiss's default). A search looks at
# max(HNSW_SEARCH_DEPTH, k) candidates; a served search asks for RetrievalSettings.candidates, and that deeper search
# is what keeps recall against an exact scan high (figures in docs/storage.md).
HNSW_NEIGHBOURS = 32
HNSW_BUILD_DEPTH = 40
HNSW_SEARCH_DEPTH = 128
GRAPH_FILE = "dense.faiss"


def build_hnsw(vectors: np.ndarray) -> faiss.Index:
    """An HNSW graph over inner product (the vectors are normalised, so it ranks by cosine)."""
    index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_BUILD_DEPTH
    index.add(vectors)
    return index


def open_graph(path: Path) -> faiss.Index:
    """The graph memory-mapped in place (IO_FLAG_MMAP_IFC): its vectors stay in the page cache, shared by every
    process, and a search touches only the nodes it visits."""
    return faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)


def graph_vectors(index: faiss.Index) -> np.ndarray:
    """The vectors an HNSW graph was built on, as a read-only view of its memory-mapped storage (no copy; the view is
    valid while `index` lives, which the reader holding both ensures)."""
    # faiss's stubs type both the graph and its downcast storage as the base Index (they are IndexHNSWFlat and IndexFlat).
    storage = faiss.downcast_index(index.storage)  # type: ignore[attr-defined]
    view = faiss.rev_swig_ptr(storage.codes.data(), index.ntotal * index.d * 4).view(np.float32)  # type: ignore[attr-defined]
    view = view.reshape(index.ntotal, index.d)
    view.flags.writeable = False  # the mapping is read-only: a write would fault
    return view


def live_selector(live: np.ndarray) -> faiss.IDSelector:
    """A faiss selector admitting only the live rows, so an approximate search never spends its results on deleted
    chunks (asking for more results instead would cost as many extra as there are deletions)."""
    bitmap = np.packbits(live, bitorder="little")  # faiss tests bit (id & 7) of byte (id >> 3)
    selector = faiss.IDSelectorBitmap(len(live), faiss.swig_ptr(bitmap))
    # The selector reads the array; it must live as long as it does (a plain Python attribute faiss's stubs do not declare).
    selector.referenced_objects = [bitmap]  # type: ignore[attr-defined]
    return selector


def search_graph(
    index: faiss.Index, vector: np.ndarray, count: int, live: faiss.IDSelector | None
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) of up to `count` live rows nearest to `vector`, best first; `live` admits the rows still live
    (None: all are)."""
    # SearchParametersHNSW exists in faiss's SWIG module but is missing from its stubs.
    params = faiss.SearchParametersHNSW(sel=live, efSearch=max(HNSW_SEARCH_DEPTH, count))  # type: ignore[attr-defined]
    scores, found = index.search(vector.reshape(1, -1), min(count, index.ntotal), params=params)
    keep = found[0] >= 0
    return scores[0][keep], found[0][keep]
