"""Schemathesis against the real app: every operation in /openapi.json, over a thousand generated requests,
no server error, and every reply as the schema says (status code, content type, headers, body).

Generated data is both valid (positive) and invalid (negative) against the schema; the checks are
schemathesis' own, all of them except positive_data_acceptance: some rules are not expressible in the schema
(a question of only whitespace, a document id with a '..' segment, a chat without a user message), so a
schema-valid request can rightly be a 400, which the schema documents. Runs are derandomized: the same
cases every run, so CI cannot pass one day and fail the next on luck.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr

from citeqa.home import bundled
from citeqa.index.engine import Engine
from citeqa.index.models.embedding import Embedder
from citeqa.service.app import create_app
from citeqa.service.indexing import build_from_corpus
from citeqa.settings import Settings

POSITIVE_CASES = 50  # per operation
NEGATIVE_CASES = 25
KEYED_CASES = 10
MIN_TOTAL_CASES = 1000
READ_KEY = "fuzz-read-key-0123456789"
EXCLUDED_CHECKS = [schemathesis.checks.positive_data_acceptance]
# Over a thousand requests, about 25 s; the documented statuses and schema are checked case by case in the quick tier.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzz_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """An index and data home of their own: generated requests add and delete documents and collections."""
    root = tmp_path_factory.mktemp("fuzz")
    return Settings(corpus_dir=bundled("seeds"), index_dir=root / "index", home=root / "home")


@pytest.fixture(scope="module")
def fuzz_engine(fuzz_settings: Settings, embedder: Embedder) -> Engine:
    engine = Engine.create(fuzz_settings.index_dir, fuzz_settings.engine_settings(), embedder)
    build_from_corpus(fuzz_settings, engine=engine)
    return engine


def started(app: FastAPI) -> Iterator[FastAPI]:
    with TestClient(app):  # runs the lifespan: the engine is in place before the first generated request
        yield app


@pytest.fixture(scope="module")
def open_app(fuzz_settings: Settings, fuzz_engine: Engine) -> Iterator[FastAPI]:
    yield from started(create_app(fuzz_settings, fuzz_engine))


@pytest.fixture(scope="module")
def keyed_app(fuzz_settings: Settings, fuzz_engine: Engine) -> Iterator[FastAPI]:
    settings = fuzz_settings.model_copy(update={"api_keys": SecretStr(f"read:{READ_KEY}")})
    yield from started(create_app(settings, fuzz_engine))


def fuzz(app: FastAPI, cases: dict[str, int], headers: dict[str, str] | None = None) -> tuple[collections.Counter, list[str]]:
    """Runs every operation in the app's schema; returns the cases sent per operation and the failures."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    sent: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, count in cases.items():

            @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode)))
            @settings(
                max_examples=count,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case) -> None:
                sent[case.operation.label] += 1
                case.call_and_validate(headers=headers, excluded_checks=EXCLUDED_CHECKS)

            try:
                check()
            except Unsatisfiable:
                if mode == "positive":  # an operation with nothing to get wrong has no invalid requests
                    failures.append(f"{operation.label}: no valid request could be generated")
            except (Exception, BaseExceptionGroup) as failure:  # names the operation, the request and the check
                failures.append(f"{operation.label} ({mode}):\n{failure}")
    return sent, failures


def test_every_operation_answers_as_documented(open_app: FastAPI, keyed_app: FastAPI) -> None:
    sent, failures = fuzz(open_app, {"positive": POSITIVE_CASES, "negative": NEGATIVE_CASES})
    keyed_sent, keyed_failures = fuzz(keyed_app, {"positive": KEYED_CASES}, headers={"Authorization": f"Bearer {READ_KEY}"})
    spec = open_app.openapi()
    operations = {f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item}
    assert not failures + keyed_failures, "\n\n".join(failures + keyed_failures)
    assert set(sent) == operations and set(keyed_sent) == operations  # every operation, both ways
    total = sum(sent.values()) + sum(keyed_sent.values())
    print(f"schemathesis: {total} cases over {len(operations)} operations, 0 failures; per operation: {dict(sent + keyed_sent)}")
    assert total >= MIN_TOTAL_CASES
