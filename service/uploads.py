"""Receiving files: a multipart/form-data body streamed to temporary files, with every limit decided as early as
it can be.

- A declared Content-Length over CITEQA_MAX_UPLOAD_BYTES is refused before a byte is read.
- Otherwise the body is counted as it streams: past the request limit, past CITEQA_MAX_UPLOAD_FILE_BYTES in one
  file, or at one file more than CITEQA_MAX_UPLOAD_FILES, reading stops and the reply is a 413 naming the limit.
- File bytes go straight to disk (hashed on the way), never whole into memory.

Form fields: `files` (repeated, each a file part) and optional `ids` (text, one per file, in the same order). A
file's id is its `ids` entry, else its file name; either is checked (documents.check_document_id) and a refused
name fails that file alone.

The upload route is exempt from the general request body limit (CITEQA_MAX_REQUEST_BYTES): uploads have the
limits above instead, counted here. Which requests are uploads is asked of the app's route table (`upload_check`),
so the route's paths are written once, where the route is declared.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Scope

from citeqa.index.text.documents import MAX_ID_CHARS, DocumentError, check_document_id
from citeqa.index.writing.ingest import IncomingFile
from citeqa.service.errors import ApiError
from citeqa.service.route_table import route_table
from citeqa.settings import Settings

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks  # declared for type checkers only

# The name of the route that takes uploads (POST /v1/documents and /v1/collections/{collection}/documents): its
# endpoint's name, declared with it in service/routers/documents.py, so its OpenAPI operationId is unchanged.
UPLOAD_ROUTE = "add_documents"
FILES_FIELD, IDS_FIELD = "files", "ids"
# An `ids` value is an id: anything much longer is not one, and is not worth buffering.
MAX_FIELD_BYTES = 4 * MAX_ID_CHARS


def is_multipart(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "multipart/form-data"


def upload_check(app: ASGIApp) -> Callable[[Scope], bool]:
    """Whether a request is a multipart POST to the upload route: limited here, not by the general body limit."""
    table = route_table(app)

    def is_upload(scope: Scope) -> bool:
        if scope.get("type") != "http" or scope.get("method") != "POST":
            return False
        content_type = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"content-type"), "")
        if not is_multipart(content_type):
            return False
        route = table.serving("POST", scope.get("path", ""))
        return route is not None and route.name == UPLOAD_ROUTE

    return is_upload


@dataclass(frozen=True, kw_only=True)
class UploadLimits:
    file_bytes: int
    request_bytes: int
    files: int

    @classmethod
    def of(cls, settings: Settings) -> UploadLimits:
        return cls(
            file_bytes=settings.max_upload_file_bytes, request_bytes=settings.max_upload_bytes, files=settings.max_upload_files
        )


def too_large(message: str) -> ApiError:
    return ApiError(413, message, code="limit_exceeded")


@dataclass
class _Part:
    name: str = ""
    filename: bytes | None = None
    handle: IO[bytes] | None = None
    path: Path | None = None
    size: int = 0
    digest: Any = None  # a running sha256 of a file part
    data: bytearray = field(default_factory=bytearray)


@dataclass
class ReceivedUpload:
    folder: Path  # the temporary files; the receiver of this object removes it
    files: list[IncomingFile]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


class _Receiver:
    """The callbacks of python-multipart's push parser: parts become temporary files or short text fields."""

    def __init__(self, folder: Path, limits: UploadLimits) -> None:
        self.folder = folder
        self.limits = limits
        self.part = _Part()
        self.header_name = b""
        self.header_value = b""
        self.disposition = b""
        self.files: list[_Part] = []
        self.ids: list[str] = []
        self.complete = False  # the closing boundary was seen: a body cut short never counts as an upload

    def on_end(self) -> None:
        self.complete = True

    def on_part_begin(self) -> None:
        self.part = _Part()
        self.disposition = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.header_name.lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name = self.header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self.part.name = name
        if name == FILES_FIELD:
            if b"filename" not in options:
                raise ApiError(400, f"each '{FILES_FIELD}' part must be a file (with a filename)", param=FILES_FIELD)
            if len(self.files) >= self.limits.files:
                raise too_large(f"more than {self.limits.files} files in one upload (CITEQA_MAX_UPLOAD_FILES)")
            self.part.filename = options[b"filename"]
            self.part.path = self.folder / f"{len(self.files):05d}"
            self.part.handle = self.part.path.open("wb")
            self.part.digest = hashlib.sha256()
            self.files.append(self.part)
        elif name != IDS_FIELD:
            raise ApiError(
                400, f"unknown form field '{name}': send files as '{FILES_FIELD}' and their ids as '{IDS_FIELD}'", param=name
            )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        part = self.part
        part.size += len(chunk)
        if part.handle is None:
            if part.size > MAX_FIELD_BYTES:
                raise ApiError(400, f"an '{IDS_FIELD}' value is longer than an id can be ({MAX_ID_CHARS} characters)")
            part.data.extend(chunk)
            return
        if part.size > self.limits.file_bytes:
            raise too_large(
                f"file '{_display(part.filename)}' is larger than the limit of {self.limits.file_bytes} bytes "
                "(CITEQA_MAX_UPLOAD_FILE_BYTES)"
            )
        # Written from the event loop: a chunk is at most what one receive() brought (64 KiB from uvicorn), which the
        # page cache takes at once; a thread hop per chunk would cost more than the write.
        part.handle.write(chunk)
        assert part.digest is not None
        part.digest.update(chunk)

    def on_part_end(self) -> None:
        part = self.part
        if part.handle is not None:
            part.handle.close()
            part.handle = None
        elif part.name == IDS_FIELD:
            try:
                self.ids.append(bytes(part.data).decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise ApiError(400, f"an '{IDS_FIELD}' value is not valid UTF-8", param=IDS_FIELD) from exc

    def close(self) -> None:
        for part in self.files:
            if part.handle is not None:
                part.handle.close()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_end": self.on_end,
        }


