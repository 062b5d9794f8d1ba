"""The app of one worker process of `citeqa serve --workers N` (service/server.py starts them).

A worker is a fresh interpreter: its settings come from the environment, where `citeqa serve` put every option
given on its command line, and it opens the index the parent process built. A worker whose parent is gone (killed
without the chance to stop its workers) stops itself, as if sent SIGTERM, rather than serve on unsupervised.
"""

from __future__ import annotations

import os
import signal
import threading

from fastapi import FastAPI

from citeqa.service.app import create_app
from citeqa.service.observability import configure_access_log
from citeqa.settings import Settings

PARENT_CHECK_SECONDS = 1.0


def worker_app() -> FastAPI:
    configure_access_log()
    _stop_when_orphaned(os.getppid())
    return create_app(Settings())


def _stop_when_orphaned(parent: int) -> None:
    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(PARENT_CHECK_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="citeqa-parent-watch", daemon=True).start()
