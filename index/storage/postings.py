"""A segment's BM25 postings: built from chunks' terms, or from (term, row, tf) entries a merge gathered."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Postings:
    """CSR by term id (rows ascending within a term), raw term frequencies, and each chunk's length in terms."""

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
        entries = (np.asarray(term_ids, np.int64), np.asarray(rows, np.int64), np.asarray(tfs))
        return cls.from_entries(list(vocabulary), *entries, lengths)

    @classmethod
    def from_entries(
        cls, vocabulary: list[str], terms: np.ndarray, rows: np.ndarray, tfs: np.ndarray, lengths: np.ndarray
    ) -> Postings:
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
