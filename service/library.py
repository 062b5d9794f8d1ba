"""Adding, replacing and removing documents while the service runs (one commit per request), and what the
documents routes send back: details, original files, upload results.

Splitting and embedding happen outside the collection's write lock; the commit itself is quick and never
blocks readers, who keep the snapshot they started with.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi.responses import FileResponse

from citeqa.index.engine import Engine
from citeqa.index.parsing.locate import original_of
from citeqa.index.progress import NO_PROGRESS, Progress
from citeqa.index.text.documents import Document, document_from_text
from citeqa.index.writing.ingest import IngestReport
from citeqa.service.errors import ApiError
from citeqa.service.schemas.documents import DocumentDetail, DocumentSummary, OriginalFile, UploadedFile, UploadResult

UPLOAD_SOURCE = "upload/"  # the source of an uploaded document: "upload/<id>"


def upsert_document(engine: Engine, doc_id: str, text: str, progress: Progress = NO_PROGRESS) -> str:
    """Add or replace one document; returns 'added', 'updated' or 'unchanged'."""
    result = engine.upsert([document_from_text(doc_id, text, source=f"api/{doc_id}")], progress)
    return "added" if result.added else "updated" if result.updated else "unchanged"


def delete_document(engine: Engine, doc_id: str) -> bool:
    return bool(engine.delete([doc_id]).removed)


# -- original files -----------------------------------------------------------------------------------------------

# A stored original is served as it arrived. HTML written by whoever uploaded it must not run as this server's page
# (it would reach the API with the reader's credentials), so it is sandboxed: no scripts, no requests anywhere.
HTML_POLICY = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
# Browsers show these themselves (PDF viewer, text, PNG and JPEG pictures); anything else (Word, TIFF, which most
# browsers cannot draw) is offered as a download.
SHOWN_INLINE = frozenset({"application/pdf", "text/html", "text/plain", "text/markdown", "image/png", "image/jpeg"})


def _charset(document: Document) -> str | None:
    """The charset a text original was read with, when a browser knows it by the same name."""
    encoding = str(document.meta.get("metadata", {}).get("encoding", "")).lower().replace("_", "-")
    if encoding in ("utf-8", "utf-8-sig", "ascii"):
        return "utf-8"
    if encoding.startswith("cp125"):
        return "windows-" + encoding.removeprefix("cp")
    return None


def original_file(engine: Engine, document: Document) -> FileResponse:
    """The document's original file, with its media type; 404 when it has none (text sent as text)."""
    original = original_of(document.meta)
    path = engine.originals.path(original.sha256) if original else None
    if original is None or path is None:
        raise ApiError(
            404,
            f"document '{document.id}' has no original file (it was added as text)",
            param="doc_id",
            code="original_not_found",
        )
    media_type = original.media_type
    charset = _charset(document) if media_type.startswith("text/") else None
    response = FileResponse(
        path,
        media_type=f"{media_type}; charset={charset}" if charset else media_type,
        filename=original.filename,
        content_disposition_type="inline" if media_type in SHOWN_INLINE else "attachment",
    )
    if media_type == "text/html":
        response.headers["Content-Security-Policy"] = HTML_POLICY
    return response


def file_url(path_prefix: str, doc_id: str) -> str:
    """/v1[/collections/NAME]/documents/{id}/file, with the id's segments percent-encoded."""
    return f"{path_prefix}/documents/{quote(doc_id, safe='/')}/file"


def document_detail(summary: DocumentSummary, document: Document, path_prefix: str) -> DocumentDetail:
    original = original_of(document.meta)
    pages = document.meta.get("pages")
    metadata = document.meta.get("metadata") or {}
    return DocumentDetail(
        **summary.model_dump(),
        text=document.text,
        original=OriginalFile(
            filename=original.filename,
            media_type=original.media_type,
            sha256=original.sha256,
            bytes=original.bytes,
            url=file_url(path_prefix, document.id),
        )
        if original
        else None,
        pages=len(pages) if isinstance(pages, list) else None,
        metadata={str(k): str(v) for k, v in metadata.items()},
    )


# -- uploads ------------------------------------------------------------------------------------------------------


def upload_result(engine: Engine, report: IngestReport) -> UploadResult:
    files = []
    for outcome in report.outcomes:
        info = engine.document_info(outcome.doc_id) if outcome.doc_id and outcome.status != "failed" else None
        files.append(
            UploadedFile(
                filename=outcome.filename,
                id=outcome.doc_id,
                status=outcome.status,
                reason=outcome.reason,
                media_type=outcome.media_type,
                bytes=outcome.size,
                document=DocumentSummary.of(info) if info else None,
            )
        )
    return UploadResult(
        files=files,
        added=report.count("added"),
        updated=report.count("updated"),
        unchanged=report.count("unchanged"),
        failed=report.count("failed"),
    )