def _display(filename: bytes | None) -> str:
    return (filename or b"").decode("utf-8", "replace")[:MAX_ID_CHARS]


def _declared_length(request: Request) -> int | None:
    try:
        return int(request.headers["content-length"])
    except (KeyError, ValueError):
        return None


async def receive_upload(request: Request, folder: Path, limits: UploadLimits) -> ReceivedUpload:
    """Stream the request's files into `folder`. Raises ApiError (400 malformed, 413 over a limit); the caller
    removes `folder` whatever happens."""
    declared = _declared_length(request)
    if declared is not None and declared > limits.request_bytes:
        raise too_large(
            f"the upload ({declared} bytes) is larger than the limit of {limits.request_bytes} bytes (CITEQA_MAX_UPLOAD_BYTES)"
        )
    _, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if not boundary:
        raise ApiError(400, "multipart/form-data without a boundary")
    receiver = _Receiver(folder, limits)
    parser = MultipartParser(boundary, receiver.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limits.request_bytes:
                raise too_large(f"the upload is larger than the limit of {limits.request_bytes} bytes (CITEQA_MAX_UPLOAD_BYTES)")
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise ApiError(400, f"malformed multipart body: {exc}") from exc
    except ClientDisconnect as exc:
        raise ApiError(400, "the client went away before the upload was complete") from exc
    finally:
        receiver.close()
    if not receiver.complete:
        raise ApiError(400, "malformed multipart body: it ends before its closing boundary (cut short?)")
    return ReceivedUpload(folder, _incoming(receiver))


def _incoming(receiver: _Receiver) -> list[IncomingFile]:
    parts, ids = receiver.files, receiver.ids
    if not parts:
        raise ApiError(400, f"no files: send one or more parts named '{FILES_FIELD}'", param=FILES_FIELD)
    if ids and len(ids) != len(parts):
        raise ApiError(
            400,
            f"{len(ids)} '{IDS_FIELD}' for {len(parts)} files: send one id per file, in the same order, or none",
            param=IDS_FIELD,
        )
    incoming = []
    for index, part in enumerate(parts):
        assert part.path is not None and part.digest is not None and part.filename is not None
        refused: str | None
        try:
            filename = part.filename.decode("utf-8")
        except UnicodeDecodeError:
            filename, refused = _display(part.filename), "the file name is not valid UTF-8"
        else:
            refused = None
        doc_id: str | None = ids[index] if ids else filename
        if refused is None:
            try:
                check_document_id(doc_id or "")
            except DocumentError as exc:
                what = f"id '{doc_id}'" if ids else f"file name '{filename}'"
                refused = f"{what} refused: {exc}"
        if refused is not None:
            doc_id = None
        incoming.append(
            IncomingFile(part.path, filename, doc_id, part.size, part.digest.hexdigest(), refused=refused, temporary=True)
        )
    return incoming
