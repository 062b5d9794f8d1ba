from __future__ import annotations

from fastapi import APIRouter, Request, Response

from citeqa.index.documents import DocumentError
from citeqa.index.engine import Engine
from citeqa.service.deps import EngineDep
from citeqa.service.errors import ApiError
from citeqa.service.library import delete_document, upsert_document
from citeqa.service.schemas import DocumentChange, DocumentDetail, DocumentList, DocumentSummary, DocumentUpload, ErrorResponse

router = APIRouter(prefix="/v1/documents", tags=["documents"])


def _summary(engine: Engine, doc_id: str) -> DocumentSummary:
    document = engine.store.documents[doc_id]
    return DocumentSummary(
        id=document.id,
        title=document.title,
        source=document.source,
        chunks=engine.store.chunk_counts.get(doc_id, 0),
        sha256=document.sha256,
        characters=len(document.text),
    )


@router.get("", response_model=DocumentList, summary="Every indexed document")
def list_documents(engine: EngineDep) -> DocumentList:
    return DocumentList(documents=[_summary(engine, doc_id) for doc_id in sorted(engine.store.documents)])


@router.get(
    "/{doc_id:path}",
    response_model=DocumentDetail,
    responses={404: {"model": ErrorResponse}},
    summary="One document with its full text, so a citation can be checked against text[quote_start:quote_end]",
)
def get_document(doc_id: str, engine: EngineDep) -> DocumentDetail:
    if doc_id not in engine.store.documents:
        raise ApiError(404, f"no document with id '{doc_id}'", param="doc_id", code="document_not_found")
    return DocumentDetail(**_summary(engine, doc_id).model_dump(), text=engine.store.documents[doc_id].text)


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
    return DocumentChange(status=status, id=upload.id, document=_summary(engine, upload.id))


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
