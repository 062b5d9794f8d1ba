"""Shared pieces of the upload tests: an app over its own index, and multipart bodies written byte by byte (so a
test can send exactly the file names a hostile client would)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from fastapi.testclient import TestClient

from citeqa.index.engine import Engine
from citeqa.index.models.embedding import Embedder
from citeqa.service.app import create_app
from citeqa.service.indexing import build_from_corpus
from citeqa.settings import Settings
from tests.conftest import SEEDS


@contextmanager
def upload_app(index_dir: Path, embedder: Embedder, **overrides: object) -> Iterator[TestClient]:
    """An app over a fresh index of the seed document, with settings overrides (limits, job threshold). Its data
    home (where jobs live) is its own, beside the index."""
    overrides.setdefault("home", index_dir.parent / "home")
    settings = Settings(corpus_dir=SEEDS, index_dir=index_dir, **overrides)
    engine = Engine.create(index_dir, settings.engine_settings(), embedder)
    build_from_corpus(settings, engine=engine)
    try:
        with TestClient(create_app(settings, engine)) as client:
            yield client
    finally:
        engine.close()


def files_form(files: dict[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    """httpx's `files=` for a set of files named by relative path (the name is sent as the file name)."""
    return [("files", (name, data, "application/octet-stream")) for name, data in files.items()]


def multipart(parts: Sequence[tuple[bytes, bytes | None, bytes]]) -> tuple[str, bytes]:
    """(content type, body) for parts of (field name, raw file name or None for a text field, content)."""
    boundary = uuid.uuid4().hex.encode()
    body = b""
    for name, filename, content in parts:
        disposition = b'form-data; name="' + name + b'"'
        if filename is not None:
            disposition += b'; filename="' + filename + b'"'
        body += b"--" + boundary + b"\r\nContent-Disposition: " + disposition + b"\r\n\r\n" + content + b"\r\n"
    body += b"--" + boundary + b"--\r\n"
    return f"multipart/form-data; boundary={boundary.decode()}", body
