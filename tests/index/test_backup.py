"""Backups of a collection at one generation, restores that refuse what would not open, and durable writes.

Real collections on disk, the real model; a backup is restored into another folder and compared with the collection
it came from at the generation it names: documents, hashes, original files and search results.
"""

from __future__ import annotations

import fcntl
import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from citeqa.index.engine import Engine, EngineSettings
from citeqa.index.models.embedding import Embedder
from citeqa.index.storage.backup import BACKUP_FILE, BackupError, BackupInfo, backup_collection, restore_collection
from citeqa.index.storage.collection import STAGING_LOCK, STAGING_PREFIX, CollectionReplacedError
from citeqa.index.storage.manifest import IndexMismatchError
from citeqa.index.storage.originals import sha256_file
from citeqa.index.text.documents import make_document
from citeqa.index.writing.ingest import IncomingFile
from citeqa.settings import Settings

QUERIES = ["lighthouse keeper", "glacier retreat survey", "harbour repainted", "Geneva summit", "peacekeeping mission"]

NOTES = {
    "harbour.md": "# Harbour\n\nThe lighthouse at the harbour was repainted in May. The keeper logs every ship.",
    "glacier.md": "# Glacier\n\nThe glacier retreated forty metres during the survey. Teams measured it each spring.",
    "summit.md": "# Summit\n\nThe summit was moved to Geneva. Delegates arrived by train on Tuesday.",
}


def engine_settings(durable: bool = True) -> EngineSettings:
    return replace(Settings().engine_settings(), durable_writes=durable)


def fill(engine: Engine, files_dir: Path) -> None:
    """Documents from files (their originals kept), then text documents, a replacement and a delete: several
    segments, deletions and stored files."""
    files_dir.mkdir(parents=True, exist_ok=True)
    incoming = []
    for name, text in NOTES.items():
        path = files_dir / name
        path.write_text(text, encoding="utf-8")
        incoming.append(IncomingFile(path, name, name, path.stat().st_size))
    engine.ingest_files(incoming, "add/")
    for n in range(6):
        text = f"# Note {n}\n\nHarbour note {n}: the lighthouse keeper counted {n * 7} ships in week {n}."
        engine.upsert([make_document(f"note-{n}", text, "test")])
    engine.upsert([make_document("note-2", "# Note 2\n\nReplaced: the keeper retired in week two.", "test")])
    engine.delete(["note-4"])
    engine.settle()


def results(engine: Engine) -> list[list[tuple[str, str]]]:
    """Top-10 (chunk id, quote) for each query."""
    return [[(p.chunk.chunk_id, p.quote.text) for p in engine.search(q, top_k=10)] for q in QUERIES]


def state(engine: Engine) -> dict[str, str]:
    return {row.id: row.sha256 for row in engine.collection.documents()}


@pytest.fixture
def source(tmp_path: Path, embedder: Embedder) -> Iterator[Engine]:
    engine = Engine.create(tmp_path / "home-a" / "collections" / "default", engine_settings(), embedder)
    engine.background_merges = False
    fill(engine, tmp_path / "files")
    yield engine
    engine.close()


def test_a_restored_backup_equals_the_generation_it_names(source: Engine, tmp_path: Path, embedder: Embedder) -> None:
    generation, documents, ranked = source.generation(), state(source), results(source)
    originals = {p.name for p in source.originals.folder.iterdir() if not p.name.startswith(".")}
    assert originals, "the files' originals are stored"

    info = backup_collection(source.collection, "default", tmp_path / "backups")
    # Written after the backup: not in it.
    source.upsert([make_document("later", "# Later\n\nThe lighthouse keeper wrote this after the backup.", "test")])
    source.delete(["note-0"])

    backup = tmp_path / "backups" / "default"
    assert info.generation == generation and info.documents == len(documents)
    assert json.loads((backup / BACKUP_FILE).read_text())["generation"] == generation
    assert not list(source.folder.glob(f"{STAGING_PREFIX}*")), "the staging folder is removed"

    target = tmp_path / "home-b" / "collections" / "default"
    restore_collection(backup, target, source.collection.manifest.config)
    restored = Engine.open(target, engine_settings(), embedder)
    try:
        assert restored.generation() == generation
        assert state(restored) == documents
        assert results(restored) == ranked
        stored = {p.name: sha256_file(p) for p in restored.originals.folder.iterdir()}
        assert set(stored) == originals and all(name == digest for name, digest in stored.items())
        for name in NOTES:  # each document's original is there, with its bytes
            assert restored.originals.path(source.document(name).meta["original"]["sha256"]) is not None
        # The restored collection is a collection like any other: it takes writes.
        restored.upsert([make_document("after-restore", "# After\n\nA write to the restored copy.", "test")])
        assert "after-restore" in state(restored)
    finally:
        restored.close()


