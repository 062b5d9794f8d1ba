"""OpenAI-compatible chat: POST /v1/chat/completions (plain and streamed) and GET /v1/models."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from citeqa.service.chat import ChatReply, reply
from citeqa.service.conversation import Turn
from citeqa.service.deps import EngineDep, SettingsDep
from citeqa.service.schemas.chat import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionRequest,
    ModelCard,
    ModelList,
    SearchInfo,
    Usage,
)
from citeqa.service.schemas.questions import Claim, NumberedCitation
from citeqa.service.schemas.status import ErrorResponse

router = APIRouter(tags=["chat"], responses={400: {"model": ErrorResponse}})
MODEL_ID = "citeqa"
STARTED = int(time.time())


def _words(text: str) -> int:
    return len(re.findall(r"\S+", text))


def _completion(request: ChatCompletionRequest, result: ChatReply) -> ChatCompletion:
    prompt_words = sum(_words(m.text()) for m in request.messages)
    completion_words = _words(result.content)
    return ChatCompletion(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=request.model or MODEL_ID,
        choices=[ChatChoice(message=AssistantMessage(content=result.content))],
        # Word counts: citeqa has no tokenizer of a generating model to count with.
        usage=Usage(prompt_tokens=prompt_words, completion_tokens=completion_words, total_tokens=prompt_words + completion_words),
        citations=NumberedCitation.numbered(result.cited),
        claims=[Claim.of(c) for c in result.claims],
        citeqa=SearchInfo(query=result.query, found=result.found, answered_by=result.answered_by),
    )


def _stream(completion: ChatCompletion) -> Iterator[str]:
    """Server-sent chat.completion.chunk events: the role, the text a few words at a time, then the
    finish with the citations, then [DONE]."""
    base = {"id": completion.id, "object": "chat.completion.chunk", "created": completion.created, "model": completion.model}

    def event(delta: dict, finish: str | None = None, **extra: object) -> str:
        payload = base | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]} | extra
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""})
    pieces = re.findall(r"\S+\s*|\s+", completion.choices[0].message.content)
    for start in range(0, len(pieces), 3):
        yield event({"content": "".join(pieces[start : start + 3])})
    yield event(
        {},
        "stop",
        citations=[c.model_dump() for c in completion.citations],
        claims=[c.model_dump() for c in completion.claims],
        citeqa=completion.citeqa.model_dump(),
        usage=completion.usage.model_dump(),
    )
    yield "data: [DONE]\n\n"


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    summary="OpenAI-compatible chat: a cited answer; stream=true sends server-sent chunks",
    responses={200: {"content": {"text/event-stream": {}}}, 502: {"model": ErrorResponse}},
)
def chat_completions(
    request: ChatCompletionRequest, engine: EngineDep, settings: SettingsDep
) -> ChatCompletion | StreamingResponse:
    turns = [Turn(m.role, m.text()) for m in request.messages]
    completion = _completion(request, reply(engine, settings, turns))
    if request.stream:
        return StreamingResponse(_stream(completion), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    return completion


@router.get("/models", response_model=ModelList, summary="The one model this server offers (OpenAI-compatible)")
def list_models() -> ModelList:
    return ModelList(data=[ModelCard(id=MODEL_ID, created=STARTED)])
