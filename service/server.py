"""`citeqa serve`'s HTTP server: uvicorn, with a stop that takes seconds even in the middle of a write.

On SIGTERM or SIGINT uvicorn stops accepting connections and waits for the requests in flight. A write that is
still parsing or embedding could hold it for minutes, so the signal also sets the app's `stopping` event at once:
such a write (a JSON document, a multipart upload, an upload job) ends at its next unit of work, before its
commit, and its client gets a 503 saying nothing changed. A write already committing finishes (a commit is one
quick transaction). Whatever still runs after GRACE_SECONDS (a long streamed chat, say) is cancelled.
"""

from __future__ import annotations

from types import FrameType

import uvicorn
from fastapi import FastAPI

GRACE_SECONDS = 10


class _StoppingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.fastapi_app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.fastapi_app.state.stopping.set()  # before the requests drain: the writes among them stop now
        super().handle_exit(sig, frame)


def serve(app: FastAPI, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT. Uvicorn's access log stays off: the app logs one JSON line per request."""
    config = uvicorn.Config(
        app, host=host, port=port, log_level="info", access_log=False, timeout_graceful_shutdown=GRACE_SECONDS
    )
    _StoppingServer(config, app).run()
