"""The app's routes flattened to (template, regex, methods, name): for labels, the Allow header, and which route a
request is for before it reaches one (the upload route's own body limits).

Metrics and the request log name a request by its route template (`/v1/documents/{doc_id}`, never the concrete
path, which would make one time series per document), and a 405 lists every method the path accepts. Both need
the full templates of routes included under prefixes (/v1, /v1/collections/{collection}); Starlette's own
scope["route"] holds the route as declared in its router, without the prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute, compile_path
from starlette.types import ASGIApp


@dataclass(frozen=True)
class RouteEntry:
    template: str
    regex: re.Pattern[str]
    methods: frozenset[str] | None  # None: any method (a mounted or raw ASGI app)
    name: str | None = None  # the route's name (its endpoint's, unless declared); None for a mount


def _entries(routes: list[BaseRoute]) -> list[RouteEntry]:
    entries = []
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:  # a router included with a prefix: its routes with their full paths
            for context in contexts():
                regex, template, _ = compile_path(context.path)
                methods = getattr(context.original_route, "methods", None)
                name = getattr(context.original_route, "name", None)
                entries.append(RouteEntry(template, regex, frozenset(methods) if methods else None, name))
        elif isinstance(route, Mount):
            entries.append(RouteEntry(route.path + "/{path}", route.path_regex, None))
        elif isinstance(route, Route | WebSocketRoute):  # FastAPI's routes are these, with a path_format
            methods = getattr(route, "methods", None)
            name = getattr(route, "name", None)
            entries.append(RouteEntry(route.path_format, route.path_regex, frozenset(methods) if methods else None, name))
    return entries


class RouteTable:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._entries: list[RouteEntry] | None = None

    @property
    def entries(self) -> list[RouteEntry]:
        # Built on first use: routes are still being added while the app is assembled.
        if self._entries is None:
            self._entries = _entries(self._app.router.routes)  # type: ignore[attr-defined]
        return self._entries

    def serving(self, method: str, path: str) -> RouteEntry | None:
        """The route that serves (method, path), or None."""
        for entry in self.entries:
            if entry.regex.match(path) and (entry.methods is None or method in entry.methods):
                return entry
        return None

    def template(self, method: str, path: str) -> str | None:
        """The template of the route that serves (method, path); of a route on that path if none takes the method."""
        entry = self.serving(method, path)
        if entry is not None:
            return entry.template
        return next((entry.template for entry in self.entries if entry.regex.match(path)), None)

    def allowed_methods(self, path: str) -> list[str]:
        methods: set[str] = set()
        for entry in self.entries:
            if entry.regex.match(path) and entry.methods:
                methods |= entry.methods
        return sorted(methods)


def route_table(app: ASGIApp) -> RouteTable:
    state = app.state  # type: ignore[attr-defined]
    table = getattr(state, "route_table", None)
    if table is None:
        table = state.route_table = RouteTable(app)
    return table
