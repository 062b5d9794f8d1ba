"""Every error leaves the service as {"error": {message, type, param, code}}, never a traceback.

`error_response` is the one builder of that body: the exception handlers below, the middlewares that answer
before a route runs (hosts, API keys, body limit: 400, 401, 403, 413), the MCP endpoint and the last-resort 500
all reply through it. Errors the index raises while serving are mapped here once, for every route: a busy
writer and a write stopped by the server's own stop are 503s.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from citeqa.index.progress import WriteStopped
from citeqa.index.storage.write_lock import WriterBusyError
from citeqa.service.limits import LIMIT_EXCEEDED
from citeqa.service.route_table import route_table
from citeqa.service.schemas.status import ErrorBody, ErrorResponse

log = logging.getLogger("citeqa")

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    503: "unavailable_error",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def error_response(status: int, message: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(message=message, type=ERROR_TYPES.get(status, "api_error"), param=param, code=code))
    return JSONResponse(status_code=status, content=body.model_dump())


def internal_error(request_id: str = "") -> JSONResponse:
    """The one 500: the traceback goes to the server log only; the client gets the request id to quote."""
    which = f" (request id {request_id})" if request_id else ""
    return error_response(500, f"internal error{which}; the server log has the details", code="internal_error")


def index_not_loaded() -> ApiError:
    """A request that needs the index while the server is still loading it."""
    return ApiError(503, "the index is not loaded yet")


def document_not_found(doc_id: str) -> ApiError:
    return ApiError(404, f"no document with id '{doc_id}'", param="doc_id", code="document_not_found")


def collection_not_found(name: str, param: str) -> ApiError:
    return ApiError(404, f"no collection named '{name}'", param=param, code="collection_not_found")


def describe_validation(exc: RequestValidationError) -> tuple[str, str | None]:
    """One readable sentence per problem, e.g. "body.top_k: Input should be less than or equal to 50"."""
    problems, first_param = [], None
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ()) if part != "body"]
        if error.get("type") == "json_invalid":
            problems.append(f"malformed JSON: {error.get('ctx', {}).get('error', 'cannot parse the body')}")
            continue
        param = ".".join(location) or None
        first_param = first_param or param
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        problems.append(f"{param}: {message}" if param else message)
    return "; ".join(problems) or "invalid request", first_param


SERVER_STOPPING = "the server is stopping; nothing of this write was committed. Send it again once the server is back."


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.param, exc.code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = describe_validation(exc)
        # Over a limit (CITEQA_MAX_CHAT_*) is a 413: well formed, but more than this server agreed to take.
        if any(error.get("type") == LIMIT_EXCEEDED for error in exc.errors()):
            return error_response(413, message, param, "limit_exceeded")
        return error_response(400, message, param, "invalid_request")

    @app.exception_handler(WriteStopped)
    async def _stopped(_: Request, exc: WriteStopped) -> JSONResponse:
        # The server was asked to stop while this write embedded: it ended before its commit, so nothing changed.
        return error_response(503, SERVER_STOPPING, code="server_stopping")

    @app.exception_handler(WriterBusyError)
    async def _busy(_: Request, exc: WriterBusyError) -> JSONResponse:
        # Another writer held the collection's write lock past CITEQA_WRITE_TIMEOUT; nothing of this write was committed.
        return error_response(503, str(exc), code="writer_busy")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = error_response(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:  # RFC 9110: a 405 lists every method the path allows (Starlette names one route's)
            response.headers["Allow"] = ", ".join(route_table(request.app).allowed_methods(request.scope["path"]))
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Reached only by what escapes the request context middleware (service/observability.py), which answers
        # anything a route raises with this same 500.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return internal_error(str(getattr(request.state, "request_id", "")))
