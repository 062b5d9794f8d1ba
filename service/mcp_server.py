"""citeqa as an MCP server: search, ask and read documents as tools an agent can call.

The tools speak the HTTP API's citation shape (`service/schemas.py`), so a quote found through MCP can be
checked exactly like one found over HTTP: `document.text[quote_start:quote_end] == quote`. Transports live
elsewhere: `citeqa mcp` serves this over stdio (cli.py), the FastAPI app mounts it at /mcp (mcp_http.py).
"""

# No `from __future__ import annotations` here: the tools' argument types are built per server from its limits,
# inside build_mcp_server, and the SDK reads them from the signature, so they must be evaluated where defined.
from collections.abc import Callable
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from citeqa.index.engine import Engine
from citeqa.service.limits import DEFAULT_LIMITS, Limits
from citeqa.service.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, CursorError, decode_cursor, encode_cursor
from citeqa.service.schemas.checks import not_blank
from citeqa.service.schemas.documents import DocumentSummary
from citeqa.service.schemas.questions import NumberedCitation, SearchResult
from citeqa.settings import DEFAULT_COLLECTION

EngineFor = Callable[[str], Engine]
"""The engine of a collection by name; raises KeyError for an unknown one, ValueError for an invalid name."""

INSTRUCTIONS = """citeqa answers questions from a fixed set of documents, with citations you can verify.
Every citation names a document (doc_id) and character offsets into its text: text[quote_start:quote_end]
is the quoted sentence, text[start:end] the passage around it.
Use `search` to gather evidence (ranked passages, each with its best quote), `ask` for a short answer built
from quoted sentences with [n] markers (or "Not found in the documents."), `list_documents` to see what
can be searched, and `get_document` with a character range to read the text around a quote."""

CollectionName = Annotated[str, Field(min_length=1, description="which document collection to use")]
Offset = Annotated[int | None, Field(ge=0, description="character offset into the document's text")]
PageSize = Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE, description=f"documents per page, 1-{MAX_PAGE_SIZE}")]
Cursor = Annotated[str | None, Field(description="the next_cursor of the page before; omit it for the first page")]

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


class SearchOutput(BaseModel):
    collection: str
    query: str
    results: list[SearchResult]


class AskOutput(BaseModel):
    collection: str
    question: str
    answer: str = Field(description="cited sentences with [n] markers, or 'Not found in the documents.'")
    found: bool
    citations: list[NumberedCitation] = Field(description="citations[n-1] is the source of marker [n]")


class DocumentListOutput(BaseModel):
    collection: str
    documents: list[DocumentSummary] = Field(description="one page, in id order")
    next_cursor: str | None = Field(description="pass it as cursor for the next page; null on the last page")
    total: int = Field(description="how many documents the collection holds")


class DocumentText(DocumentSummary):
    collection: str
    start: int = Field(description="offset of the first character returned")
    end: int = Field(description="offset just past the last character returned")
    text: str = Field(description="the document's text[start:end]; a quote is text[quote_start - start:quote_end - start]")


def _engine(engine_for: EngineFor, collection: str) -> Engine:
    try:
        return engine_for(collection)
    except KeyError:
        raise ToolError(f"collection: no collection named '{collection}'") from None
    except ValueError as exc:
        raise ToolError(f"collection: {exc}") from None


def _require_text(name: str, value: str) -> str:
    # Field(min_length=1) lets "   " through; the HTTP API's own check refuses it, with the same words.
    try:
        return not_blank(value)
    except ValueError as exc:
        raise ToolError(f"{name}: {exc}") from None


def _range(start: int | None, end: int | None, length: int) -> tuple[int, int]:
    start = 0 if start is None else start
    end = length if end is None else end
    if end > length:
        raise ToolError(f"end: {end} is past the end of the document ({length} characters)")
    if start > end:
        raise ToolError(f"start: {start} is after end ({end})")
    return start, end


