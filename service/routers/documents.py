from __future__ import annotations

from fastapi import APIRouter

from index.engine import Engine
from service.deps import EngineDep
from service.errors import ApiError
from service.schemas import DocumentDetail, DocumentList, DocumentSummary, ErrorResponse

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
