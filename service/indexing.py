"""Index maintenance shared by the CLI and the app: build from the corpus, or open what is there."""

from __future__ import annotations

import sys

from citeqa.index.builder import BuildSummary, refresh_index
from citeqa.index.documents import load_corpus
from citeqa.index.embedding import Embedder
from citeqa.index.engine import Engine
from citeqa.index.store import IndexStore
from citeqa.settings import Settings


def build_from_corpus(
    settings: Settings, rebuild: bool = False, show_progress: bool = False, embedder: Embedder | None = None
) -> BuildSummary:
    engine_settings = settings.engine_settings()
    embedder = embedder or Embedder(engine_settings.model, settings.embed_batch_size)
    report = load_corpus(settings.corpus_dir)
    summary = refresh_index(settings.index_dir, report.documents, embedder, engine_settings.index, rebuild, show_progress)
    summary.skipped = report.skipped + summary.skipped
    return summary


def open_or_build(settings: Settings, show_progress: bool = False) -> Engine:
    """Open the index, building it from settings.corpus_dir first when there is none (one model load)."""
    engine_settings = settings.engine_settings()
    embedder = Embedder(engine_settings.model, settings.embed_batch_size)
    if not IndexStore.exists(settings.index_dir):
        if show_progress:
            print(f"no index at {settings.index_dir}; building it from {settings.corpus_dir}", file=sys.stderr)
        build_from_corpus(settings, show_progress=show_progress, embedder=embedder)
    return Engine.open(settings.index_dir, engine_settings, embedder)
