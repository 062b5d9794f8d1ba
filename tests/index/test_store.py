"""The collection on disk: segments, catalog, snapshots, merges, the writer lock, and refusing what does not fit."""

import json
import threading
from contextlib import closing
from itertools import pairwise
from pathlib import Path

import faiss
import numpy as np
import pytest

from citeqa.index.engine import Engine, EngineSettings
from citeqa.index.models.embedding import Embedder
from citeqa.index.progress import NO_PROGRESS, Progress
from citeqa.index.storage.collection import MANIFEST_FILE, SEGMENTS_DIR, Collection
from citeqa.index.storage.document_cache import DocumentCache
from citeqa.index.storage.manifest import FORMAT_VERSION, IndexMismatchError, Manifest
from citeqa.index.storage.write_lock import WriterBusyError
from citeqa.index.text.chunking import ChunkerSettings
from citeqa.index.text.documents import make_document
from citeqa.index.text.spans import Span
from citeqa.index.writing.builder import (
    POOLED_CONTEXT_SHARE,
    PROGRESS_SLICE_CHARACTERS,
    IndexSettings,
    Preparer,
    best_holder,
    passage_text,
    progress_slices,
    summarize,
)
from citeqa.index.writing.ingest import load_folder
from tests.conftest import SEED_ID


def build(corpus: Path, index_dir: Path, embedder: Embedder, settings: IndexSettings | None = None, rebuild: bool = False):
    """`citeqa index` of a folder: through the engine's one write path, as a build summary."""
    report = load_folder(corpus)
    engine_settings = EngineSettings(index=settings or IndexSettings())
    with closing(Engine.create(index_dir, engine_settings, embedder, rebuild=rebuild)) as engine:
        result = engine.sync(report.documents, report.origin)
        return summarize(result, len(report.documents), engine.stats().chunks, 0.0)


def live_segments(index_dir: Path) -> list[str]:
    return sorted(p.name for p in (index_dir / SEGMENTS_DIR).iterdir())


def test_manifest_records_what_built_the_index(corpus_dir: Path, tmp_path: Path, embedder: Embedder) -> None:
    build(corpus_dir, tmp_path / "idx", embedder)
    manifest = json.loads((tmp_path / "idx" / MANIFEST_FILE).read_text())
    assert manifest["model"]["fingerprint"] == embedder.fingerprint
    assert len(manifest["model"]["fingerprint"]) == 64
    assert manifest["model"]["dimension"] == 384
    assert manifest["chunker"]["chunk_size"] == ChunkerSettings().chunk_size
    assert manifest["format_version"] == FORMAT_VERSION
    collection = Collection.open(tmp_path / "idx", IndexSettings().config_for(embedder))
    assert collection.hashes() == {SEED_ID: load_folder(corpus_dir).documents[0].sha256}


def test_reindexing_unchanged_documents_is_a_no_op(corpus_dir: Path, tmp_path: Path, embedder: Embedder) -> None:
    index_dir = tmp_path / "idx"
    first = build(corpus_dir, index_dir, embedder)
    segments = live_segments(index_dir)
    second = build(corpus_dir, index_dir, embedder)
    assert first.added == [SEED_ID] and first.written
    assert second.unchanged == [SEED_ID] and not second.written
    assert live_segments(index_dir) == segments


def test_editing_a_document_replaces_all_its_chunks_and_deleting_drops_them(
    corpus_dir: Path, tmp_path: Path, embedder: Embedder
) -> None:
    index_dir = tmp_path / "idx"
    (corpus_dir / "extra.md").write_text("# Extra\n\nBananas are yellow fruit grown in the tropics.", encoding="utf-8")
    build(corpus_dir, index_dir, embedder)
    seed = corpus_dir / SEED_ID
    seed.write_text("A short replacement text about penguins in Antarctica.", encoding="utf-8")

    summary = build(corpus_dir, index_dir, embedder)
    engine = Engine.open(index_dir, EngineSettings(), embedder)
    assert summary.updated == [SEED_ID] and summary.unchanged == ["extra.md"]
    assert [c.text for c in engine.chunks(SEED_ID)] == ["A short replacement text about penguins in Antarctica."]
    assert engine.stats().chunks == 2
    assert engine.search("penguins in Antarctica", 3)[0].document.id == SEED_ID
    # the old version's chunks are gone from search, though its segment is still on disk until a merge
    assert all("Shoygu" not in p.hit.chunk.text for p in engine.search("what did Shoygu allege?", 5))

    seed.unlink()
    summary = build(corpus_dir, index_dir, embedder)
    assert summary.removed == [SEED_ID]
    assert [d.id for d in engine.documents()] == ["extra.md"]
    assert all(p.document.id == "extra.md" for p in engine.search("penguins", 5))


