import json
import os
from pathlib import Path

import pytest

from citeqa.index.builder import IndexSettings, refresh_index
from citeqa.index.chunking import ChunkerSettings
from citeqa.index.documents import load_corpus
from citeqa.index.embedding import Embedder
from citeqa.index.manifest import FORMAT_VERSION, IndexMismatchError, Manifest
from citeqa.index.store import CURRENT_LINK, IndexStore
from tests.conftest import SEED_ID


def build(corpus: Path, index_dir: Path, embedder: Embedder, settings: IndexSettings | None = None, rebuild: bool = False):
    return refresh_index(index_dir, load_corpus(corpus).documents, embedder, settings or IndexSettings(), rebuild=rebuild)


def test_manifest_records_what_built_the_index(corpus_dir: Path, tmp_path: Path, embedder: Embedder) -> None:
    build(corpus_dir, tmp_path / "idx", embedder)
    manifest = json.loads((tmp_path / "idx" / CURRENT_LINK / "manifest.json").read_text())
    assert manifest["model"]["fingerprint"] == embedder.fingerprint
    assert len(manifest["model"]["fingerprint"]) == 64
    assert manifest["model"]["dimension"] == 384
    assert manifest["chunker"]["chunk_size"] == ChunkerSettings().chunk_size
    assert manifest["format_version"] == FORMAT_VERSION
    assert set(manifest["documents"]) == {SEED_ID}


def test_reindexing_unchanged_documents_is_a_no_op(corpus_dir: Path, tmp_path: Path, embedder: Embedder) -> None:
    index_dir = tmp_path / "idx"
    first = build(corpus_dir, index_dir, embedder)
    version = os.readlink(index_dir / CURRENT_LINK)
    second = build(corpus_dir, index_dir, embedder)
    assert first.added == [SEED_ID] and first.written
    assert second.unchanged == [SEED_ID] and not second.written
    assert os.readlink(index_dir / CURRENT_LINK) == version


def test_editing_a_document_replaces_all_its_chunks_and_deleting_drops_them(
    corpus_dir: Path, tmp_path: Path, embedder: Embedder
) -> None:
    index_dir = tmp_path / "idx"
    (corpus_dir / "extra.md").write_text("# Extra\n\nBananas are yellow fruit grown in the tropics.", encoding="utf-8")
    build(corpus_dir, index_dir, embedder)
    seed = corpus_dir / SEED_ID
    seed.write_text("A short replacement text about penguins in Antarctica.", encoding="utf-8")

    summary = build(corpus_dir, index_dir, embedder)
    store = IndexStore.load(index_dir, IndexSettings().config_for(embedder))
    assert summary.updated == [SEED_ID] and summary.unchanged == ["extra.md"]
    assert [c.text for c in store.chunks if c.doc_id == SEED_ID] == ["A short replacement text about penguins in Antarctica."]
    assert store.dense.ntotal == len(store.chunks)

    seed.unlink()
    summary = build(corpus_dir, index_dir, embedder)
    store = IndexStore.load(index_dir, IndexSettings().config_for(embedder))
    assert summary.removed == [SEED_ID]
    assert {c.doc_id for c in store.chunks} == {"extra.md"}
    assert store.lexical.scores("penguins").max() == 0.0


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
    manifest_path = index_dir / CURRENT_LINK / "manifest.json"
    payload = json.loads(manifest_path.read_text())
    payload["model"]["fingerprint"] = "0" * 64
    manifest_path.write_text(json.dumps(payload))
    with pytest.raises(IndexMismatchError, match="model_fingerprint"):
        IndexStore.load(index_dir, IndexSettings().config_for(embedder))


def test_a_corrupt_manifest_is_refused_clearly(corpus_dir: Path, tmp_path: Path, embedder: Embedder) -> None:
    index_dir = tmp_path / "idx"
    build(corpus_dir, index_dir, embedder)
    (index_dir / CURRENT_LINK / "manifest.json").write_text("{not json")
    with pytest.raises(IndexMismatchError, match="unreadable"):
        Manifest.read(index_dir / CURRENT_LINK / "manifest.json")


def test_a_half_written_build_never_replaces_the_live_index(corpus_dir: Path, tmp_path: Path, embedder: Embedder) -> None:
    index_dir = tmp_path / "idx"
    build(corpus_dir, index_dir, embedder)
    live = os.readlink(index_dir / CURRENT_LINK)
    # What a build killed mid-write leaves behind: a staging folder with some files and no manifest.
    staging = index_dir / ".staging-v-deadbeef"
    staging.mkdir()
    (staging / "chunks.jsonl").write_text('["x", 0, 0, 1]\n')
    store = IndexStore.load(index_dir, IndexSettings().config_for(embedder))
    assert os.readlink(index_dir / CURRENT_LINK) == live
    assert len(store.chunks) > 0
    (corpus_dir / SEED_ID).write_text("Changed text so the next build writes.", encoding="utf-8")
    build(corpus_dir, index_dir, embedder)
    assert not staging.exists()
    assert sorted(p.name for p in index_dir.iterdir() if p.name.startswith("v-")) == [os.readlink(index_dir / CURRENT_LINK)]
