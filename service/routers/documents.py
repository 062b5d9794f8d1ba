from __future__ import annotations

import shutil
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from citeqa.index.engine import DocumentInfo, Engine
from citeqa.index.parsing.formats import MEDIA_TYPES
from citeqa.index.progress import StopWhenAsked
from citeqa.index.text.documents import DocumentError
from citeqa.service.deps import EngineDep, SettingsDep
from citeqa.service.errors import ApiError, document_not_found
from citeqa.service.job_model import Job
from citeqa.service.jobs import JOB_ROUTE, JobBoard, JobsBusyError, JobsDep
from citeqa.service.library import (
    UPLOAD_SOURCE,
    delete_document,
    document_detail,
    original_file,
    upload_result,
    upsert_document,
)
from citeqa.service.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, CursorError, decode_cursor, encode_cursor
from citeqa.service.schemas.documents import (
    DocumentChange,
    DocumentDetail,
    DocumentList,
    DocumentSummary,
    DocumentUpload,
    JobAccepted,
    UploadResult,
)
from citeqa.service.schemas.status import ErrorResponse
from citeqa.service.uploads import (
    FILES_FIELD,
    IDS_FIELD,
    UPLOAD_ROUTE,
    ReceivedUpload,
    UploadLimits,
    is_multipart,
    receive_upload,
)
from citeqa.settings import DEFAULT_COLLECTION, Settings

router = APIRouter(prefix="/documents", tags=["documents"])


def _known(engine: Engine, doc_id: str) -> DocumentInfo:
    info = engine.document_info(doc_id)
    if info is None:
        raise document_not_found(doc_id)
    return info


@router.get(
    "",
    response_model=DocumentList,
    responses={400: {"model": ErrorResponse, "description": "limit out of range, or a malformed cursor"}},
    summary="The indexed documents, a page at a time in id order (follow next_cursor until it is null)",
)
def list_documents(
    engine: EngineDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"documents per page, 1-{MAX_PAGE_SIZE}")
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(description="the next_cursor of the page before; omit it for the first page")] = None,
) -> DocumentList:
    try:
        after = None if cursor is None else decode_cursor(cursor)
    except CursorError as exc:
        raise ApiError(400, f"cursor: {exc}", param="cursor", code="invalid_cursor") from None
    page = engine.documents_page(after, limit)
    return DocumentList(
        documents=[DocumentSummary.of(info) for info in page.documents],
        next_cursor=None if page.next_after is None else encode_cursor(page.next_after),
        total=page.total,
    )


# Declared before GET /{doc_id:path}, which would otherwise take "report.pdf/file" for an id.
ORIGINAL_TYPES = ("application/pdf", *sorted(set(MEDIA_TYPES.values()) - {"application/pdf"}))


@router.get(
    "/{doc_id:path}/file",
    response_class=Response,
    responses={
        200: {
            "description": "the original file, with its media type (a document whose id ends in '/file': its JSON)",
            "content": {media: {"schema": {"type": "string", "format": "binary"}} for media in ORIGINAL_TYPES}
            | {"application/json": {"schema": {"$ref": "#/components/schemas/DocumentDetail"}}},
        },
        404: {"model": ErrorResponse, "description": "no such document, or it has no original (it was added as text)"},
    },
    summary="The original file a document was parsed from (PDFs open at a page with #page=N)",
)
def get_original(doc_id: str, request: Request, engine: EngineDep) -> Response:
    document = engine.document(doc_id)
    if document is None and engine.document_info(f"{doc_id}/file") is not None:
        # The path is ambiguous: it also reads as the plain GET of a document whose id ends in "/file".
        return JSONResponse(get_document(f"{doc_id}/file", request, engine).model_dump())
    if document is None:
        raise document_not_found(doc_id)
    return original_file(engine, document)


PAGE_ROUTE_SUMMARY = "A page of a PDF or image document as PNG, with the characters [start, end) highlighted on it"


