"""Index maintenance shared by the CLI, MCP and the app: build from the corpus folder, or open what is there."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import closing

from citeqa.index.cluster.connect import preflight
from citeqa.index.engine import Engine
from citeqa.index.progress import NO_PROGRESS, Progress
from citeqa.index.storage.collection import Collection
from citeqa.index.text.documents import DocumentError
from citeqa.index.writing.builder import BuildSummary, first_of_each_id, summarize
from citeqa.index.writing.ingest import IncomingFile, IngestReport, load_folder
from citeqa.service.library import UPLOAD_SOURCE
from citeqa.settings import Settings


def build_from_corpus(
    settings: Settings, rebuild: bool = False, progress: Progress = NO_PROGRESS, engine: Engine | None = None
) -> BuildSummary:
    """Parse every file of settings.corpus_dir, keep the originals in the collection, and sync the collection with
    the folder in one commit. `engine` is an open engine on settings.index_dir to write through (one model load)."""
    started = time.perf_counter()
    assert settings.index_dir is not None  # Settings puts it in the data home when unset
    if not settings.corpus_dir.exists():
        raise DocumentError(f"corpus folder {settings.corpus_dir} does not exist")
    if settings.ray_address and engine is None:
        preflight(settings.ray_address, settings.encoder)  # a bad address or a missing ray is said before the model loads
    if engine is None:
        # Emptied (with rebuild) before the folder is read: the originals stored while reading must survive it.
        with closing(Engine.create(settings.index_dir, settings.engine_settings(), rebuild=rebuild)) as own:
            return build_from_corpus(settings, progress=progress, engine=own)
    if settings.ray_address:
        # Parsed, split and embedded on a Ray cluster's workers; committed here, in one commit (index/cluster/).
        from citeqa.index.cluster.ingest import ClusterJob, build_on_cluster

        return build_on_cluster(engine, settings.corpus_dir, ClusterJob(settings.ray_address, settings.parse_limits()))
    report = load_folder(settings.corpus_dir, limits=settings.parse_limits(), originals=engine.originals, progress=progress)
    documents, duplicates = first_of_each_id(report.documents)
    result = engine.sync(documents, report.origin, progress=progress)
    summary = summarize(result, len(report.documents), engine.stats().chunks, time.perf_counter() - started)
    summary.skipped = report.skipped + duplicates
    return summary


def ingest_upload_job(
    settings: Settings, engine: Engine, files: Sequence[IncomingFile], progress: Progress = NO_PROGRESS
) -> IngestReport:
    """An upload job's files into `engine`'s collection, in one commit: on the Ray cluster of settings.ray_address
    when there is one (the server is its driver and committer), in this process otherwise."""
    if settings.ray_address:
        from citeqa.index.cluster.ingest import ClusterJob, ingest_files_on_cluster

        job = ClusterJob(settings.ray_address, settings.parse_limits())
        return ingest_files_on_cluster(engine, files, UPLOAD_SOURCE, job, progress)
    return engine.ingest_files(files, UPLOAD_SOURCE, settings.parse_limits(), progress)


def open_or_build(settings: Settings, progress: Progress = NO_PROGRESS, announce: Callable[[str], None] | None = None) -> Engine:
    """Open the index, building it from settings.corpus_dir first when there is none (one model load). `announce`
    hears a line saying so, and `progress` follows the build (the command line draws them; a server logs nothing)."""
    engine_settings = settings.engine_settings()
    assert settings.index_dir is not None  # Settings fills it in (_index_in_home)
    if Collection.exists(settings.index_dir):
        return Engine.open(settings.index_dir, engine_settings)
    if announce is not None:
        announce(f"no index at {settings.index_dir}; building it from {settings.corpus_dir}")
    engine = Engine.create(settings.index_dir, engine_settings)
    build_from_corpus(settings, progress=progress, engine=engine)
    return engine
