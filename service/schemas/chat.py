"""OpenAI-compatible chat: POST /v1/chat/completions and GET /v1/models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from citeqa.service.limits import current_limits, limit_exceeded
from citeqa.service.schemas.checks import valid_unicode
from citeqa.service.schemas.questions import Claim, NumberedCitation


class ChatContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None

    @field_validator("text")
    @classmethod
    def _valid_text(cls, value: str | None) -> str | None:
        return None if value is None else valid_unicode(value)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ChatContentPart] | None = None
    name: str | None = None

    @field_validator("content")
    @classmethod
    def _valid_content(cls, value: str | list[ChatContentPart] | None) -> str | list[ChatContentPart] | None:
        return valid_unicode(value) if isinstance(value, str) else value

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(part.text for part in self.content if part.type == "text" and part.text)
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """The OpenAI request shape; optional parameters citeqa does not use (temperature, ...) are accepted."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"model": "citeqa", "messages": [{"role": "user", "content": "what did Shoygu allege?"}], "stream": False}
            ]
        },
    )

    model: str = "citeqa"
    messages: list[ChatMessage]
    stream: StrictBool = False

    @field_validator("messages")
    @classmethod
    def _has_aquestion_text(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        limits = current_limits()
        if len(messages) > limits.max_chat_messages:
            raise limit_exceeded(
                f"{len(messages)} messages are more than the limit of {limits.max_chat_messages} (CITEQA_MAX_CHAT_MESSAGES)"
            )
        total = sum(len(m.text()) for m in messages)
        if total > limits.max_chat_chars:
            raise limit_exceeded(
                f"the messages have {total} characters in all, more than the limit of {limits.max_chat_chars} "
                "(CITEQA_MAX_CHAT_CHARS)"
            )
        if not messages:
            raise ValueError("must not be empty: send at least one message with role 'user'")
        users = [m for m in messages if m.role == "user"]
        if not users:
            raise ValueError("must contain a message with role 'user' (only system or assistant messages were sent)")
        if not users[-1].text().strip():
            raise ValueError("the last user message has no text")
        # Every question counts, not only the last: follow-ups are searched together with earlier questions.
        for index, message in enumerate(messages):
            length = len(message.text())
            if message.role == "user" and length > limits.max_question_chars:
                raise ValueError(
                    f"message {index} (role 'user') has {length} characters, more than the limit of "
                    f"{limits.max_question_chars} (CITEQA_MAX_QUESTION_CHARS)"
                )
        return messages


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str = "stop"


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class SearchInfo(BaseModel):
    query: str = Field(description="the standalone query that was searched (follow-ups are resolved against earlier turns)")
    found: bool
    answered_by: str = Field(description="'extractive', or the upstream language model's name")


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    citations: list[NumberedCitation] = Field(description="extension: the sources behind the [n] markers")
    claims: list[Claim] = Field(default_factory=list, description="extension: each sentence of the answer with its citations")
    citeqa: SearchInfo


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "citeqa"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
