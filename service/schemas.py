"""Every request and response body of the HTTP API, in one module."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from citeqa.index.evidence import Passage
from citeqa.index.search import SearchMode

MAX_QUERY_CHARS = 2000
MAX_TOP_K = 50


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain non-whitespace text")
    return value


class SearchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"query": "what did Shoygu allege?", "top_k": 3}]},
    )

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description=f"the question, 1-{MAX_QUERY_CHARS} characters")
    top_k: int = Field(5, ge=1, le=MAX_TOP_K, description=f"how many passages, 1-{MAX_TOP_K}")
    mode: SearchMode | None = Field(None, description="hybrid (default), dense or lexical")

    _check_query = field_validator("query")(_not_blank)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"question": "what did Shoygu allege?"}]})

    question: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description=f"1-{MAX_QUERY_CHARS} characters")
    top_k: int = Field(5, ge=1, le=MAX_TOP_K, description="passages to draw the answer from")

    _check_question = field_validator("question")(_not_blank)


class Citation(BaseModel):
    """Where a passage comes from: document.text[start:end] is the passage, [quote_start:quote_end] the quote."""

    doc_id: str
    title: str
    source: str
    chunk_id: str
    start: int
    end: int
    quote: str
    quote_start: int
    quote_end: int

    @classmethod
    def of(cls, passage: Passage) -> Citation:
        chunk, document, quote = passage.hit.chunk, passage.document, passage.quote
        return cls(
            doc_id=document.id,
            title=document.title,
            source=document.source,
            chunk_id=chunk.chunk_id,
            start=chunk.start,
            end=chunk.end,
            quote=quote.text,
            quote_start=quote.start,
            quote_end=quote.end,
        )


class ComponentScores(BaseModel):
    dense: float = Field(description="cosine similarity of question and passage")
    lexical: float = Field(description="BM25 score of the passage")


class SearchResult(BaseModel):
    rank: int
    score: float = Field(description="fused score that orders the results")
    scores: ComponentScores
    text: str
    citation: Citation

    @classmethod
    def of(cls, passage: Passage) -> SearchResult:
        hit = passage.hit
        return cls(
            rank=passage.rank,
            score=round(hit.score, 6),
            scores=ComponentScores(dense=round(hit.dense, 6), lexical=round(hit.lexical, 6)),
            text=hit.chunk.text,
            citation=Citation.of(passage),
        )


class SearchResponse(BaseModel):
    query: str
    results: list[SearchResult]
    took_ms: float


class NumberedCitation(Citation):
    marker: int = Field(description="the n of the [n] marker in the answer")


class AskResponse(BaseModel):
    question: str
    answer: str = Field(description="cited sentences with [n] markers, or 'Not found in the documents.'")
    found: bool
    citations: list[NumberedCitation]
    passages: list[SearchResult]
    took_ms: float


class DocumentSummary(BaseModel):
    id: str
    title: str
    source: str
    chunks: int
    sha256: str
    characters: int


class DocumentList(BaseModel):
    documents: list[DocumentSummary]


class DocumentDetail(DocumentSummary):
    text: str


MAX_DOCUMENT_ID_CHARS = 200


class DocumentUpload(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"id": "notes/briefing.md", "text": "# Briefing\n\nThe summit was moved to Geneva."}]},
    )

    id: str = Field(min_length=1, max_length=MAX_DOCUMENT_ID_CHARS, description="stable id; the same id replaces the document")
    text: str = Field(min_length=1, description="UTF-8 text; the first non-empty line becomes the title")

    @field_validator("id")
    @classmethod
    def _clean_id(cls, value: str) -> str:
        if value.strip() != value or any(ord(c) < 32 for c in value):
            raise ValueError("must have no surrounding whitespace or control characters")
        if any(part in ("", ".", "..") for part in value.split("/")):
            raise ValueError("must not have empty, '.' or '..' path segments")
        return value

    _check_text = field_validator("text")(_not_blank)


class DocumentChange(BaseModel):
    status: Literal["added", "updated", "unchanged", "deleted"]
    document: DocumentSummary | None = None
    id: str


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """Every error, in the shape OpenAI clients already understand."""

    error: ErrorBody


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    documents: int
    chunks: int
    model: str
    built_at: str


# -- OpenAI-compatible chat ------------------------------------------------------------------------


class ChatContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ChatContentPart] | None = None
    name: str | None = None

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
    stream: bool = False

    @field_validator("messages")
    @classmethod
    def _has_a_question(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if not messages:
            raise ValueError("must not be empty: send at least one message with role 'user'")
        users = [m for m in messages if m.role == "user"]
        if not users:
            raise ValueError("must contain a message with role 'user' (only system or assistant messages were sent)")
        last = users[-1].text()
        if not last.strip():
            raise ValueError("the last user message has no text")
        if len(last) > MAX_QUERY_CHARS:
            raise ValueError(f"the last user message is longer than {MAX_QUERY_CHARS} characters")
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
    citeqa: SearchInfo


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "citeqa"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
