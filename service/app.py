"""The app factory: create_app(settings) builds a fresh app, so tests and the CLI each make their own."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.staticfiles import StaticFiles

from citeqa.index.engine import Engine
from citeqa.index.progress import Progress
from citeqa.index.writing.ingest import IncomingFile, IngestReport
from citeqa.service.collections import CollectionRegistry
from citeqa.service.deps import collection_name
from citeqa.service.errors import install_error_handlers
from citeqa.service.indexing import ingest_upload_job, open_or_build
from citeqa.service.job_model import Job
from citeqa.service.job_store import JobStore, Retention
from citeqa.service.jobs import JobBoard, JobRunner
from citeqa.service.limits import Limits
from citeqa.service.mcp_http import McpEndpoint
from citeqa.service.routers import chat, collections, documents, health, jobs, search, web
from citeqa.service.server import chain_stop_signals
from citeqa.service.surface import install_http_surface
from citeqa.settings import DEFAULT_COLLECTION, Settings

log = logging.getLogger("citeqa")

DESCRIPTION = """Ask questions of a set of documents and get answers you can check: every passage carries a
citation whose `quote_start`/`quote_end` index the exact characters of its source document."""


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """An app over `engine`, or over the index in settings.index_dir (built from the corpus if missing)."""
    settings = settings or Settings()

    def engine_for(collection: str) -> Engine:
        # KeyError for an unknown collection, ValueError for an invalid name.
        return app.state.collections.get(collection)

    def run_upload_job(job: Job, files: list[IncomingFile], progress: Progress) -> IngestReport:
        return ingest_upload_job(settings, engine_for(job.collection), files, progress)

    mcp = McpEndpoint(engine_for, answer_top_k=settings.answer_top_k, host=settings.host, limits=Limits.of(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The model and the index load once, here, never per request.
        default = engine or open_or_build(settings)
        registry = CollectionRegistry(settings, default.embedder, default.settings)
        registry.attach(DEFAULT_COLLECTION, default)
        app.state.engine, app.state.collections = default, registry
        app.state.stopping.clear()  # this app may have been started and stopped before (tests do)
        chain_stop_signals(app.state.stopping)  # set on SIGTERM before requests drain (service/server.py)
        # Jobs live in the data home (Settings.jobs_dir), shared by every process serving it; this process's runner
        # runs them when it holds the runner lock, and a stop puts its running job back in the queue (service/jobs.py).
        store = JobStore(
            settings.jobs_dir(),
            Retention(kept=settings.jobs_kept, seconds=settings.jobs_kept_days * 86400),
            max_queued=settings.max_queued_jobs,
        )
        runner = JobRunner(store, run_upload_job, app.state.stopping, max_attempts=settings.job_attempts)
        app.state.jobs = JobBoard(store, runner)
        app.state.jobs.start()
        try:
            async with mcp.running():  # MCP sessions need the SDK's task group, which lives as long as the app
                yield
        finally:
            await run_in_threadpool(app.state.jobs.stop)

    # docs_url=None: /docs is served from local files by install_http_surface (FastAPI's page uses a CDN).
    app = FastAPI(title="citeqa", version="0.1.0", description=DESCRIPTION, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.engine = app.state.collections = app.state.jobs = None
    # Set the moment the server is asked to stop (service/server.py sets it on SIGTERM, before requests drain):
    # writes still embedding then end before their commit, so a stop takes seconds, not the length of a write.
    app.state.stopping = threading.Event()
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=web.STATIC_DIR), name="static")
    for router in (health.router, web.router, collections.router):
        app.include_router(router)
    app.include_router(jobs.router, prefix="/v1")  # jobs of every collection: one worker per server
    # Questions, documents and chat: on the default collection at /v1/..., on any at /v1/collections/{name}/...
    for router in (search.router, documents.router, chat.router):
        app.include_router(router, prefix="/v1")
        app.include_router(router, prefix="/v1/collections/{collection}", dependencies=[Depends(collection_name)])
    mcp.mount(app)  # streamable HTTP at /mcp
    install_http_surface(app, settings)  # keys, limits, allowed hosts, security headers, request ids, metrics, /docs
    return app
