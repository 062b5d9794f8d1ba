"""Request ids, one JSON log line per request, Prometheus metrics, and a last-resort 500.

Every request gets an id (the client's `X-Request-ID` when it is sane, else a new one), echoed in the reply and
in its log line: `{"request_id", "method", "route", "status", "ms", "worker"}` (the worker is the process id that
answered). The line names the route template, never the path's values, the query string, a header or the body,
so no key, question or document text is logged.

Metrics live in a registry of the app's own (tests build many apps in one process); the encoder's time is the
process's (one model per process), observed through index.embedding's hook and shown by every app. Under
`citeqa serve --workers N`, prometheus_client's multiprocess mode keeps each process's counts in files
(PROMETHEUS_MULTIPROC_DIR, set by service/server.py) and a scrape of any worker adds them all up; the index and job
gauges are read from disk at scrape time, so every worker reports the same.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citeqa.index.models.embedding import EMBED_OBSERVERS
from citeqa.service.errors import internal_error
from citeqa.service.route_table import route_table
from citeqa.service.server import METRICS_DIR_VARIABLE
from citeqa.settings import DEFAULT_COLLECTION

log = logging.getLogger("citeqa")
access_log = logging.getLogger("citeqa.access")

REQUEST_ID_HEADER = "x-request-id"
SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
UNROUTED = "(unrouted)"  # no route matched the path: one label for them all, whatever was asked for
# Any other method a client invents is counted as OTHER, so it cannot add time series at will.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# The encoder serves the whole process, so its time is measured once, here, and shown by every app's /metrics.
ENCODER_SECONDS = Histogram(
    "citeqa_encoder_duration_seconds",
    "Time spent in the embedding model per call (a query, or a batch of passages while indexing)",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=None,
)
ENCODED_TEXTS = Counter("citeqa_encoder_texts", "Texts embedded by the model", registry=None)


def _observe_embedding(texts: int, seconds: float) -> None:
    ENCODER_SECONDS.observe(seconds)
    ENCODED_TEXTS.inc(texts)


if _observe_embedding not in EMBED_OBSERVERS:
    EMBED_OBSERVERS.append(_observe_embedding)


class _EncoderCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from ENCODER_SECONDS.collect()
        yield from ENCODED_TEXTS.collect()


class _IndexSizeCollector(Collector):
    """Documents and chunks per collection, read at scrape time from the engines the app serves."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        documents = GaugeMetricFamily("citeqa_index_documents", "Documents in the index", labels=["collection"])
        chunks = GaugeMetricFamily("citeqa_index_chunks", "Chunks (passages) in the index", labels=["collection"])
        for name, stats in self._stats():
            documents.add_metric([name], stats.documents)
            chunks.add_metric([name], stats.chunks)
        yield documents
        yield chunks

    def _stats(self) -> Iterator[tuple[str, Any]]:
        state = self.app.state
        registry = getattr(state, "collections", None)
        if registry is not None and hasattr(registry, "names"):
            for name in registry.names():
                try:
                    yield name, registry.get(name).stats()
                except Exception:  # a collection dropped or broken mid-scrape must not fail the whole scrape
                    log.warning("metrics: collection '%s' could not be read", name)
        elif getattr(state, "engine", None) is not None:
            yield DEFAULT_COLLECTION, state.engine.stats()


class _JobsCollector(Collector):
    """Upload jobs by state, the files of unfinished jobs by stage, and jobs ended (all read from the job store)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        board = getattr(self.app.state, "jobs", None)
        if board is None:  # not started yet, or stopped
            return
        summary = board.summary()
        jobs = GaugeMetricFamily("citeqa_jobs", "Upload jobs kept in the data home, by state", labels=["state"])
        for state, count in summary.jobs.items():
            jobs.add_metric([state], count)
        files = GaugeMetricFamily(
            "citeqa_job_files", "Files of queued and running upload jobs, by the stage they are in", labels=["stage"]
        )
        for stage, count in summary.files_in_flight.items():
            files.add_metric([stage.value], count)
        ended = CounterMetricFamily("citeqa_jobs_ended", "Upload jobs ended in this data home", labels=["state"])
        for state, count in summary.ended.items():
            ended.add_metric([state], count)
        yield jobs
        yield files
        yield ended


class Metrics:
    def __init__(self, app: FastAPI) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["method", "route", "status"]
        self.requests = Counter("citeqa_http_requests", "HTTP requests answered", labels, registry=self.registry)
        self.latency = Histogram(
            "citeqa_http_request_duration_seconds", "Time to answer an HTTP request", labels, registry=self.registry
        )
        self._from_disk = (_IndexSizeCollector(app), _JobsCollector(app))
        for collector in (*self._from_disk, _EncoderCollector()):
            self.registry.register(collector)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route, str(status)).observe(seconds)

    def render(self) -> Response:
        return Response(generate_latest(self._scraped()), media_type=CONTENT_TYPE_LATEST)

    def _scraped(self) -> CollectorRegistry:
        """This app's registry; with several workers, a fresh one that gathers every worker's files instead."""
        if not os.environ.get(METRICS_DIR_VARIABLE):
            return self.registry
        gathered = CollectorRegistry()
        multiprocess.MultiProcessCollector(gathered)
        for collector in self._from_disk:
            gathered.register(collector)
        return gathered


def request_id_of(scope: Scope) -> str:
    """The request's id, as the request context middleware set it ('' outside one)."""
    return str(scope.get("state", {}).get("request_id", ""))


class RequestContextMiddleware:
    """Request id, log line and metrics for every request; a generic 500 for anything left unhandled."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI, metrics: Metrics) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        request_id = offered if SANE_REQUEST_ID.match(offered) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # The traceback goes to the server log only; the client gets the id to quote, never the details.
            log.exception("unhandled error in request %s", request_id)
            if not response_started:
                await internal_error(request_id)(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
            route = route_table(self.fastapi_app).template(method, scope["path"]) or UNROUTED
            self.metrics.observe(method, route, status, seconds)
            line = {"request_id": request_id, "method": method, "route": route, "status": status}
            access_log.info(json.dumps(line | {"ms": round(seconds * 1000, 2), "worker": os.getpid()}))


def configure_access_log() -> None:
    """One JSON object a line on stderr, for `citeqa serve` (uvicorn's own access log is turned off there)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.handlers = [handler]
    access_log.setLevel(logging.INFO)
    access_log.propagate = False


def install_metrics_route(app: FastAPI, metrics: Metrics) -> None:
    def prometheus_metrics() -> Response:
        return metrics.render()

    app.add_api_route(
        "/metrics",
        prometheus_metrics,
        methods=["GET"],
        tags=["health"],
        summary="Prometheus metrics: requests and latency by route and status, index size, upload jobs, encoder time",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format"}},
    )
