"""Who may call what: every request but the open ones needs an API key with the right role.

The rule is decided from the method and the path alone, before any body is read, so an unauthenticated
client cannot make the server read (or parse) a large body. With no keys configured everything is open;
`citeqa serve` allows that only on a loopback address (see cli.py).
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from citeqa.service.errors import error_response
from citeqa.service.keys import KeyRing, Role

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The health probes, the chat page and the API documentation: nothing in them reads the documents.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/", "/openapi.json", "/docs", "/favicon.ico"})
OPEN_PREFIXES = ("/static/", "/docs/")
WRITE_PREFIXES = ("/v1/documents", "/v1/collections")
# Inside a collection these answer questions (POST because they take a body) and change nothing.
COLLECTION_READS = frozenset({"search", "ask", "chat/completions"})
REALM = 'Bearer realm="citeqa"'


def required_role(method: str, path: str) -> Role | None:
    """None for an open path; WRITE for any change under /v1/documents or /v1/collections; READ otherwise.

    Unknown paths need READ too, so a route added later is protected until someone decides otherwise."""
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return None
    if method.upper() in SAFE_METHODS:
        return Role.READ
    for prefix in WRITE_PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            if prefix == "/v1/collections":
                _name, _, rest = path.removeprefix(prefix + "/").partition("/")
                if rest in COLLECTION_READS:
                    return Role.READ
            return Role.WRITE
    return Role.READ


def presented_key(headers: Headers) -> str | None:
    """`Authorization: Bearer KEY`, else `X-API-Key: KEY`."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    api_key = headers.get("x-api-key", "").strip()
    return api_key or None


class ApiKeyMiddleware:
    """401 without a valid key (with WWW-Authenticate), 403 for a key whose role is too low."""

    def __init__(self, app: ASGIApp, keys: KeyRing) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys.configured:
            await self.app(scope, receive, send)
            return
        needed = required_role(scope["method"], scope["path"])
        if needed is None:
            await self.app(scope, receive, send)
            return
        key = presented_key(Headers(scope=scope))
        if key is None:
            response = error_response(
                401, "an API key is required: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'", code="missing_api_key"
            )
            response.headers["WWW-Authenticate"] = REALM
        else:
            role = self.keys.role_of(key)
            if role is None:
                response = error_response(401, "the API key is not valid", code="invalid_api_key")
                response.headers["WWW-Authenticate"] = REALM + ', error="invalid_token"'
            elif role < needed:
                response = error_response(
                    403,
                    f"this key has the role '{role.label}'; {scope['method']} {scope['path']} needs '{needed.label}'",
                    code="insufficient_role",
                )
            else:
                await self.app(scope, receive, send)
                return
        await response(scope, receive, send)
