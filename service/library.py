"""Adding, replacing and removing documents while the service runs.

A change builds a new store from the live one (unchanged documents keep their vectors), saves it as a
new index version (atomic swap on disk), then swaps the engine the routes read. Requests in flight
finish on the engine they started with; writers queue on one lock.
"""

from __future__ import annotations

import threading

from fastapi import FastAPI

from citeqa.index.builder import build_store
from citeqa.index.documents import Document, make_document
from citeqa.index.engine import Engine
from citeqa.settings import Settings

_write_lock = threading.Lock()


def _rebuild(app: FastAPI, documents: list[Document]) -> Engine:
    engine: Engine = app.state.engine
    settings: Settings = app.state.settings
    store, _ = build_store(documents, engine.embedder, engine.settings.index, previous=engine.store)
    store.save(settings.index_dir)
    new_engine = Engine(store, engine.embedder, engine.settings)
    app.state.engine = new_engine
    return new_engine


def upsert_document(app: FastAPI, doc_id: str, text: str) -> tuple[str, Engine]:
    """Add or replace one document; returns 'added', 'updated' or 'unchanged' and the engine after it."""
    with _write_lock:
        engine: Engine = app.state.engine
        document = make_document(doc_id, text, source=f"api/{doc_id}")
        current = engine.store.documents.get(doc_id)
        if current is not None and current.sha256 == document.sha256:
            return "unchanged", engine
        others = [d for d in engine.store.documents.values() if d.id != doc_id]
        return ("updated" if current else "added"), _rebuild(app, [*others, document])


def delete_document(app: FastAPI, doc_id: str) -> bool:
    with _write_lock:
        engine: Engine = app.state.engine
        if doc_id not in engine.store.documents:
            return False
        _rebuild(app, [d for d in engine.store.documents.values() if d.id != doc_id])
        return True