def test_bm25_does_not_depend_on_how_documents_are_split_into_segments(tmp_path: Path, embedder: Embedder) -> None:
    texts = {
        f"d{i}.txt": f"Document {i} talks about {word} and rivers." for i, word in enumerate(["salmon", "trout", "eels", "pike"])
    }
    documents = [make_document(i, t, source=f"t/{i}") for i, t in texts.items()]
    preparer = Preparer(embedder, IndexSettings())
    one = Engine.create(tmp_path / "one", EngineSettings(), embedder)
    one.collection.write(preparer.prepare(documents), [])
    many = Engine.create(tmp_path / "many", EngineSettings(), embedder)
    for document in documents:
        many.collection.write(preparer.prepare([document]), [])
    assert len(many.collection.snapshot().segments) == 4
    for query in ("salmon rivers", "trout", "document eels"):
        a = [(p.document.id, round(p.hit.lexical, 5)) for p in one.search(query, 4, mode=None)]
        b = [(p.document.id, round(p.hit.lexical, 5)) for p in many.search(query, 4, mode=None)]
        assert a == b


def test_idf_is_kept_per_snapshot_and_follows_deletes(tmp_path: Path, embedder: Embedder) -> None:
    import math

    from citeqa.index.storage import snapshot as snapshot_module

    texts = {f"d{i}.txt": f"Document {i} talks about {'salmon' if i < 3 else 'trout'} and rivers." for i in range(4)}
    engine = Engine.create(tmp_path / "idx", EngineSettings(), embedder)
    preparer = Preparer(embedder, IndexSettings())
    for doc_id, text in texts.items():  # one segment each: frequencies add up across segments
        engine.collection.write(preparer.prepare([make_document(doc_id, text, source=f"t/{doc_id}")]), [])

    def lucene(frequency: int, chunks: int) -> float:
        return math.log(1 + (chunks - frequency + 0.5) / (frequency + 0.5))

    before = engine.collection.snapshot()
    engine.search("salmon rivers", 2)  # BM25 fills the cache with the query's terms
    assert set(before._idf) >= {"salmon", "river"}
    assert before.idf({"salmon", "trout", "unheard"}) == {
        "salmon": lucene(3, 4),
        "trout": lucene(1, 4),
        "unheard": lucene(0, 4),
    }
    engine.collection.write([], ["d0.txt"])  # a delete: a new snapshot, with its own statistics
    after = engine.collection.snapshot()
    assert after.idf({"salmon"}) == {"salmon": lucene(2, 3)} and before.idf({"salmon"}) == {"salmon": lucene(3, 4)}

    snapshot_module.IDF_CACHED_TERMS, kept = 3, snapshot_module.IDF_CACHED_TERMS
    try:  # a full cache starts over rather than grow, and still answers right
        words = {"salmon", "trout", "rivers", "document", "talks", "about", "eels"}
        assert after.idf(words) == {w: lucene(after._live_frequency(w), 3) for w in words}
        assert len(after._idf) <= 3
    finally:
        snapshot_module.IDF_CACHED_TERMS = kept


