"""Questions: /v1/search and /v1/ask, and the citation every passage carries (MCP's tools speak it too)."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from citeqa.index.answering import claims
from citeqa.index.parsing.locate import locate
from citeqa.index.ranking.evidence import Passage
from citeqa.index.ranking.search import SearchMode
from citeqa.service.schemas.checks import MAX_QUERY_CHARS, MAX_TOP_K, Count, question_text, top_k_within_limit


class SearchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"query": "what did Shoygu allege?", "top_k": 3}]},
    )

    query: str = Field(min_length=1, description=f"the question, 1-{MAX_QUERY_CHARS} characters (CITEQA_MAX_QUESTION_CHARS)")
    top_k: Count = Field(5, ge=1, description=f"how many passages, 1-{MAX_TOP_K} (CITEQA_MAX_TOP_K)")
    mode: SearchMode | None = Field(None, description="hybrid (default), dense or lexical")

    _check_query = field_validator("query")(question_text)
    _check_top_k = field_validator("top_k")(top_k_within_limit)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"question": "what did Shoygu allege?"}]})

    question: str = Field(min_length=1, description=f"1-{MAX_QUERY_CHARS} characters (CITEQA_MAX_QUESTION_CHARS)")
    top_k: Count = Field(5, ge=1, description=f"passages to draw the answer from, 1-{MAX_TOP_K} (CITEQA_MAX_TOP_K)")
    generate: StrictBool | None = Field(
        None, description="answer with the upstream language model (needs CITEQA_LLM_BASE_URL); default CITEQA_ASK_GENERATE"
    )

    _check_question = field_validator("question")(question_text)
    _check_top_k = field_validator("top_k")(top_k_within_limit)


class QuoteBox(BaseModel):
    """A rectangle of the quote on its page: page units (PDF points; pixels of a scanned or uploaded image) from the
    page's top left, y downwards. GET /v1/documents/{id}/pages/{page} draws the page they are on."""

    page: int = Field(description="1-based page")
    x0: float
    y0: float
    x1: float
    y1: float


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
    boxes: list[QuoteBox] = Field(
        default_factory=list,
        description="PDFs and images: the quote's rectangles on its pages, a rectangle per line; empty for other formats",
    )

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
            boxes=[QuoteBox(page=b.page, x0=b.x0, y0=b.y0, x1=b.x1, y1=b.y1) for b in passage.boxes],
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

    @classmethod
    def numbered(cls, cited: Iterable[Passage]) -> list[NumberedCitation]:
        """The citations behind an answer's markers: cited[n - 1] is the source of marker [n]."""
        return [cls(marker=n, **Citation.of(passage).model_dump()) for n, passage in enumerate(cited, start=1)]


class Claim(BaseModel):
    start: int = Field(description="where the sentence (with its markers) starts in the answer text")
    end: int
    citations: list[int] = Field(description="the markers [n] whose passages support it")
    support: float = Field(ge=0, le=1, description="how well its citations support it (unsupported: the best any passage does)")
    supported: bool

    @classmethod
    def of(cls, claim: claims.Claim) -> Claim:
        return cls(start=claim.start, end=claim.end, citations=claim.citations, support=claim.support, supported=claim.supported)


class AskResponse(BaseModel):
    question: str
    answer: str = Field(description="cited sentences with [n] markers, or 'Not found in the documents.'")
    found: bool
    citations: list[NumberedCitation]
    claims: list[Claim] = Field(default_factory=list, description="each sentence of the answer with its citations")
    answered_by: str = Field("extractive", description="'extractive', or the upstream language model's name")
    passages: list[SearchResult]
    took_ms: float
