from __future__ import annotations

import time

from fastapi import APIRouter

from citeqa.service.deps import EngineDep
from citeqa.service.schemas import (
    AskRequest,
    AskResponse,
    ErrorResponse,
    NumberedCitation,
    SearchRequest,
    SearchResponse,
    SearchResult,
)

router = APIRouter(prefix="/v1", tags=["questions"], responses={400: {"model": ErrorResponse}})


@router.post("/search", response_model=SearchResponse, summary="Ranked passages, each with an exact citation")
def search(request: SearchRequest, engine: EngineDep) -> SearchResponse:
    started = time.perf_counter()
    passages = engine.search(request.query, request.top_k, mode=request.mode)
    return SearchResponse(
        query=request.query,
        results=[SearchResult.of(p) for p in passages],
        took_ms=round((time.perf_counter() - started) * 1000, 2),
    )


@router.post("/ask", response_model=AskResponse, summary="An extractive answer with [n] citations, or 'not found'")
def ask(request: AskRequest, engine: EngineDep) -> AskResponse:
    started = time.perf_counter()
    answer = engine.ask(request.question, request.top_k)
    citations = [
        NumberedCitation(marker=n, **SearchResult.of(p).citation.model_dump()) for n, p in enumerate(answer.cited, start=1)
    ]
    return AskResponse(
        question=request.question,
        answer=answer.composed.text,
        found=answer.composed.found,
        citations=citations,
        passages=[SearchResult.of(p) for p in answer.passages],
        took_ms=round((time.perf_counter() - started) * 1000, 2),
    )