def test_restore_refuses_a_backup_built_with_other_settings(source: Engine, tmp_path: Path) -> None:
    backup_collection(source.collection, "default", tmp_path / "backups")
    backup = tmp_path / "backups" / "default"
    manifest = json.loads((backup / "manifest.json").read_text())
    manifest["chunker"]["chunk_size"] += 100
    manifest["model"]["name"] = "another-model"
    (backup / "manifest.json").write_text(json.dumps(manifest))
    target = tmp_path / "home-b" / "collections" / "default"
    with pytest.raises(IndexMismatchError, match="other settings") as refused:
        restore_collection(backup, target, source.collection.manifest.config)
    assert "chunker" in str(refused.value) and "another-model" in str(refused.value)
    assert not target.exists()


def test_restore_refuses_a_damaged_backup(source: Engine, tmp_path: Path) -> None:
    backup_collection(source.collection, "default", tmp_path / "backups")
    backup = tmp_path / "backups" / "default"
    info = BackupInfo.read(backup)
    vectors = next(name for name in info.files if name.endswith("chunk_vectors.npy"))
    with (backup / vectors).open("r+b") as handle:
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 1]))
    target = tmp_path / "home-b" / "collections" / "default"
    with pytest.raises(BackupError, match="damaged"):
        restore_collection(backup, target, source.collection.manifest.config)
    assert not target.exists() and not list(target.parent.glob(".restore-*"))


def test_restore_replaces_only_when_asked_and_a_stale_writer_is_refused(source: Engine, tmp_path: Path) -> None:
    backup_collection(source.collection, "default", tmp_path / "backups")
    backup = tmp_path / "backups" / "default"
    generation = source.generation()
    source.upsert([make_document("later", "# Later\n\nWritten after the backup.", "test")])
    with pytest.raises(BackupError, match="--replace"):
        restore_collection(backup, source.folder, source.collection.manifest.config)
    assert "later" in state(source)
    with pytest.raises(BackupError, match="exists"):
        backup_collection(source.collection, "default", tmp_path / "backups")

    restore_collection(backup, source.folder, source.collection.manifest.config, replace=True)
    assert not list(source.folder.parent.glob(".trash-*")), "the replaced folder is removed"
    # The engine opened before the restore must not commit into the folder that was swapped out.
    with pytest.raises(CollectionReplacedError, match="restart"):
        source.upsert([make_document("lost", "# Lost\n\nThis write would land in the old folder.", "test")])
    reopened = Engine.open(source.folder, engine_settings(), source.embedder)
    try:
        assert reopened.generation() == generation and "later" not in state(reopened)
    finally:
        reopened.close()


def test_a_refused_restore_never_moves_a_folder_that_is_not_a_collection(source: Engine, tmp_path: Path) -> None:
    backup_collection(source.collection, "default", tmp_path / "backups")
    target = tmp_path / "somewhere"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(BackupError, match="not a collection"):
        restore_collection(tmp_path / "backups" / "default", target, source.collection.manifest.config, replace=True)
    assert (target / "notes.txt").read_text() == "mine"


def test_the_next_write_removes_abandoned_backup_staging_but_not_a_running_one(source: Engine) -> None:
    abandoned = source.folder / f"{STAGING_PREFIX}abandoned"
    running = source.folder / f"{STAGING_PREFIX}running"
    for folder in (abandoned, running):
        (folder / "segments").mkdir(parents=True)
        (folder / "catalog.sqlite").write_bytes(b"x")
    with (running / STAGING_LOCK).open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        source.upsert([make_document("gc", "# GC\n\nA write collects garbage first.", "test")])
        assert not abandoned.exists() and running.exists()
    source.upsert([make_document("gc-2", "# GC 2\n\nAnd again, once the backup let go.", "test")])
    assert not running.exists()


def test_writes_with_and_without_fsync_give_equal_loadable_indexes(tmp_path: Path, embedder: Embedder) -> None:
    assert Settings(durable_writes=False).engine_settings().durable_writes is False
    found = {}
    for durable in (True, False):
        folder = tmp_path / f"durable-{durable}"
        engine = Engine.create(folder, engine_settings(durable), embedder)
        engine.background_merges = False
        assert engine.collection.durable is durable and engine.originals.durable is durable
        # The catalog's commits: FULL (2) syncs the WAL at each commit, NORMAL (1) leaves it to checkpoints.
        assert engine.collection.catalog.query("PRAGMA synchronous")[0][0] == (2 if durable else 1)
        fill(engine, tmp_path / f"files-{durable}")
        engine.merge(force=True)
        engine.close()
        reopened = Engine.open(folder, engine_settings(durable), embedder)
        try:
            found[durable] = (state(reopened), results(reopened), reopened.stats().documents)
        finally:
            reopened.close()
    assert found[True] == found[False]


def test_backup_dest_must_be_new_and_a_partial_copy_is_never_left(source: Engine, tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    (dest / "default").mkdir(parents=True)
    with pytest.raises(BackupError, match="exists already"):
        backup_collection(source.collection, "default", dest)
    shutil.rmtree(dest / "default")
    backup_collection(source.collection, "default", dest)
    assert sorted(p.name for p in dest.iterdir()) == ["default"]
