"""The collections one server holds: `default` (the current paths) and any created over HTTP or the CLI.

Each collection is its own folder with its own manifest, catalog and segments. Engines open lazily and share
the one embedding model; a collection created by another process is found on first use.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from citeqa.index.engine import Engine, EngineSettings
from citeqa.index.models.embedding import Embedder
from citeqa.index.storage.collection import Collection
from citeqa.settings import DEFAULT_COLLECTION, Settings

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


class UnknownCollectionError(KeyError):
    """No collection by that name."""


class CollectionExistsError(ValueError):
    """A collection by that name exists already."""


def check_name(name: str) -> str:
    """Collection names are folder names: lower-case letters, digits, '-' and '_' (no dots, slashes or spaces)."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"invalid collection name {name!r}: use 1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit"
        )
    return name


def collection_folder(settings: Settings, name: str) -> Path:
    """Where the collection `name` lives: `default` at CITEQA_INDEX_DIR, any other in `<home>/collections/<name>`."""
    if name == DEFAULT_COLLECTION:
        assert settings.index_dir is not None
        return settings.index_dir
    return settings.home / "collections" / check_name(name)


def collection_names(settings: Settings) -> list[str]:
    """The collections that exist in the data home, sorted."""
    root = settings.home / "collections"
    entries = root.iterdir() if root.is_dir() else iter(())
    found = {p.name for p in entries if NAME_PATTERN.fullmatch(p.name) and Collection.exists(p)}
    if Collection.exists(collection_folder(settings, DEFAULT_COLLECTION)):
        found.add(DEFAULT_COLLECTION)
    return sorted(found)


class CollectionRegistry:
    def __init__(self, settings: Settings, embedder: Embedder, engine_settings: EngineSettings) -> None:
        self.settings = settings
        self.embedder = embedder
        self.engine_settings = engine_settings
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()

    def folder(self, name: str) -> Path:
        return collection_folder(self.settings, name)

    def attach(self, name: str, engine: Engine) -> None:
        with self._lock:
            self._engines[name] = engine

    def opened(self, name: str) -> Engine | None:
        """The engine of a collection that is open and still exists; None when `get` would have to open one (or
        report that there is none). Cheap enough to call on the event loop: a dictionary look-up and one stat."""
        engine = self._engines.get(name)
        return engine if engine is not None and Collection.exists(engine.folder) else None

    def get(self, name: str) -> Engine:
        """The engine of an existing collection; UnknownCollectionError when there is none, ValueError for a bad name."""
        engine = self.opened(name)
        if engine is not None:
            return engine
        folder = self.folder(name)
        with self._lock:
            if not Collection.exists(folder):
                self._engines.pop(name, None)
                raise UnknownCollectionError(name)
            engine = self._engines.get(name)
            if engine is None:
                engine = self._engines[name] = Engine.open(folder, self.engine_settings, self.embedder)
            return engine

    def names(self) -> list[str]:
        return collection_names(self.settings)

    def create(self, name: str) -> Engine:
        folder = self.folder(check_name(name))
        with self._lock:
            if Collection.exists(folder):
                raise CollectionExistsError(name)
            engine = self._engines[name] = Engine.create(folder, self.engine_settings, self.embedder)
            return engine

    def drop(self, name: str) -> None:
        if name == DEFAULT_COLLECTION:
            raise ValueError("the default collection cannot be dropped; delete its documents instead")
        folder = self.folder(check_name(name))
        with self._lock:
            if not Collection.exists(folder):
                raise UnknownCollectionError(name)
            engine = self._engines.pop(name, None)
            if engine is not None:
                engine.close()
            Collection.remove(folder)
