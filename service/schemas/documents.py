"""What is stored and how it gets there: documents, uploads, upload jobs and collections."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from citeqa.index.engine import DocumentInfo
from citeqa.index.text.documents import MAX_ID_CHARS, DocumentError, check_document_id
from citeqa.service.schemas.checks import not_blank


class DocumentSummary(BaseModel):
    id: str
    title: str
    source: str
    chunks: int
    sha256: str
    characters: int
    media_type: str | None = Field(None, description="the type of the file it was parsed from; null for text sent as text")

    @classmethod
    def of(cls, info: DocumentInfo) -> DocumentSummary:
        return cls(
            id=info.id,
            title=info.title,
            source=info.source,
            chunks=info.chunks,
            sha256=info.sha256,
            characters=info.characters,
            media_type=info.media_type,
        )


class DocumentList(BaseModel):
    documents: list[DocumentSummary] = Field(description="one page, in id order")
    next_cursor: str | None = Field(
        description="pass it as ?cursor= for the next page; null on the last page (an opaque string: send it as it is)"
    )
    total: int = Field(description="how many documents the collection holds now")


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


class DocumentUpload(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"id": "notes/briefing.md", "text": "# Briefing\n\nThe summit was moved to Geneva."}]},
    )

    id: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="stable id; the same id replaces the document")
    text: str = Field(
        min_length=1, description="UTF-8 text, normalised as a file's text is; its first non-empty line (no # marks) is the title"
    )

    @field_validator("id")
    @classmethod
    def _clean_id(cls, value: str) -> str:
        """The one id rule, the same as for uploaded files' names (index/text/documents.py)."""
        try:
            return check_document_id(value)
        except DocumentError as exc:
            raise ValueError(str(exc)) from exc

    _check_text = field_validator("text")(not_blank)


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
    pages_read: int | None = Field(None, description="scans and images: pages OCR has read so far, of pages_to_read")
    pages_to_read: int | None = Field(None, description="scans and images: pages OCR reads in this file")


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
    attempts: int = Field(0, description="times a server started running it (a restart or a busy writer runs it again)")
    counts: JobCounts
    files: list[JobFile]


class JobAccepted(BaseModel):
    job: JobInfo
    status_url: str = Field(description="poll this: GET /v1/jobs/{id}")


class JobList(BaseModel):
    jobs: list[JobInfo] = Field(description="newest first")


class CollectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "handbook"}]})

    name: str = Field(min_length=1, max_length=63, description="1-63 lower-case letters, digits, '-' or '_'")


class CollectionInfo(BaseModel):
    name: str
    documents: int
    chunks: int


class CollectionList(BaseModel):
    collections: list[CollectionInfo]
