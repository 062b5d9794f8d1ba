"""`citeqa serve`'s HTTP server: uvicorn, in one process or in several on one data home, with a stop that takes
seconds even in the middle of a write.

On SIGTERM or SIGINT uvicorn stops accepting connections and waits for the requests in flight. A write that is
still parsing or embedding could hold it for minutes, so the signal also sets the app's `stopping` event at once
(`chain_stop_signals`): such a write (a JSON document, a multipart upload, an upload job) ends at its next unit of
work, before its commit; a request's client gets a 503 saying nothing changed, and a job goes back to the queue.
A write already committing finishes (a commit is one quick transaction). Whatever still runs after
GRACE_SECONDS (a long streamed chat, say) is cancelled.

With several workers, uvicorn's supervisor binds the socket once and starts each worker as a fresh process,
which builds its app from the environment (`worker_app`); the supervisor passes SIGTERM on to each of them and
starts a new worker in place of one that dies. Prometheus' multiprocess mode gathers their metrics.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from types import FrameType

import uvicorn
from fastapi import FastAPI

GRACE_SECONDS = 10
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Where prometheus_client's multiprocess mode keeps each process's values (it reads this when it is imported).
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def chain_stop_signals(stopping: threading.Event) -> None:
    """Make SIGTERM and SIGINT set `stopping`, then do what they did (uvicorn's handler, which drains requests).

    Called from the app's startup, which uvicorn runs after installing its handlers and which it undoes on exit.
    Only the main thread can set signal handlers: an app started elsewhere (a test client's thread) is stopped
    by its lifespan's end instead, which sets `stopping` too."""
    if threading.current_thread() is not threading.main_thread():
        return
    for number in STOP_SIGNALS:
        previous = signal.getsignal(number)

        def handler(signum: int, frame: FrameType | None, previous: object = previous) -> None:
            stopping.set()  # before the requests drain: the writes among them stop now
            if callable(previous):
                previous(signum, frame)

        signal.signal(number, handler)


def serve(app: FastAPI, host: str, port: int) -> None:
    """Serve `app` in this process until SIGTERM or SIGINT. Uvicorn's access log stays off: the app logs one JSON
    line per request."""
    config = uvicorn.Config(
        app, host=host, port=port, log_level="info", access_log=False, timeout_graceful_shutdown=GRACE_SECONDS
    )
    uvicorn.Server(config).run()


def serve_workers(host: str, port: int, workers: int) -> None:
    """Serve with `workers` processes, each building its app from the environment (the caller has put every
    setting there and built the index, so the workers only open it)."""
    metrics = tempfile.mkdtemp(prefix="citeqa-metrics-")
    os.environ[METRICS_DIR_VARIABLE] = metrics  # inherited by the workers, read by their prometheus_client
    try:
        uvicorn.run(
            "citeqa.service.worker:worker_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
            access_log=False,
            timeout_graceful_shutdown=GRACE_SECONDS,
        )
    finally:
        shutil.rmtree(metrics, ignore_errors=True)
