"""The one BM25 formula (index/text/lexical.py) and the one way to find a segment's reader by name, on a real
collection written without an encoder (zero vectors: only the storage and lexical sides are exercised)."""

import math
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from citeqa.index.storage.collection import Collection
from citeqa.index.storage.manifest import IndexConfig
from citeqa.index.storage.segment_writer import PreparedDocument
from citeqa.index.text.chunking import ChunkerSettings, split_document
from citeqa.index.text.documents import make_document
from citeqa.index.text.lexical import LexicalSettings, LexicalTokenizer, bm25_idf, bm25_length_norms, bm25_saturation
from citeqa.index.text.spans import evidence_units

DIMENSION = 4
TOKENIZER = LexicalTokenizer(LexicalSettings())


def prepared(doc_id: str, text: str) -> PreparedDocument:
    document = make_document(doc_id, text, source=f"t/{doc_id}")
    chunks, units = split_document(document, ChunkerSettings()), evidence_units(document.text)
    return PreparedDocument(
        document,
        chunks,
        units,
        np.zeros((len(chunks), DIMENSION), np.float32),
        np.zeros((len(units), DIMENSION), np.float32),
        TOKENIZER.tokenize([c.text for c in chunks]),
    )


@pytest.fixture
def collection(tmp_path: Path) -> Collection:
    config = IndexConfig(
        model_name="none",
        model_fingerprint="none",
        dimension=DIMENSION,
        chunker=ChunkerSettings().as_dict(),
        lexical=LexicalSettings().as_dict(),
    )
    return Collection.create(tmp_path / "c", config)


def test_bm25_idf_is_lucenes_and_ranks_rare_terms_first() -> None:
    assert bm25_idf(10, 2) == math.log(1.0 + 8.5 / 2.5)
    weights = [bm25_idf(100, df) for df in range(101)]
    assert all(a > b for a, b in pairwise(weights))  # rarer is always weightier
    assert weights[-1] > 0  # a term in every text still counts a little, never against a text


def test_bm25_length_norm_and_saturation() -> None:
    lengths = np.array([5.0, 10.0, 20.0])
    norms = bm25_length_norms(lengths, 10.0, 0.9, 0.75)
    assert norms[1] == pytest.approx(0.9)  # a text of average length: k1 itself
    assert norms[0] < norms[1] < norms[2]  # longer texts need more repeats
    np.testing.assert_array_equal(bm25_length_norms(lengths, 10.0, 0.9, 0.0), np.full(3, 0.9))  # b = 0: no length
    shares = bm25_saturation(np.array([1.0, 2.0, 50.0]), np.full(3, 0.9))
    assert np.all(np.diff(shares) > 0) and shares[-1] < 1.0


def test_the_index_scores_with_the_one_formula(collection: Collection) -> None:
    collection.write([prepared("a", "Salmon swim up rivers."), prepared("b", "Rivers flow. Rivers and rivers.")], [])
    collection.write([prepared("c", "Trout live in lakes.")], [])
    snapshot = collection.snapshot()
    rows, scores = snapshot.lexical_query(["river"]).candidates(10)
    lengths = np.concatenate([s.reader.lengths for s in snapshot.segments]).astype(np.float32)
    norms = bm25_length_norms(lengths, snapshot.average_length, 0.9, 0.75)
    tfs = np.array([1.0, 3.0], dtype=np.float32)
    expected = bm25_idf(3, 2) * bm25_saturation(tfs, norms[rows])
    np.testing.assert_array_equal(scores, expected.astype(np.float32))
    assert snapshot.idf({"river", "unheard"}) == {"river": bm25_idf(3, 2), "unheard": bm25_idf(3, 0)}


def test_a_segments_reader_is_found_by_name(collection: Collection) -> None:
    collection.write([prepared("a", "Salmon swim up rivers.")], [])
    held = collection.snapshot()
    (first,) = [s.reader for s in held.segments]
    assert held.reader(first.name) is first and held.reader("s-none") is None
    assert collection.segment_reader(first.name) is first  # the current snapshot's, not opened again

    collection.write([prepared("b", "Trout live in lakes.")], [])
    row = collection.document_row("b")
    assert row is not None and held.reader(row.segment) is None  # committed after the held snapshot
    opened = collection.segment_reader(row.segment, held)  # opened directly from its folder
    assert opened.name == row.segment and opened.document(row.local).id == "b"
    assert collection.segment_reader(row.segment) is collection.snapshot().reader(row.segment)
    assert [c.text for c in collection.chunks("b")] == ["Trout live in lakes."]
    assert collection.document("a") is not None and collection.document("a").text == "Salmon swim up rivers."
    with pytest.raises(FileNotFoundError):
        collection.segment_reader("s-none")
