"""Segments built elsewhere (as Ray workers build them) checked in an incoming area and attached in one commit;
no Ray here: the storage side alone."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from citeqa.cli import main
from citeqa.index.engine import Engine
from citeqa.index.models.embedding import Embedder
from citeqa.index.models.encoder_bundle import bundle_encoder
from citeqa.index.storage.collection import INCOMING_PREFIX, DocumentChangedError
from citeqa.index.storage.incoming import IncomingArea, IncomingSegmentError, ShippedSegment, pack_segment
from citeqa.index.storage.manifest import IndexConfig
from citeqa.index.storage.segment_writer import write_segment
from citeqa.index.text.documents import Document, content_hash
from citeqa.settings import Settings


def note(doc_id: str, text: str) -> Document:
    return Document(doc_id, doc_id.title(), f"notes/{doc_id}", text, content_hash(text))


@pytest.fixture
def engine(tmp_path: Path, embedder: Embedder) -> Iterator[Engine]:
    settings = Settings(index_dir=tmp_path / "index")
    engine = Engine.create(tmp_path / "index", settings.engine_settings(), embedder)
    yield engine
    engine.close()


def shipped(engine: Engine, documents: list[Document], scratch: Path, config: IndexConfig | None = None) -> ShippedSegment:
    """A segment written outside the collection and packed, as a worker does."""
    scratch.mkdir(exist_ok=True)
    info = write_segment(scratch, engine.preparer.prepare(documents), engine.embedder.dimension, durable=False)
    return pack_segment(scratch / info.name, info, config or engine.collection.manifest.config)


def test_checked_segments_are_attached_in_one_commit(engine: Engine, tmp_path: Path) -> None:
    documents = [note("alpha", "The heron waits in the reeds at dawn."), note("beta", "Copper wire carries the current.")]
    segment = shipped(engine, documents, tmp_path / "worker")
    collection = engine.collection
    with IncomingArea(collection.folder, collection.manifest.config, collection.durable) as area:
        area.receive(segment)
        assert not engine.documents(), "nothing is visible before the commit"
        result = engine.writer.attach(area.received, {}, None)
    assert sorted(result.added) == ["alpha", "beta"]
    assert engine.stats().generation == 1
    assert engine.search("where does the heron wait?", top_k=1)[0].document.id == "alpha"
    assert not list(collection.folder.glob(f"{INCOMING_PREFIX}*")), "the area is removed once committed"


def test_a_segment_built_with_other_settings_or_damaged_is_refused(engine: Engine, tmp_path: Path) -> None:
    documents = [note("alpha", "The heron waits in the reeds at dawn.")]
    config = engine.collection.manifest.config
    foreign = shipped(engine, documents, tmp_path / "a", dataclasses.replace(config, encoder="onnx:sha256:0000"))
    segment = shipped(engine, documents, tmp_path / "b")
    damaged_files = {**segment.files, "chunks.npy": segment.files["chunks.npy"][:-1] + b"\x01"}
    damaged = dataclasses.replace(segment, files=damaged_files)
    with IncomingArea(engine.collection.folder, config) as area:
        with pytest.raises(IncomingSegmentError, match="other settings"):
            area.receive(foreign)
        with pytest.raises(IncomingSegmentError, match="sha256"):
            area.receive(damaged)
        assert area.received == []


def test_a_document_changed_during_the_job_refuses_the_whole_commit(engine: Engine, tmp_path: Path) -> None:
    engine.upsert([note("alpha", "The first version.")])
    segment = shipped(engine, [note("beta", "Copper wire carries the current.")], tmp_path / "worker")
    collection = engine.collection
    with IncomingArea(collection.folder, collection.manifest.config) as area:
        area.receive(segment)
        # The job left alpha out as unchanged at the hash it saw; another writer has changed it since.
        with pytest.raises(DocumentChangedError):
            engine.writer.attach(area.received, {"alpha": content_hash("An older version.")}, None)
    assert [d.id for d in engine.documents()] == ["alpha"]
    assert engine.stats().generation == 1


def test_garbage_collection_removes_an_abandoned_incoming_area_and_keeps_one_in_use(engine: Engine) -> None:
    collection = engine.collection
    abandoned = collection.folder / f"{INCOMING_PREFIX}abandoned"
    (abandoned / "s-0").mkdir(parents=True)
    with IncomingArea(collection.folder, collection.manifest.config) as running:
        collection.write([], [])  # any write collects garbage first
        assert not abandoned.exists()
        assert running.folder.is_dir()


def test_citeqa_without_a_cluster_never_imports_ray() -> None:
    code = "import sys, citeqa.cli, citeqa.service.app, citeqa.service.indexing; print('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_a_bad_ray_address_stops_citeqa_index_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["index", str(tmp_path), "--index-dir", str(tmp_path / "index"), "--ray", "ray://127.0.0.1:10001"])
    assert code == 2
    assert "Ray Client addresses are not supported" in capsys.readouterr().err
    assert not (tmp_path / "index").exists(), "refused before anything was created"


def test_a_shipped_encoder_runs_the_same_file_without_the_weights_on_its_own_threads(embedder: Embedder, tmp_path: Path) -> None:
    bundle = bundle_encoder(embedder)
    assert not any(name.endswith((".safetensors", ".bin")) for name in bundle.model_files), "no weights shipped"
    worker = bundle.unpack(tmp_path, threads=1)
    assert (worker.encoder_id, worker.fingerprint, worker.model_name) == (
        embedder.encoder_id,
        embedder.fingerprint,
        embedder.model_name,
    )
    texts = [f"sentence number {i} about herons and copper" for i in range(80)]
    assert worker._onnx.session_for(len(texts)) is worker._onnx.session, "bulk work stays on the actor's one thread"
    assert abs(worker.embed(texts) - embedder.embed(texts)).max() < 1e-5
