"""Running the real `citeqa` command and a real uvicorn server for end-to-end tests; reading /metrics."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
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


@contextmanager
def server_group(index_dir: Path, log_path: Path, **extra_env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`citeqa serve` in a process group of its own (so one signal reaches a supervisor and all its workers, for the
    kill tests); yields its base URL and process once it answers, and stops the whole group at the end."""
    port = free_port()
    with log_path.open("ab") as log:
        server = subprocess.Popen(
            [*CITEQA, "serve", "--port", str(port)],
            env=citeqa_env(index_dir, **extra_env),
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base, server, seconds=180, log_path=log_path)
            yield base, server
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait()
            _wait_for_group_to_exit(server.pid)


def _wait_for_group_to_exit(group: int, seconds: float = 30) -> None:
    """Workers outlive their supervisor by a moment: wait until no process of the group is left."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(group, signal.SIGKILL)


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
