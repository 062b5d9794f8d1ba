"""Shared dependencies, as Annotated aliases so routes declare what they need in one word.

They are coroutines: FastAPI runs a plain function dependency in its thread pool, a hop there and back on every
request (about 0.7 ms of a search over HTTP here). Only opening a collection's engine for the first time blocks,
and that goes to the thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from citeqa.index.engine import Engine
from citeqa.service.collections import NAME_PATTERN, CollectionRegistry, UnknownCollectionError
from citeqa.service.errors import ApiError, collection_not_found, index_not_loaded
from citeqa.settings import DEFAULT_COLLECTION, Settings


def _registry(request: Request) -> CollectionRegistry:
    registry = getattr(request.app.state, "collections", None)
    if registry is None:
        raise index_not_loaded()
    return registry


async def get_collections(request: Request) -> CollectionRegistry:
    return _registry(request)


async def get_engine(request: Request) -> Engine:
    """The engine of the collection in the path (/v1/collections/{collection}/...), or of `default`."""
    registry = _registry(request)
    name = request.path_params.get("collection", DEFAULT_COLLECTION)
    try:
        engine = registry.opened(name)
        return engine if engine is not None else await run_in_threadpool(registry.get, name)
    except ValueError as exc:
        raise ApiError(400, str(exc), param="collection") from exc
    except UnknownCollectionError as exc:
        raise collection_not_found(name, param="collection") from exc


CollectionPath = Annotated[str, Path(description="a collection's name", pattern=NAME_PATTERN.pattern)]


async def collection_name(collection: CollectionPath) -> str:
    """Declares the {collection} path parameter of the collection-scoped routes (validated in get_engine)."""
    return collection


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


EngineDep = Annotated[Engine, Depends(get_engine)]
CollectionsDep = Annotated[CollectionRegistry, Depends(get_collections)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
