from __future__ import annotations

from fastapi import APIRouter, Request

from citeqa.service.errors import ApiError
from citeqa.service.schemas import ErrorResponse, Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": ErrorResponse}}, summary="The index is loaded")
def readyz(request: Request) -> Readiness:
    engine = getattr(request.app.state, "engine", None)
    if engine is None:
        raise ApiError(503, "the index is not loaded yet")
    manifest = engine.store.manifest
    return Readiness(
        status="ready",
        documents=len(engine.store.documents),
        chunks=len(engine.store.chunks),
        model=manifest.config.model_name,
        built_at=manifest.built_at,
    )
