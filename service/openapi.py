"""The OpenAPI schema says exactly what comes back, and /docs works with no network.

Status codes: validation errors are 400 (the shape OpenAI clients understand, see errors.py), so FastAPI's
default 422 is removed and 400 documented on every operation (a bad body or parameter, or a Host this server
does not answer to); 413 wherever there is a body; 401, and 403 on writes, only when API keys are configured.
The limits that are settings (question length, top_k, chat messages) are written in as the schema's bounds.

/docs is Swagger UI from the swagger-ui-bundle package's files, served from here, started by a script file of
our own (no inline script, so the content security policy can stay 'self').
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from citeqa.service.auth import required_role
from citeqa.service.keys import KeyRing, Role
from citeqa.service.limits import Limits

HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer KEY"},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
DOCS_ASSETS = "/docs/assets"
DOCS_PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>citeqa API</title>
  <link rel="icon" type="image/png" href="{DOCS_ASSETS}/favicon-32x32.png">
  <link rel="stylesheet" href="{DOCS_ASSETS}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{DOCS_ASSETS}/swagger-ui-bundle.js"></script>
  <script src="/static/docs.js"></script>
</body>
</html>
"""


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": copy.deepcopy(ERROR_CONTENT)}


def _request_schema_names(schema: dict[str, Any]) -> set[str]:
    names = set()
    for item in schema.get("paths", {}).values():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            for media in operation.get("requestBody", {}).get("content", {}).values():
                ref = media.get("schema", {}).get("$ref", "")
                if ref.startswith("#/components/schemas/"):
                    names.add(ref.rsplit("/", 1)[1])
    return names


def _apply_limits(schema: dict[str, Any], limits: Limits) -> None:
    components = schema.get("components", {}).get("schemas", {})
    for name in _request_schema_names(schema):
        properties = components.get(name, {}).get("properties", {})
        for field in ("query", "question"):
            if field in properties:
                properties[field]["maxLength"] = limits.max_question_chars
        if "top_k" in properties:
            properties["top_k"]["maximum"] = limits.max_top_k
        if "messages" in properties and properties["messages"].get("type") == "array":
            properties["messages"]["maxItems"] = limits.max_chat_messages


def _document_statuses(schema: dict[str, Any], keys_required: bool) -> None:
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            responses.setdefault(
                "400", _error("Invalid request: a malformed body or parameter, or a Host name this server does not answer to")
            )
            if "{collection}" in path:
                responses.setdefault("404", _error("No collection with that name"))
            if "requestBody" in operation:
                responses.setdefault("413", _error("The body is over CITEQA_MAX_REQUEST_BYTES, or over a chat limit"))
            role = required_role(method.upper(), path)
            if keys_required and role is not None:
                operation["security"] = [{"bearerAuth": []}, {"apiKeyHeader": []}]
                responses.setdefault("401", _error("No API key, or one that is not valid"))
                if role is Role.WRITE:
                    responses.setdefault("403", _error("The API key's role is read; this needs write"))


def _drop_unused_validation_schemas(schema: dict[str, Any]) -> None:
    components = schema.get("components", {}).get("schemas", {})
    text = repr(schema.get("paths", {}))
    for name in ("HTTPValidationError", "ValidationError"):
        if name in components and f"#/components/schemas/{name}'" not in text:
            del components[name]
    # ValidationError is referenced only by HTTPValidationError; check again now that one may be gone.
    if "ValidationError" in components and "HTTPValidationError" not in components:
        del components["ValidationError"]


def install_openapi(app: FastAPI, limits: Limits, keys: KeyRing) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = copy.deepcopy(generate())
            _document_statuses(schema, keys.configured)
            _drop_unused_validation_schemas(schema)
            _apply_limits(schema, limits)
            if keys.configured:
                schema.setdefault("components", {})["securitySchemes"] = copy.deepcopy(SECURITY_SCHEMES)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_docs(app: FastAPI) -> None:
    """/docs from local files (FastAPI's default page loads Swagger UI from a CDN)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=Path(str(swagger_ui_bundle.swagger_ui_path))), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs_page() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE)