def test_unit_terms_across_segments_are_each_units_own_tokens_and_kept(tmp_path: Path, embedder: Embedder) -> None:
    """Units are tokenised in one call per segment the first time a query sees them; each keeps its own terms."""
    texts = {f"d{i}.txt": f"Salmon swim up river {i}. Trout stay in lakes {i}. Pike hunt at dawn." for i in range(3)}
    engine = Engine.create(tmp_path / "many", EngineSettings(), embedder)
    preparer = Preparer(embedder, IndexSettings())
    for doc_id, text in texts.items():
        engine.collection.write(preparer.prepare([make_document(doc_id, text, source=f"t/{doc_id}")]), [])
    snapshot = engine.collection.snapshot()
    assert len(snapshot.segments) == 3
    tokenize = engine.tokenizer.tokenize
    expected = []  # each unit's text tokenised alone, in global row order
    for segment in snapshot.segments:
        for document, start, end in segment.reader.units[:, :3].tolist():
            expected.append(tuple(tokenize([segment.reader.document(document).text[start:end]])[0]))
    assert len(expected) >= 9 and any("river" in terms for terms in expected)
    shuffled = np.arange(len(expected))[::-1].copy()  # out of order, across every segment
    terms = snapshot.unit_terms(shuffled[: len(expected) // 2], tokenize)  # half of them first
    terms = snapshot.unit_terms(shuffled, tokenize)  # then all: some kept, some new
    assert terms == [expected[row] for row in shuffled.tolist()]
    again = snapshot.unit_terms(shuffled, tokenize)
    assert all(a is b for a, b in zip(terms, again, strict=True))  # kept, not tokenised again


def test_a_reader_keeps_unit_terms_within_its_limit_and_still_answers_right(tmp_path: Path, embedder: Embedder) -> None:
    text = " ".join(f"Sentence {n} is about topic{n} and river{n}." for n in range(12))
    engine = Engine.create(tmp_path / "one", EngineSettings(), embedder)
    engine.collection.write(Preparer(embedder, IndexSettings()).prepare([make_document("d.txt", text, source="t/d")]), [])
    reader = engine.collection.snapshot().segments[0].reader
    tokenize = engine.tokenizer.tokenize
    expected = [tuple(tokenize([reader.document(d).text[a:b]])[0]) for d, a, b in reader.units[:, :3].tolist()]
    assert len(expected) >= 10
    reader.unit_terms_limit = 5
    assert reader.unit_terms([0, 1, 2, 3], tokenize) == expected[:4] and reader.unit_terms_kept == 4
    assert reader.unit_terms([4, 5, 6, 7], tokenize) == expected[4:8]  # 8 would pass the limit: the first 4 go
    assert reader.unit_terms_kept == 4
    assert reader.unit_terms([3, 5, 9], tokenize) == [expected[3], expected[5], expected[9]]
    assert reader.unit_terms_kept <= 5


def test_pruned_bm25_candidates_hold_the_exact_best_chunks_with_exact_scores(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above EXHAUSTIVE_POSTINGS (lowered here to 0), frequent query terms are only looked up for chunks that rarer
    terms found: the candidates must still hold the exact top `count`, every score exact, across two segments and
    a deletion."""
    from citeqa.index.storage import lexical_query

    rng = np.random.default_rng(7)
    common, rare = ["river", "water", "stone", "bridge"], [f"token{i}" for i in range(40)]
    texts = [" ".join(rng.choice(common, 6).tolist() + rng.choice(rare, 2).tolist()) + "." for _ in range(240)]
    engine = Engine.create(tmp_path / "c", EngineSettings(), embedder)
    documents = [make_document(f"d{i}.txt", text, f"d{i}.txt") for i, text in enumerate(texts)]
    engine.collection.write(engine.preparer.prepare(documents[:120]), [])
    engine.collection.write(engine.preparer.prepare(documents[120:]), ["d5.txt"])
    snapshot = engine.collection.snapshot()
    assert len(snapshot.segments) == 2
    monkeypatch.setattr(lexical_query, "EXHAUSTIVE_POSTINGS", 0)
    pruned_somewhere = False
    for query in ("river water token3", "stone bridge river token17 token21", "water token5 token5"):
        lexical = snapshot.lexical_query(engine.tokenizer.tokenize([query])[0])
        every_rows, every_scores = lexical._accumulate(lexical.postings)  # exhaustive, as below the threshold
        rows, scores = lexical.candidates(10)
        pruned_somewhere |= len(rows) < len(every_rows)
        best = every_rows[np.argsort(-every_scores, kind="stable")[:10]]
        assert set(best.tolist()) <= set(rows.tolist())
        assert np.allclose(scores, every_scores[np.searchsorted(every_rows, rows)], rtol=1e-5)
        assert np.allclose(lexical.scores_of(every_rows), every_scores, rtol=1e-5)
        assert snapshot.doc_id(int(best[0])) != "d5.txt"
    assert pruned_somewhere
    engine.close()


def test_a_merge_keeps_every_live_document_and_drops_deleted_ones(tmp_path: Path, embedder: Embedder) -> None:
    engine = Engine.create(tmp_path / "c", EngineSettings(), embedder)
    for i in range(5):
        engine.collection.write(engine.preparer.prepare([make_document(f"n{i}.txt", f"Note {i} about topic {i}.", "t")]), [])
    engine.collection.write([], ["n2.txt"])
    before = {p.document.id: p.quote.text for p in engine.search("note about topic", 10)}
    assert engine.merge(force=True) == 5
    assert len(engine.collection.snapshot().segments) == 1 and len(live_segments(tmp_path / "c")) == 1
    after = {p.document.id: p.quote.text for p in engine.search("note about topic", 10)}
    assert after == before and "n2.txt" not in after and len(after) == 4


def test_a_merged_segment_holds_exactly_what_writing_its_live_documents_afresh_would(tmp_path: Path, embedder: Embedder) -> None:
    """A merge copies arrays (tables renumbered, postings filtered onto one vocabulary, document rows copied in
    SQLite) instead of re-preparing documents: the result must equal a segment written from the live documents."""
    texts = {f"d{i}.md": f"# Part {i}\n\nThe {['ferry', 'mill', 'lock'][i % 3]} log {i} notes tide {i * 7}. " * (1 + i % 3)
             for i in range(10)}  # fmt: skip
    docs = {doc_id: make_document(doc_id, text, doc_id) for doc_id, text in texts.items()}
    docs["d3.md"] = make_document("d3.md", "# Part 3\n\nThe weir was rebuilt. Its gate opens at noon.", "d3.md")
    merged = Engine.create(tmp_path / "merged", EngineSettings(), embedder)
    merged.background_merges = False
    prepare = merged.preparer.prepare
    merged.collection.write(prepare([make_document(f"d{i}.md", texts[f"d{i}.md"], f"d{i}.md") for i in range(5)]), [])
    merged.collection.write(prepare([docs[f"d{i}.md"] for i in range(5, 10)]), [])
    merged.collection.write(prepare([docs["d3.md"]]), ["d7.md"])
    assert merged.merge(force=True) == 3
    order = ["d0.md", "d1.md", "d2.md", "d4.md", "d5.md", "d6.md", "d8.md", "d9.md", "d3.md"]
    fresh = Engine.create(tmp_path / "fresh", EngineSettings(), embedder)
    fresh.collection.write(prepare([docs[doc_id] for doc_id in order]), [])
    (a,), (b,) = (e.collection.snapshot().segments for e in (merged, fresh))
    a, b = a.reader, b.reader
    assert [a.doc_id(i) for i in range(9)] == [b.doc_id(i) for i in range(9)] == order
    assert [a.document(i) for i in range(9)] == [b.document(i) for i in range(9)]
    for table in ("chunks", "units", "lengths"):
        assert np.array_equal(getattr(a, table), getattr(b, table)), table
    for table in ("chunk_vectors", "unit_vectors"):
        assert np.allclose(getattr(a, table), getattr(b, table), atol=1e-5), table

    def postings(reader) -> dict[str, list[tuple[int, float]]]:
        ptr, rows, tfs = reader.term_ptr, reader.post_rows.tolist(), reader.post_tfs.tolist()
        return {
            t: list(zip(rows[ptr[i] : ptr[i + 1]], tfs[ptr[i] : ptr[i + 1]], strict=True)) for t, i in reader.vocabulary.items()
        }

    assert postings(a) == postings(b) and "weir" in a.vocabulary
    assert [p.quote.text for p in merged.search("when does the gate open", 3)] == [
        p.quote.text for p in fresh.search("when does the gate open", 3)
    ]
    merged.close()
    fresh.close()


def test_a_second_writer_waits_for_the_lock_then_fails_with_a_clear_message(tmp_path: Path, embedder: Embedder) -> None:
    first = Engine.create(tmp_path / "c", EngineSettings(), embedder)
    second = Collection.open(tmp_path / "c", IndexSettings().config_for(embedder))
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with first.collection.writing(timeout=5):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    with pytest.raises(WriterBusyError, match="being written by process"):
        second.write(first.preparer.prepare([make_document("a.txt", "Alpha text.", "t")]), [], timeout=0.3)
    release.set()
    holder.join()
    assert second.write(first.preparer.prepare([make_document("a.txt", "Alpha text.", "t")]), [], timeout=5).added == ["a.txt"]
    assert [d.id for d in first.documents()] == ["a.txt"]  # the other handle sees the commit on its next read


def test_an_index_built_with_another_chunker_is_refused_with_a_rebuild_hint(
    corpus_dir: Path, tmp_path: Path, embedder: Embedder
) -> None:
    index_dir = tmp_path / "idx"
    build(corpus_dir, index_dir, embedder)
    other = IndexSettings(chunker=ChunkerSettings(chunk_size=400, chunk_overlap=50))
    with pytest.raises(IndexMismatchError, match=r"chunk_size.*citeqa index --rebuild"):
        build(corpus_dir, index_dir, embedder, other)
    assert build(corpus_dir, index_dir, embedder, other, rebuild=True).written


def test_an_index_built_with_another_model_is_refused(corpus_dir: Path, tmp_path: Path, embedder: Embedder) -> None:
    index_dir = tmp_path / "idx"
    build(corpus_dir, index_dir, embedder)
    payload = json.loads((index_dir / MANIFEST_FILE).read_text())
    payload["model"]["fingerprint"] = "0" * 64
    (index_dir / MANIFEST_FILE).write_text(json.dumps(payload))
    with pytest.raises(IndexMismatchError, match="model_fingerprint"):
        Collection.open(index_dir, IndexSettings().config_for(embedder))


def test_an_index_of_the_previous_format_is_refused_with_the_rebuild_command(tmp_path: Path, embedder: Embedder) -> None:
    index_dir = tmp_path / "idx"
    (index_dir / "v-0123").mkdir(parents=True)
    (index_dir / "current").symlink_to("v-0123")
    with pytest.raises(IndexMismatchError, match=r"older format.*--rebuild"):
        Collection.open(index_dir, IndexSettings().config_for(embedder))


def test_a_corrupt_manifest_is_refused_clearly(corpus_dir: Path, tmp_path: Path, embedder: Embedder) -> None:
    index_dir = tmp_path / "idx"
    build(corpus_dir, index_dir, embedder)
    (index_dir / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(IndexMismatchError, match="unreadable"):
        Manifest.read(index_dir / MANIFEST_FILE)


def test_a_half_written_segment_is_never_served_and_the_next_writer_removes_it(
    corpus_dir: Path, tmp_path: Path, embedder: Embedder
) -> None:
    index_dir = tmp_path / "idx"
    build(corpus_dir, index_dir, embedder)
    # What a writer killed before its commit leaves behind: a staged folder, and a complete folder no commit names.
    (index_dir / SEGMENTS_DIR / ".tmp-s-dead").mkdir()
    (index_dir / SEGMENTS_DIR / "s-orphan").mkdir()
    (index_dir / SEGMENTS_DIR / "s-orphan" / "chunks.npy").write_bytes(b"garbage")
    engine = Engine.open(index_dir, EngineSettings(), embedder)
    assert engine.stats().chunks > 0 and engine.search("Shoygu", 1)[0].document.id == SEED_ID
    (corpus_dir / SEED_ID).write_text("Changed text so the next build writes.", encoding="utf-8")
    build(corpus_dir, index_dir, embedder)
    assert not (index_dir / SEGMENTS_DIR / ".tmp-s-dead").exists() and not (index_dir / SEGMENTS_DIR / "s-orphan").exists()


def test_dense_vectors_are_memory_mapped_not_loaded(corpus_dir: Path, tmp_path: Path, embedder: Embedder) -> None:
    build(corpus_dir, tmp_path / "idx", embedder)
    reader = Engine.open(tmp_path / "idx", EngineSettings(), embedder).collection.snapshot().segments[0].reader
    for vectors in (reader.chunk_vectors, reader.unit_vectors, reader.chunks, reader.units):
        # Plain ndarray views over the file's mapping (cheaper to index than np.memmap), never a loaded copy.
        assert not vectors.flags.owndata and isinstance(vectors.base, np.memmap) and not vectors.flags.writeable


def test_a_large_segment_searches_through_hnsw_and_never_returns_deleted_chunks(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segments from ANN_MIN_CHUNKS chunks on search through a memory-mapped HNSW graph (lowered here so a small
    collection has one): the manifest of the segment says so, a search finds the right document, and a deleted
    document's chunks never come back, though they stay in the graph (a selector of live rows filters them)."""
    from citeqa.index.storage import segment_writer

    monkeypatch.setattr(segment_writer, "ANN_MIN_CHUNKS", 300)
    topics = ["harbour pilots", "glacier melt", "beekeeping", "railway signals", "bread ovens", "violin varnish"]
    documents = [
        make_document(f"t{i}.md", f"# {topics[i % 6]} {i}\n\n" + " ".join(
            f"Note {k} of file {i} is about {topics[i % 6]} and item {k * i} of the log." for k in range(30)
        ), source=f"t{i}.md")
        for i in range(60)
    ]  # fmt: skip
    engine = Engine.create(tmp_path / "index", EngineSettings(), embedder)
    engine.background_merges = False
    engine.upsert(documents)
    (reader,) = [s.reader for s in engine.collection.snapshot().segments]
    assert reader.dense_kind == "hnsw" and isinstance(reader.ann, faiss.IndexHNSWFlat) and reader.chunk_count >= 300
    assert json.loads((reader.folder / "segment.json").read_text())["dense"] == "hnsw"
    # The graph holds the chunk vectors: no second copy on disk, a read-only view of the mapped graph in memory.
    assert not (reader.folder / "chunk_vectors.npy").exists() and not reader.chunk_vectors.flags.writeable
    assert np.allclose(np.linalg.norm(reader.chunk_vectors, axis=1), 1.0, atol=1e-4)
    vector = embedder.embed_query("glacier melt")
    exact = np.argsort(-(reader.chunk_vectors @ vector))[:5]
    assert np.array_equal(reader.nearest(vector, 5, None)[1], exact)
    top = engine.search("beekeeping note 3 of file 14", 3)
    assert top[0].document.id == "t14.md"
    beekeeping = [f"t{i}.md" for i in range(60) if i % 6 == 2]
    engine.delete(beekeeping)
    vector = embedder.embed_query("beekeeping")
    snapshot = engine.collection.snapshot()
    near = [snapshot.doc_id(int(row)) for row in snapshot.nearest_chunks(vector, 50)]
    assert len(near) == 50 and not set(near) & set(beekeeping)  # the filter costs no results
    assert all(p.document.id not in beekeeping for p in engine.search("beekeeping", 10))
    # A segment written by an older version (an IVF index, its chunk vectors in a file of their own) is searched
    # exactly until a merge rewrites it.
    np.save(reader.folder / "chunk_vectors.npy", np.array(reader.chunk_vectors))
    engine.close()
    meta = json.loads((reader.folder / "segment.json").read_text())
    (reader.folder / "segment.json").write_text(json.dumps({**meta, "dense": "ivf"}))
    engine = Engine.open(tmp_path / "index", EngineSettings(), embedder)
    assert all(s.reader.ann is None for s in engine.collection.snapshot().segments)
    assert engine.search("railway signals note 3 of file 15", 3)[0].document.id == "t15.md"
    assert all(p.document.id not in beekeeping for p in engine.search("beekeeping", 10))
    engine.close()


def test_a_merge_asked_to_stop_commits_nothing_and_a_later_merge_still_runs(tmp_path: Path, embedder: Embedder) -> None:
    import threading

    from citeqa.index.progress import WriteStopped

    engine = Engine.create(tmp_path / "index", EngineSettings(), embedder)
    engine.background_merges = False
    for i in range(3):
        engine.upsert([make_document(f"n{i}.md", f"# Note {i}\n\nThe ferry to island {i} leaves at dawn.", f"n{i}.md")])
    generation, segments = engine.collection.generation(), live_segments(tmp_path / "index")
    stopping = threading.Event()
    stopping.set()
    with pytest.raises(WriteStopped):
        engine.collection.merge(stopping=stopping, force=True)
    assert engine.collection.generation() == generation and live_segments(tmp_path / "index") == segments
    assert engine.merge(force=True) == 3 and len(live_segments(tmp_path / "index")) == 1
    engine.close()


def test_derived_chunk_vectors_are_their_sentences_weighted_mean_and_are_recorded(
    corpus_dir: Path, tmp_path: Path, embedder: Embedder
) -> None:
    derived = IndexSettings(chunk_vectors="derived")
    build(corpus_dir, tmp_path / "idx", embedder, derived)
    manifest = json.loads((tmp_path / "idx" / MANIFEST_FILE).read_text())
    assert manifest["chunker"]["chunk_vectors"] == "derived"
    with pytest.raises(IndexMismatchError, match="chunk_vectors"):  # vectors of another kind are never mixed in
        Collection.open(tmp_path / "idx", IndexSettings().config_for(embedder))
    build(corpus_dir, tmp_path / "encoded", embedder)
    assert "chunk_vectors" not in json.loads((tmp_path / "encoded" / MANIFEST_FILE).read_text())["chunker"]

    engine = Engine.open(tmp_path / "idx", EngineSettings(index=derived), embedder)
    try:
        snapshot = engine.collection.snapshot()
        document = engine.document(SEED_ID)
        chunks = engine.chunks(SEED_ID)
        title = embedder.embed([document.title])[0]
        units = np.arange(snapshot.unit_offsets[-1])
        spans, vectors = snapshot.unit_spans(units), snapshot.unit_vectors(units)
        for row, chunk in enumerate(chunks):
            weights = np.clip(np.minimum(spans[:, 1], chunk.end) - np.maximum(spans[:, 0], chunk.start), 0, None)
            titled = passage_text(document, chunk, True) != chunk.text  # the passage embedded carries the title
            expected = weights @ vectors + (len(document.title) * title if titled else 0.0)
            expected /= np.linalg.norm(expected)
            np.testing.assert_allclose(snapshot.chunk_vectors(np.array([row]))[0], expected, atol=1e-5)
        top = engine.search("what did Shoygu allege?", 1)[0]
        assert top.quote.text.startswith("In a statement at the end of April, Shoygu alleged")
    finally:
        engine.close()
    with pytest.raises(ValueError, match="chunk_vectors"):
        IndexSettings(chunk_vectors="averaged")


def test_the_document_cache_keeps_the_most_recent_documents_within_its_character_budget() -> None:
    cache = DocumentCache(characters=25)
    documents = {n: make_document(f"d{n}", "x" * 10, source=f"t/{n}") for n in range(4)}
    for n in (0, 1):
        cache.put(n, documents[n])
    assert cache.get(0) is documents[0]  # 0 is now the most recent
    cache.put(2, documents[2])  # 30 characters: the least recent (1) goes
    assert cache.get(1) is None and cache.get(0) is documents[0] and cache.get(2) is documents[2]
    cache.put(3, make_document("big", "y" * 100, source="t/big"))  # larger than the budget alone: kept, the rest go
    assert cache.get(3) is not None and cache.get(0) is None and cache.get(2) is None


def test_the_document_cache_survives_many_threads_reading_and_evicting() -> None:
    cache = DocumentCache(characters=50)
    documents = [make_document(f"d{n}", "z" * 10, source=f"t/{n}") for n in range(40)]
    failures: list[BaseException] = []

    def churn(offset: int) -> None:
        try:
            for step in range(3000):
                n = (step * 7 + offset) % len(documents)
                if cache.get(n) is None:
                    cache.put(n, documents[n])
        except BaseException as exc:  # any error in a thread is the failure under test
            failures.append(exc)

    threads = [threading.Thread(target=churn, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    held = [n for n in range(len(documents)) if cache.get(n) is not None]
    assert 1 <= len(held) <= 5  # never more than its 50 characters


def test_pooled_sentence_vectors_come_from_the_pass_over_the_chunk_that_holds_them(
    corpus_dir: Path, tmp_path: Path, embedder: Embedder
) -> None:
    pooled = IndexSettings(unit_vectors="pooled")
    build(corpus_dir, tmp_path / "idx", embedder, pooled)
    chunker = json.loads((tmp_path / "idx" / MANIFEST_FILE).read_text())["chunker"]
    assert chunker["unit_vectors"] == "pooled" and chunker["pooled_context_share"] == POOLED_CONTEXT_SHARE
    with pytest.raises(IndexMismatchError, match="unit_vectors"):  # vectors of another kind are never mixed in
        Collection.open(tmp_path / "idx", IndexSettings().config_for(embedder))

    engine = Engine.open(tmp_path / "idx", EngineSettings(index=pooled), embedder)
    try:
        snapshot = engine.collection.snapshot()
        document = engine.document(SEED_ID)
        chunks = engine.chunks(SEED_ID)
        passages = [passage_text(document, chunk, True) for chunk in chunks]
        units = np.arange(snapshot.unit_offsets[-1])
        spans, vectors = snapshot.unit_spans(units), snapshot.unit_vectors(units)
        # Each sentence's vector is its span in the pass over the chunk holding it with the most room around it.
        holders = [best_holder(chunks, [c.start for c in chunks], Span(int(s), int(e))) for s, e in spans]
        assert all(h is not None for h in holders) and len(set(holders)) > 1
        shifts = [len(p) - len(c.text) - c.start for p, c in zip(passages, chunks, strict=True)]
        by_chunk = [
            [(int(s) + shifts[h], int(e) + shifts[h]) for (s, e), hh in zip(spans, holders, strict=True) if hh == h]
            for h in range(len(chunks))
        ]
        chunk_vectors, span_vectors = embedder.embed_spans(passages, by_chunk)
        np.testing.assert_allclose(snapshot.chunk_vectors(np.arange(len(chunks))), chunk_vectors, atol=1e-5)
        seen = [0] * len(chunks)
        for row, holder in enumerate(holders):  # less the chunk's share, renormalised
            expected = span_vectors[holder][seen[holder]] - POOLED_CONTEXT_SHARE * chunk_vectors[holder]
            np.testing.assert_allclose(vectors[row], expected / np.linalg.norm(expected), atol=1e-5)
            seen[holder] += 1
        top = engine.search("what did Shoygu allege?", 1)[0]
        assert top.quote.text.startswith("In a statement at the end of April, Shoygu alleged")
    finally:
        engine.close()
    with pytest.raises(ValueError, match="cannot go with"):
        IndexSettings(chunk_vectors="derived", unit_vectors="pooled")


def test_a_sentence_no_chunk_holds_whole_is_encoded_on_its_own(tmp_path: Path, embedder: Embedder) -> None:
    # Small chunks: the long sentence is wider than any chunk, so it is encoded alone; the others are pooled.
    settings = IndexSettings(chunker=ChunkerSettings(chunk_size=80, chunk_overlap=0), unit_vectors="pooled")
    long_sentence = "The delegation arrived in Geneva on Tuesday after a long overnight journey across the Alps."
    text = f"The talks between both delegations resume today. {long_sentence} Nobody in either capital expects a deal soon."
    [prepared] = Preparer(embedder, settings).prepare([make_document("d", text, source="t/d")])
    texts = [text[u.start : u.end] for u in prepared.units]
    assert len(texts) == 3 and np.isfinite(prepared.unit_vectors).all()
    alone = embedder.embed(texts)
    chunks = list(prepared.chunks)
    for row, unit in enumerate(prepared.units):
        held = best_holder(chunks, [c.start for c in chunks], unit) is not None
        assert held == (texts[row] != long_sentence)
        if held:  # pooled from its chunk's pass: not the vector of the sentence read alone
            assert float(prepared.unit_vectors[row] @ alone[row]) < 0.999
        else:
            np.testing.assert_allclose(prepared.unit_vectors[row], alone[row], atol=1e-5)


def test_best_holder_prefers_the_chunk_with_the_most_room_around_the_sentence() -> None:
    from citeqa.index.text.chunking import Chunk

    chunks = [Chunk("d", 0, 0, 100, "x" * 100), Chunk("d", 1, 60, 200, "x" * 140), Chunk("d", 2, 150, 260, "x" * 110)]
    starts = [c.start for c in chunks]
    assert best_holder(chunks, starts, Span(20, 50)) == 0  # only chunk 0 holds it
    assert best_holder(chunks, starts, Span(80, 95)) == 1  # 5 characters of room in chunk 0, 20 in chunk 1
    assert best_holder(chunks, starts, Span(170, 190)) == 2  # 10 in chunk 1, 20 in chunk 2
    assert best_holder(chunks, starts, Span(90, 160)) == 1
    assert best_holder(chunks, starts, Span(95, 210)) is None  # no chunk holds it whole


def test_a_watched_write_encodes_in_slices_of_bounded_size_so_it_can_stop_within_seconds() -> None:
    """A server's shutdown stops a write between two encoder calls: each call holds at most PROGRESS_SLICE_CHARACTERS
    (one longer text alone), the calls cover every text once, in order; an unwatched write makes one call."""
    texts = ["x" * 800] * 200 + ["short sentence."] * 3000 + ["y" * (PROGRESS_SLICE_CHARACTERS + 5)] + ["z" * 10]
    ranges = list(progress_slices(texts, Progress()))
    assert ranges[0][0] == 0 and ranges[-1][1] == len(texts)
    assert all(end == start for (_, end), (start, _) in pairwise(ranges))
    for start, end in ranges:
        assert end > start
        assert end - start == 1 or sum(len(t) for t in texts[start:end]) <= PROGRESS_SLICE_CHARACTERS
    assert max(end - start for start, end in ranges) > 1000  # short sentences still go hundreds at a time
    assert list(progress_slices(texts, NO_PROGRESS)) == [(0, len(texts))]
    assert list(progress_slices([], Progress())) == []
