"""Shared fixtures: the real bundled model (loaded once), real indexes in temporary folders."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from citeqa.home import bundled
from citeqa.index.engine import Engine
from citeqa.index.models.embedding import Embedder
from citeqa.service.app import create_app
from citeqa.service.indexing import build_from_corpus
from citeqa.settings import Settings

# Nothing a test runs may touch the user's data home; subprocesses inherit this.
os.environ["CITEQA_HOME"] = tempfile.mkdtemp(prefix="citeqa-test-home-")
# The home holds the run's ONNX export (about 100 MB); leaving it behind would fill /tmp run after run.
atexit.register(shutil.rmtree, os.environ["CITEQA_HOME"], ignore_errors=True)
# One ONNX export of the model for the whole run, shared by every process, also those given a home of their own.
os.environ["CITEQA_MODELS_DIR"] = str(Path(os.environ["CITEQA_HOME"]) / "models")
# A served test runs one process (one model load) unless it asks for more: the tests of several workers say so.
os.environ.setdefault("CITEQA_WORKERS", "1")
# TestClient sends `Host: testserver`; a server answers only to the host names it knows (service/hosts.py).
os.environ.setdefault("CITEQA_ALLOWED_HOSTS", "testserver")

SEEDS = bundled("seeds")
SEED_ID = "000_ffb073c2a839212b.txt"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The configured embedder, built the one way the service and the CLI build it."""
    return Settings().engine_settings().embedder().load()


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(corpus_dir=SEEDS, index_dir=tmp_path_factory.mktemp("seed-index"))


@pytest.fixture(scope="session")
def seed_engine(seed_settings: Settings, embedder: Embedder) -> Engine:
    engine = Engine.create(seed_settings.index_dir, seed_settings.engine_settings(), embedder)
    build_from_corpus(seed_settings, engine=engine)
    return engine


@pytest.fixture(scope="session")
def client(seed_settings: Settings, seed_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(seed_settings, seed_engine)) as test_client:
        yield test_client


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A writable copy of the seeds for tests that edit documents."""
    target = tmp_path / "corpus"
    shutil.copytree(SEEDS, target)
    return target


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files holding slow tests run first. `make test` spreads files over two processes (pytest-xdist,
    --dist loadfile), each taking the next file when it is done: long files first and the many short ones last
    let both finish together, instead of one running a late kill test alone while the other waits."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: a file's own order is kept
