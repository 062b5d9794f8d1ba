from __future__ import annotations

import time

from fastapi import APIRouter

from citeqa.index.answering.claims import extractive_claims
from citeqa.service.chat import UpstreamModel, generate_answer
from citeqa.service.deps import EngineDep, SettingsDep
from citeqa.service.errors import ApiError
from citeqa.service.schemas.questions import (
    AskRequest,
    AskResponse,
    Claim,
    NumberedCitation,
    SearchRequest,
    SearchResponse,
    SearchResult,
)
from citeqa.service.schemas.status import ErrorResponse


def _took_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


router = APIRouter(tags=["questions"], responses={400: {"model": ErrorResponse}})


@router.post("/search", response_model=SearchResponse, summary="Ranked passages, each with an exact citation")
def search(request: SearchRequest, engine: EngineDep) -> SearchResponse:
    started = time.perf_counter()
    passages = engine.search(request.query, request.top_k, mode=request.mode)
    return SearchResponse(
        query=request.query,
        results=[SearchResult.of(p) for p in passages],
        took_ms=_took_ms(started),
    )


@router.post(
    "/ask",
    response_model=AskResponse,
    summary="An answer with [n] citations (extractive, or from the upstream model), or 'not found'",
    responses={502: {"model": ErrorResponse}},
)
def ask(request: AskRequest, engine: EngineDep, settings: SettingsDep) -> AskResponse:
    started = time.perf_counter()
    if request.generate and not settings.llm_base_url:
        raise ApiError(400, "generate needs an upstream language model: set CITEQA_LLM_BASE_URL", param="generate")
    generate = bool(settings.llm_base_url) and (settings.ask_generate if request.generate is None else request.generate)
    if generate:
        passages = engine.search(request.question, request.top_k)
        generated = generate_answer(engine, settings, UpstreamModel(settings), request.question, passages)
        text, found, cited, claims = generated.answer, generated.found, generated.cited, generated.claims
        answered_by = settings.llm_model
    else:
        answer = engine.ask(request.question, request.top_k)
        text, found, cited, passages = answer.composed.text, answer.composed.found, answer.cited, answer.passages
        claims, answered_by = extractive_claims(answer.composed), "extractive"
    return AskResponse(
        question=request.question,
        answer=text,
        found=found,
        citations=NumberedCitation.numbered(cited),
        claims=[Claim.of(c) for c in claims],
        answered_by=answered_by,
        passages=[SearchResult.of(p) for p in passages],
        took_ms=_took_ms(started),
    )
