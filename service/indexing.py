"""Index maintenance shared by the CLI and the app: build from the corpus, or open what is there."""

from __future__ import annotations

import sys

from citeqa.console import TerminalProgress
from citeqa.index.engine import Engine
from citeqa.index.models.embedding import Embedder
from citeqa.index.progress import NO_PROGRESS, Progress
from citeqa.index.storage.collection import Collection
from citeqa.index.storage.originals import OriginalStore
from citeqa.index.text.documents import DocumentError
from citeqa.index.writing.builder import BuildSummary, open_collection, sync_collection
from citeqa.index.writing.ingest import load_folder
from citeqa.settings import Settings


def build_from_corpus(
    settings: Settings,
    rebuild: bool = False,
    show_progress: bool = False,
    embedder: Embedder | None = None,
    progress: Progress = NO_PROGRESS,
) -> BuildSummary:
    """Parse every file of settings.corpus_dir, keep the originals in the collection, and sync the collection."""
    engine_settings = settings.engine_settings()
    embedder = embedder or engine_settings.embedder(settings.embed_batch_size)
    assert settings.index_dir is not None  # Settings puts it in the data home when unset
    if not settings.corpus_dir.exists():
        raise DocumentError(f"corpus folder {settings.corpus_dir} does not exist")
    if rebuild:
        # Emptied before the folder is read: the originals stored while reading must survive the rebuild.
        open_collection(settings.index_dir, embedder, engine_settings.index, rebuild=True).close()
    report = load_folder(
        settings.corpus_dir, limits=settings.parse_limits(), originals=OriginalStore(settings.index_dir), progress=progress
    )
    summary = sync_collection(
        settings.index_dir,
        report.documents,
        report.origin,
        embedder,
        engine_settings.index,
        show_progress=show_progress,
        timeout=engine_settings.write_timeout,
        progress=progress,
    )
    summary.skipped = report.skipped + summary.skipped
    return summary


def open_or_build(settings: Settings, show_progress: bool = False) -> Engine:
    """Open the index, building it from settings.corpus_dir first when there is none (one model load)."""
    engine_settings = settings.engine_settings()
    embedder = engine_settings.embedder(settings.embed_batch_size)
    if not Collection.exists(settings.index_dir):
        if show_progress:
            print(f"no index at {settings.index_dir}; building it from {settings.corpus_dir}", file=sys.stderr)
        progress = TerminalProgress() if show_progress else NO_PROGRESS
        build_from_corpus(settings, embedder=embedder, progress=progress)
    return Engine.open(settings.index_dir, engine_settings, embedder)
