"""Creating, listing and dropping collections; their documents and questions live under /v1/collections/{name}/."""

from __future__ import annotations

from fastapi import APIRouter

from citeqa.index.engine import Engine
from citeqa.service.collections import CollectionExistsError, UnknownCollectionError
from citeqa.service.deps import CollectionsDep
from citeqa.service.errors import ApiError, collection_not_found
from citeqa.service.schemas.documents import CollectionCreate, CollectionInfo, CollectionList
from citeqa.service.schemas.status import ErrorResponse

router = APIRouter(prefix="/v1/collections", tags=["collections"])


def _info(name: str, engine: Engine) -> CollectionInfo:
    stats = engine.stats()
    return CollectionInfo(name=name, documents=stats.documents, chunks=stats.chunks)


@router.get("", response_model=CollectionList, summary="Every collection on this server")
def list_collections(collections: CollectionsDep) -> CollectionList:
    return CollectionList(collections=[_info(name, collections.get(name)) for name in collections.names()])


@router.post(
    "",
    response_model=CollectionInfo,
    status_code=201,
    responses={400: {"model": ErrorResponse}, 409: {"model": ErrorResponse}},
    summary="Create an empty collection",
)
def create_collection(body: CollectionCreate, collections: CollectionsDep) -> CollectionInfo:
    try:
        engine = collections.create(body.name)
    except CollectionExistsError as exc:
        raise ApiError(409, f"a collection named '{body.name}' exists already", param="name", code="collection_exists") from exc
    except ValueError as exc:
        raise ApiError(400, str(exc), param="name") from exc
    return _info(body.name, engine)


@router.delete(
    "/{name}",
    response_model=CollectionList,
    responses={400: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
    summary="Drop a collection and everything in it",
)
def drop_collection(name: str, collections: CollectionsDep) -> CollectionList:
    try:
        collections.drop(name)
    except UnknownCollectionError as exc:
        raise collection_not_found(name, param="name") from exc
    except ValueError as exc:
        raise ApiError(400, str(exc), param="name") from exc
    return list_collections(collections)
