"""Every request and response body of the HTTP API, in one module."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, field_validator
from pydantic_core import PydanticKnownError

from citeqa.index.parsing.locate import locate
from citeqa.index.ranking.evidence import Passage
from citeqa.index.ranking.search import SearchMode
from citeqa.service.limits import DEFAULT_LIMITS, current_limits, limit_exceeded

# The defaults; a server's own limits are settings (CITEQA_MAX_QUESTION_CHARS, CITEQA_MAX_TOP_K), checked below
# against current_limits() and written into its OpenAPI schema (service/openapi.py).
MAX_QUERY_CHARS = DEFAULT_LIMITS.max_question_chars
MAX_TOP_K = DEFAULT_LIMITS.max_top_k
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_bool_or_text(value: object) -> object:
    # Lax int would take `true` as 1 and "5" as 5, hiding a client's mistake; strict int would refuse 5.0, which
    # JSON Schema (and so the OpenAPI schema) calls an integer. Refuse the first two, keep the last.
    if isinstance(value, bool | str):
        raise PydanticKnownError("int_type")
    return value


Count = Annotated[int, BeforeValidator(_no_bool_or_text)]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain non-whitespace text")
    return value


def _valid_unicode(value: str) -> str:
    # JSON can carry "\udc00" on its own; no encoder or tokenizer can, so it is refused here rather than failing later.
    if LONE_SURROGATE.search(value):
        raise ValueError("must be valid Unicode text: it contains a lone surrogate code point (U+D800-U+DFFF)")
    return value


def _question(value: str) -> str:
    _not_blank(value)
    limit = current_limits().max_question_chars
    if len(value) > limit:
        raise ValueError(f"must have at most {limit} characters (CITEQA_MAX_QUESTION_CHARS); it has {len(value)}")
    return value


def _top_k(value: int) -> int:
    limit = current_limits().max_top_k
    if value > limit:
        raise ValueError(f"Input should be less than or equal to {limit} (CITEQA_MAX_TOP_K)")
    return value


class SearchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"query": "what did Shoygu allege?", "top_k": 3}]},
    )

    query: str = Field(min_length=1, description=f"the question, 1-{MAX_QUERY_CHARS} characters (CITEQA_MAX_QUESTION_CHARS)")
    top_k: Count = Field(5, ge=1, description=f"how many passages, 1-{MAX_TOP_K} (CITEQA_MAX_TOP_K)")
    mode: SearchMode | None = Field(None, description="hybrid (default), dense or lexical")

    _check_query = field_validator("query")(_question)
    _check_top_k = field_validator("top_k")(_top_k)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"question": "what did Shoygu allege?"}]})

    question: str = Field(min_length=1, description=f"1-{MAX_QUERY_CHARS} characters (CITEQA_MAX_QUESTION_CHARS)")
    top_k: Count = Field(5, ge=1, description=f"passages to draw the answer from, 1-{MAX_TOP_K} (CITEQA_MAX_TOP_K)")
    generate: StrictBool | None = Field(
        None, description="answer with the upstream language model (needs CITEQA_LLM_BASE_URL); default CITEQA_ASK_GENERATE"
    )

    _check_question = field_validator("question")(_question)
    _check_top_k = field_validator("top_k")(_top_k)


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
    page_start: int | None = Field(None, description="PDFs: the 1-based page where the quote starts")
    page_end: int | None = Field(None, description="PDFs: the 1-based page where the quote ends")
    section: str | None = Field(None, description="Word, HTML, Markdown: the heading path over the quote, 'Results > Table 2'")
    sha256: str = Field("", description="the document text's sha256: a citation whose hash differs from the document's is stale")

    @classmethod
    def of(cls, passage: Passage) -> Citation:
        chunk, document, quote = passage.chunk, passage.document, passage.quote
        where = locate(document.meta, quote.start, quote.end)
        return cls(
            page_start=where.page_start,
            page_end=where.page_end,
            section=where.section,
            sha256=document.sha256,
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
            text=passage.chunk.text,
            citation=Citation.of(passage),
        )


class SearchResponse(BaseModel):
    query: str
    results: list[SearchResult]
    took_ms: float


class NumberedCitation(Citation):
    marker: int = Field(description="the n of the [n] marker in the answer")


class Claim(BaseModel):
    start: int = Field(description="where the sentence (with its markers) starts in the answer text")
    end: int
    citations: list[int] = Field(description="the markers [n] whose passages support it")
    support: float = Field(ge=0, le=1, description="how well its citations support it (unsupported: the best any passage does)")
    supported: bool


class AskResponse(BaseModel):
    question: str
    answer: str = Field(description="cited sentences with [n] markers, or 'Not found in the documents.'")
    found: bool
    citations: list[NumberedCitation]
    claims: list[Claim] = Field(default_factory=list, description="each sentence of the answer with its citations")
    answered_by: str = Field("extractive", description="'extractive', or the upstream language model's name")
    passages: list[SearchResult]
    took_ms: float


class DocumentSummary(BaseModel):
    id: str
    title: str
    source: str
    chunks: int
    sha256: str
    characters: int
    media_type: str | None = Field(None, description="the type of the file it was parsed from; null for text sent as text")


class DocumentList(BaseModel):
    documents: list[DocumentSummary]


class OriginalFile(BaseModel):
    """The file a document was parsed from, kept as it arrived."""

    filename: str
    media_type: str
    sha256: str = Field(description="of the file's bytes (the document's own sha256 is of its text)")
    bytes: int
    url: str = Field(description="where to download it: /v1/documents/{id}/file")


class DocumentDetail(DocumentSummary):
    text: str
    original: OriginalFile | None = None
    pages: int | None = Field(None, description="PDFs: the number of pages")
    metadata: dict[str, str] = Field(default_factory=dict, description="what the file says of itself: author, dates, ...")


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


class UploadedFile(BaseModel):
    """What became of one uploaded file."""

    filename: str
    id: str | None = Field(description="the document id it was given (null when its name was refused)")
    status: Literal["added", "updated", "unchanged", "failed"]
    reason: str | None = Field(None, description="why it failed")
    media_type: str | None = None
    bytes: int
    document: DocumentSummary | None = None


class UploadResult(BaseModel):
    files: list[UploadedFile] = Field(description="one entry per uploaded file, in the order they were sent")
    added: int
    updated: int
    unchanged: int
    failed: int


class JobFile(BaseModel):
    filename: str
    id: str | None
    bytes: int
    stage: Literal["queued", "parsing", "splitting", "embedding", "committing", "committed", "failed"]
    status: Literal["added", "updated", "unchanged", "failed"] | None = Field(None, description="set when the job ends")
    reason: str | None = None


class JobCounts(BaseModel):
    files: int
    queued: int
    parsing: int
    splitting: int
    embedding: int
    committing: int
    committed: int
    failed: int


class JobInfo(BaseModel):
    id: str
    collection: str
    state: Literal["queued", "running", "done", "failed"] = Field(
        description="done: committed (some files may have failed alone); failed: nothing of the job was committed"
    )
    progress: float = Field(description="0 to 1: parsing, splitting, embedding and the commit, weighted by their cost")
    created: str
    started: str | None = None
    finished: str | None = None
    error: str | None = Field(None, description="why the job failed as a whole")
    counts: JobCounts
    files: list[JobFile]


class JobAccepted(BaseModel):
    job: JobInfo
    status_url: str = Field(description="poll this: GET /v1/jobs/{id}")


class JobList(BaseModel):
    jobs: list[JobInfo] = Field(description="newest first")


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

    @field_validator("text")
    @classmethod
    def _valid_text(cls, value: str | None) -> str | None:
        return None if value is None else _valid_unicode(value)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ChatContentPart] | None = None
    name: str | None = None

    @field_validator("content")
    @classmethod
    def _valid_content(cls, value: str | list[ChatContentPart] | None) -> str | list[ChatContentPart] | None:
        return _valid_unicode(value) if isinstance(value, str) else value

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
    def _has_a_question(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
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


class CollectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "handbook"}]})

    name: str = Field(min_length=1, max_length=63, description="1-63 lower-case letters, digits, '-' or '_'")


class CollectionInfo(BaseModel):
    name: str
    documents: int
    chunks: int


class CollectionList(BaseModel):
    collections: list[CollectionInfo]
