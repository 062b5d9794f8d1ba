"""`citeqa mcp`: the MCP server over stdin/stdout, for clients that start it as a subprocess.

Stdout carries the protocol and nothing else: one stray line (a progress message, a library's print)
and the client drops the connection. Loading runs with stdout pointed at stderr, at the descriptor level
so output written by C extensions is caught too; while serving, the SDK's stdio transport does the same.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout

from citeqa.index.progress import NO_PROGRESS, Progress
from citeqa.service.collections import CollectionRegistry
from citeqa.service.indexing import open_or_build
from citeqa.service.limits import Limits
from citeqa.service.mcp_server import build_mcp_server
from citeqa.settings import DEFAULT_COLLECTION, Settings


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Inside the block, everything written to stdout (Python or fd 1) goes to stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 1)
        os.close(saved)


def serve_stdio(settings: Settings, progress: Progress = NO_PROGRESS, announce: Callable[[str], None] | None = None) -> None:
    """Open the default collection's index (building it from the corpus if there is none, with `progress` and
    `announce` hearing of it), then serve."""
    with stdout_to_stderr():
        engine = open_or_build(settings, progress, announce)
    # The same registry the HTTP app uses: other collections in the data home open on first use.
    collections = CollectionRegistry(settings, engine.embedder, engine.settings)
    collections.attach(DEFAULT_COLLECTION, engine)
    count = engine.stats().documents
    print(f"citeqa mcp: serving {settings.index_dir} ({count} document{'' if count == 1 else 's'}) over stdio", file=sys.stderr)
    try:
        build_mcp_server(collections.get, settings.answer_top_k, Limits.of(settings)).run("stdio")
    finally:
        engine.close()
