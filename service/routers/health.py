from __future__ import annotations

from fastapi import APIRouter, Request

from citeqa.service.errors import index_not_loaded
from citeqa.service.schemas.status import ErrorResponse, Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": ErrorResponse}}, summary="The index is loaded")
def readyz(request: Request) -> Readiness:
    engine = getattr(request.app.state, "engine", None)
    if engine is None:
        raise index_not_loaded()
    stats = engine.stats()
    return Readiness(status="ready", documents=stats.documents, chunks=stats.chunks, model=stats.model, built_at=stats.built_at)