@router.get(
    "/{doc_id:path}/pages/{page}",
    response_class=Response,
    responses={
        200: {
            "description": "the page as a PNG image; the X-Page-Scale header gives its pixels per page unit",
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
        },
        400: {"model": ErrorResponse, "description": "a bad character range"},
        404: {"model": ErrorResponse, "description": "no such document or page, or the document has no pages to draw"},
    },
    summary=PAGE_ROUTE_SUMMARY,
)
def get_page(
    doc_id: str,
    page: Annotated[int, Path(ge=1, le=1_000_000, description="1-based page number")],
    engine: EngineDep,
    start: Annotated[int | None, Query(ge=0, description="first character to highlight (a citation's quote_start)")] = None,
    end: Annotated[int | None, Query(ge=0, description="end of that span, exclusive (quote_end)")] = None,
) -> Response:
    document = engine.document(doc_id)
    if document is None:
        raise document_not_found(doc_id)
    if (start is None) != (end is None):
        raise ApiError(400, "give both start and end, or neither", param="start" if start is None else "end")
    if start is not None and end is not None and not start < end <= len(document.text):
        raise ApiError(400, f"the range must satisfy start < end <= {len(document.text)} (the text's length)", param="end")
    count = engine.pages.page_count(document)
    if count == 0:
        raise ApiError(404, f"document '{doc_id}' has no pages (only PDFs and images do)", param="doc_id", code="page_not_found")
    if page > count:
        raise ApiError(404, f"page {page} is out of range: '{doc_id}' has {count} pages", param="page", code="page_not_found")
    boxes = engine.pages.boxes(document, start, end) if start is not None and end is not None else []
    try:
        image, scale = engine.pages.image(document, page, boxes)
    except DocumentError as exc:
        raise ApiError(404, str(exc), param="doc_id", code="page_not_found") from exc
    # The picture's pixels per page unit, so a client can place the citation's boxes on it itself.
    return Response(image, media_type="image/png", headers={"X-Page-Scale": f"{scale:.6f}"})


@router.get(
    "/{doc_id:path}",
    response_model=DocumentDetail,
    responses={404: {"model": ErrorResponse}},
    summary="One document with its full text, so a citation can be checked against text[quote_start:quote_end]",
)
def get_document(doc_id: str, request: Request, engine: EngineDep) -> DocumentDetail:
    entry = engine.document_entry(doc_id)
    if entry is None:
        raise document_not_found(doc_id)
    info, document = entry
    return document_detail(DocumentSummary.of(info), document, path_prefix=request.url.path.split("/documents/", 1)[0])


UPLOAD_FORM_SCHEMA = {
    "type": "object",
    "required": [FILES_FIELD],
    "properties": {
        FILES_FIELD: {"type": "array", "items": {"type": "string", "format": "binary"}, "description": "one or more files"},
        IDS_FIELD: {
            "type": "array",
            "items": {"type": "string"},
            "description": "optional: one id per file, in the same order (default: the file's name)",
        },
    },
}


