from __future__ import annotations

from fastapi import APIRouter, Request, Response

from citeqa.index.documents import DocumentError
from citeqa.index.engine import DocumentInfo, Engine
from citeqa.service.deps import EngineDep
from citeqa.service.errors import ApiError
from citeqa.service.library import delete_document, upsert_document
from citeqa.service.schemas import DocumentChange, DocumentDetail, DocumentList, DocumentSummary, DocumentUpload, ErrorResponse

router = APIRouter(prefix="/v1/documents", tags=["documents"])


def _summary(info: DocumentInfo) -> DocumentSummary:
    return DocumentSummary(
        id=info.id, title=info.title, source=info.source, chunks=info.chunks, sha256=info.sha256, characters=info.characters
    )


def _known(engine: Engine, doc_id: str) -> DocumentInfo:
    info = engine.document_info(doc_id)
    if info is None:
        raise ApiError(404, f"no document with id '{doc_id}'", param="doc_id", code="document_not_found")
    return info


@router.get("", response_model=DocumentList, summary="Every indexed document")
def list_documents(engine: EngineDep) -> DocumentList:
    return DocumentList(documents=[_summary(info) for info in engine.documents()])


@router.get(
    "/{doc_id:path}",
    response_model=DocumentDetail,
    responses={404: {"model": ErrorResponse}},
    summary="One document with its full text, so a citation can be checked against text[quote_start:quote_end]",
)
def get_document(doc_id: str, engine: EngineDep) -> DocumentDetail:
    info = _known(engine, doc_id)
    document = engine.document(doc_id)
    assert document is not None  # the same engine snapshot answered document_info
    return DocumentDetail(**_summary(info).model_dump(), text=document.text)


@router.post(
    "",
    response_model=DocumentChange,
    status_code=201,
    responses={200: {"model": DocumentChange, "description": "replaced or unchanged"}, 400: {"model": ErrorResponse}},
    summary="Add a document, or replace the one with the same id (indexed before the reply)",
)
def add_document(upload: DocumentUpload, request: Request, response: Response, engine: EngineDep) -> DocumentChange:
    try:
        status, engine = upsert_document(request.app, upload.id, upload.text)
    except DocumentError as exc:
        raise ApiError(400, f"text: {exc}", param="text") from exc
    if status != "added":
        response.status_code = 200
    return DocumentChange(status=status, id=upload.id, document=_summary(_known(engine, upload.id)))


@router.delete(
    "/{doc_id:path}",
    response_model=DocumentChange,
    responses={404: {"model": ErrorResponse}},
    summary="Remove a document and its chunks",
)
def remove_document(doc_id: str, request: Request, engine: EngineDep) -> DocumentChange:
    if not delete_document(request.app, doc_id):
        raise ApiError(404, f"no document with id '{doc_id}'", param="doc_id", code="document_not_found")
    return DocumentChange(status="deleted", id=doc_id)
