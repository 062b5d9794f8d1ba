"""Running the real `citeqa` command and a real uvicorn server for end-to-end tests; reading /metrics."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from citeqa.eval.bench import wait_ready

CITEQA = [sys.executable, "-m", "citeqa"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def citeqa_env(index_dir: Path, **extra: str) -> dict[str, str]:
    return os.environ | {"CITEQA_INDEX_DIR": str(index_dir), **extra}


def run_citeqa(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CITEQA, *args], env=env, capture_output=True, text=True, timeout=300)


@contextmanager
def running_server(index_dir: Path, **extra_env: str) -> Iterator[str]:
    """`citeqa serve` on a free loopback port; yields its base URL once /readyz answers."""
    port = free_port()
    log_path = index_dir.parent / f"serve-{port}.log"
    with log_path.open("w") as log:  # a file, not a pipe: a full pipe would stall the server
        process = subprocess.Popen(
            [*CITEQA, "serve", "--port", str(port)], env=citeqa_env(index_dir, **extra_env), stdout=log, stderr=log
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base, process, seconds=180, log_path=log_path)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def metric_samples(client: TestClient) -> dict[tuple[str, frozenset], float]:
    """Every sample /metrics shows, keyed by name and labels."""
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def metric_value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)