@router.post(
    "",
    name=UPLOAD_ROUTE,  # how the body limit knows this route takes uploads (service/uploads.py)
    status_code=201,
    response_model=None,
    responses={
        201: {
            "model": DocumentChange | UploadResult,
            "description": "added: a DocumentChange for JSON, an UploadResult (one entry per file) for multipart",
        },
        200: {"model": DocumentChange | UploadResult, "description": "replaced or unchanged (multipart: nothing added)"},
        202: {"model": JobAccepted, "description": "a large upload, or wait=false: a job to poll at status_url"},
        400: {"model": ErrorResponse},
        413: {"model": ErrorResponse, "description": "over an upload limit, or JSON over CITEQA_MAX_REQUEST_BYTES"},
        415: {"model": ErrorResponse, "description": "the one file sent is not a kind of document citeqa reads"},
        503: {
            "model": ErrorResponse,
            "description": "the collection's writer is busy, too many jobs are waiting, or the server is stopping",
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": DocumentUpload.model_json_schema()},
                "multipart/form-data": {"schema": UPLOAD_FORM_SCHEMA},
            },
        }
    },
    summary="Add documents: JSON {id, text}, or files (PDF, Word, HTML, Markdown, text) as multipart/form-data",
)
async def add_documents(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    jobs: JobsDep,
    wait: Annotated[
        bool, Query(description="multipart only: false returns 202 and a job at once; true waits unless the upload is large")
    ] = True,
) -> JSONResponse:
    content_type = request.headers.get("content-type", "")
    if is_multipart(content_type):
        return await _upload(request, engine, settings, jobs, wait)
    if content_type and "json" not in content_type.split(";", 1)[0]:
        raise ApiError(
            415, f"unsupported content type '{content_type}': send application/json {{id, text}} or multipart/form-data files"
        )
    try:
        upload = DocumentUpload.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc
    try:
        status = await run_in_threadpool(upsert_document, engine, upload.id, upload.text, stop_when_asked(request))
    except DocumentError as exc:
        raise ApiError(400, f"text: {exc}", param="text") from exc
    change = DocumentChange(status=status, id=upload.id, document=DocumentSummary.of(_known(engine, upload.id)))
    return JSONResponse(change.model_dump(), status_code=201 if status == "added" else 200)


async def _upload(request: Request, engine: Engine, settings: Settings, jobs: JobBoard, wait: bool) -> JSONResponse:
    limits = UploadLimits.of(settings)
    folder = engine.originals.incoming()
    handed_over = False
    try:
        received = await receive_upload(request, folder, limits)
        if not wait or received.total_bytes > settings.upload_job_bytes:
            reply = await _submit(request, jobs, received)
            handed_over = True  # its files are the job's now, in the data home
            return reply
        report = await run_in_threadpool(
            engine.ingest_files, received.files, UPLOAD_SOURCE, settings.parse_limits(), stop_when_asked(request)
        )
        if len(report.outcomes) == 1 and report.outcomes[0].status == "failed":
            only = report.outcomes[0]
            raise ApiError(415 if only.unsupported else 400, f"{only.filename}: {only.reason}", param=FILES_FIELD,
                           code="unsupported_media_type" if only.unsupported else "invalid_document")  # fmt: skip
        result = upload_result(engine, report)
        return JSONResponse(result.model_dump(), status_code=201 if result.added else 200)
    finally:
        if not handed_over:
            await run_in_threadpool(shutil.rmtree, folder, True)


def stop_when_asked(request: Request) -> StopWhenAsked:
    """A write made while serving stops before its commit once the server is asked to stop (a 503, nothing changed)."""
    return StopWhenAsked(request.app.state.stopping)


async def _submit(request: Request, jobs: JobBoard, received: ReceivedUpload) -> JSONResponse:
    collection = request.path_params.get("collection", DEFAULT_COLLECTION)
    try:
        # The job's row and its files reach the data home together, before the 202 (service/job_store.py).
        job = await run_in_threadpool(jobs.submit, Job.for_files(collection, received.files), received.folder)
    except JobsBusyError as exc:
        raise ApiError(503, str(exc), code="jobs_busy") from exc
    status_url = request.app.url_path_for(JOB_ROUTE, job_id=job.id)  # GET /v1/jobs/{job_id}, as routers/jobs.py declares it
    body = JobAccepted(job=job.info(), status_url=status_url)
    return JSONResponse(body.model_dump(), status_code=202, headers={"Location": status_url})


@router.delete(
    "/{doc_id:path}",
    response_model=DocumentChange,
    responses={404: {"model": ErrorResponse}},
    summary="Remove a document and its chunks",
)
def remove_document(doc_id: str, engine: EngineDep) -> DocumentChange:
    if not delete_document(engine, doc_id):
        raise document_not_found(doc_id)
    return DocumentChange(status="deleted", id=doc_id)
