"""The request body limit, in front of everything (a pure ASGI middleware, so nothing has read the body yet).

A declared Content-Length over the limit is refused before a byte is read, and a body without one (chunked)
is counted as it streams and cut off at the limit (CITEQA_MAX_REQUEST_BYTES), so a 50 MB body never sits in
memory. Multipart file uploads are exempt: the upload code streams them and enforces limits of its own
(service/uploads.py). The same middleware publishes the app's limits for the request models' validators.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citeqa.service.errors import error_response
from citeqa.service.limits import Limits, publish, withdraw


def too_large_message(limit: int, declared: int | None = None) -> str:
    size = f" ({declared} bytes)" if declared is not None else ""
    return f"the request body{size} is larger than the limit of {limit} bytes (CITEQA_MAX_REQUEST_BYTES)"


class RequestLimitsMiddleware:
    """413 for a body over the limit, declared or streamed; publishes the limits for the request models."""

    def __init__(self, app: ASGIApp, limits: Limits, exempt: Callable[[Scope], bool] | None = None) -> None:
        self.app = app
        self.limits = limits
        # Requests that enforce size limits of their own as they stream (file uploads: service/uploads.py).
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = publish(self.limits)
        try:
            if self.exempt is not None and self.exempt(scope):
                await self.app(scope, receive, send)
            else:
                await self._guarded(scope, receive, send)
        finally:
            withdraw(token)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limits.max_request_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            message = too_large_message(limit, declared)
            await error_response(413, message, code="request_too_large")(scope, receive, send)
            return

        received = 0
        refused = False  # once the limit is passed: the 413 is sent and the app's own reply is dropped
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not response_started:
                        reply = error_response(413, too_large_message(limit), code="request_too_large")
                        await reply(scope, _no_body, send)
                    # The app sees the client go away and stops reading; nothing more is buffered.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server (h11, httptools) refuses a malformed Content-Length before we see it
    return None
