"""The MCP server over streamable HTTP at /mcp, inside the FastAPI app and sharing its engine.

The SDK's session manager owns a task group that must be running before the first request and can run
only once; `McpEndpoint.running()` starts a fresh one inside the app's lifespan, so the same app can be
started again (tests do). Sessions are off (the SDK's stateless mode): every request stands alone, so whichever
worker of `citeqa serve --workers N` receives it can answer it; the tools keep no state between calls anyway.

Both /mcp and /mcp/ are routed here directly: a trailing-slash redirect would otherwise bounce clients configured
either way, and behind a proxy it points at the wrong scheme or host.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.types import Receive, Scope, Send

from citeqa.service.errors import error_response
from citeqa.service.limits import DEFAULT_LIMITS, Limits
from citeqa.service.mcp_server import EngineFor, build_mcp_server

MCP_PATH = "/mcp"


class McpEndpoint:
    """An ASGI endpoint that hands each request to the session manager of the current lifespan."""

    def __init__(
        self, engine_for: EngineFor, answer_top_k: int = 5, host: str = "127.0.0.1", limits: Limits = DEFAULT_LIMITS
    ) -> None:
        self.server = build_mcp_server(engine_for, answer_top_k, limits)
        # Bound to a loopback host, the SDK checks Host and Origin headers (DNS-rebinding protection).
        self._host = host
        self._manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Serve MCP sessions until the block ends; enter it inside the app's lifespan."""
        # Makes a new session manager, stateless (see the module notes).
        self.server.streamable_http_app(streamable_http_path=MCP_PATH, host=self._host, stateless_http=True)
        manager = self.server.session_manager
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._manager is None:
            await error_response(503, "the MCP endpoint is not running")(scope, receive, send)
            return
        await self._manager.handle_request(scope, receive, send)

    def mount(self, app: FastAPI) -> None:
        for path in (MCP_PATH, f"{MCP_PATH}/"):
            # An instance (not a function) is routed as a raw ASGI app, for every method MCP uses (POST, GET, DELETE).
            # Starlette types add_route for request handlers only, though it routes a callable instance as an ASGI app.
            app.add_route(path, self, include_in_schema=False)  # type: ignore[arg-type]