def build_mcp_server(engine_for: EngineFor, answer_top_k: int = 5, limits: Limits = DEFAULT_LIMITS) -> MCPServer:
    """The MCP tools over the engines `engine_for` hands out (asked per call, so a swapped engine is seen).

    `limits` are the server's own (CITEQA_MAX_QUESTION_CHARS, CITEQA_MAX_TOP_K), the ones its HTTP API applies, so
    both faces refuse the same input and each tool's schema states the limits that hold."""
    server = MCPServer("citeqa", version="0.1.0", instructions=INSTRUCTIONS, log_level="WARNING")
    chars, most = limits.max_question_chars, limits.max_top_k
    Query = Annotated[str, Field(min_length=1, max_length=chars, description=f"1-{chars} characters")]
    TopK = Annotated[int, Field(ge=1, le=most, description=f"how many passages, 1-{most}")]
    default_top_k = min(5, most)

    @server.tool(annotations=READ_ONLY)
    def search(query: Query, top_k: TopK = default_top_k, collection: CollectionName = DEFAULT_COLLECTION) -> SearchOutput:
        """Find evidence: the passages that best match the query, ranked, each with its best sentence as a
        quote and exact character offsets (doc_id, quote_start, quote_end) into its document. Use it to
        collect sources before answering, or to see more than `ask` shows."""
        engine = _engine(engine_for, collection)
        passages = engine.search(_require_text("query", query), top_k)
        return SearchOutput(collection=collection, query=query, results=[SearchResult.of(p) for p in passages])

    @server.tool(annotations=READ_ONLY)
    def ask(question: Query, collection: CollectionName = DEFAULT_COLLECTION) -> AskOutput:
        """Get a short answer made of quoted sentences from the documents, with [n] markers; citations[n-1]
        says where marker [n] comes from. found is false (and the answer "Not found in the documents.")
        when nothing is relevant enough; then do not answer from these documents."""
        engine = _engine(engine_for, collection)
        answer = engine.ask(_require_text("question", question), answer_top_k)
        citations = NumberedCitation.numbered(answer.cited)
        return AskOutput(
            collection=collection,
            question=question,
            answer=answer.composed.text,
            found=answer.composed.found,
            citations=citations,
        )

    @server.tool(annotations=READ_ONLY)
    def list_documents(
        limit: PageSize = DEFAULT_PAGE_SIZE, cursor: Cursor = None, collection: CollectionName = DEFAULT_COLLECTION
    ) -> DocumentListOutput:
        """List the documents that can be searched, a page at a time in id order: id, title, source, chunk count
        and length in characters. While next_cursor is not null, call again with cursor=next_cursor for more."""
        engine = _engine(engine_for, collection)
        try:
            after = None if cursor is None else decode_cursor(cursor)
        except CursorError as exc:
            raise ToolError(f"cursor: {exc}") from None
        page = engine.documents_page(after, limit)
        return DocumentListOutput(
            collection=collection,
            documents=[DocumentSummary.of(info) for info in page.documents],
            next_cursor=None if page.next_after is None else encode_cursor(page.next_after),
            total=page.total,
        )

    @server.tool(annotations=READ_ONLY)
    def get_document(
        id: Annotated[str, Field(min_length=1, description="a doc_id from a citation or from list_documents")],
        start: Offset = None,
        end: Offset = None,
        collection: CollectionName = DEFAULT_COLLECTION,
    ) -> DocumentText:
        """Read a document's text, whole or the characters [start, end). To read around a quote, pass
        start a little before quote_start and end a little after quote_end (within 0..characters); the
        returned offsets are the document's own, so the quote is text[quote_start - start:quote_end - start]."""
        engine = _engine(engine_for, collection)
        document, info = engine.document(id), engine.document_info(id)
        if document is None or info is None:
            raise ToolError(f"id: no document with id '{id}' in collection '{collection}'")
        start, end = _range(start, end, len(document.text))
        summary = DocumentSummary.of(info)
        return DocumentText(**summary.model_dump(), collection=collection, start=start, end=end, text=document.text[start:end])

    return server
