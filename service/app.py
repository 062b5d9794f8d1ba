"""The app factory: create_app(settings) builds a fresh app, so tests and the CLI each make their own."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from citeqa.index.engine import Engine
from citeqa.service.errors import install_error_handlers
from citeqa.service.indexing import open_or_build
from citeqa.service.routers import chat, documents, health, search, web
from citeqa.settings import Settings

log = logging.getLogger("citeqa")

DESCRIPTION = """Ask questions of a set of documents and get answers you can check: every passage carries a
citation whose `quote_start`/`quote_end` index the exact characters of its source document."""


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """An app over `engine`, or over the index in settings.index_dir (built from the corpus if missing)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The model and the index load once, here, never per request.
        app.state.engine = engine or open_or_build(settings)
        yield

    app = FastAPI(title="citeqa", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = None
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=web.STATIC_DIR), name="static")
    for router in (health.router, search.router, documents.router, chat.router, web.router):
        app.include_router(router)
    return app
