"""Running the real `citeqa` command and a real uvicorn server for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

CITEQA = [sys.executable, "-m", "service.cli"]


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
    process = subprocess.Popen(
        [*CITEQA, "serve", "--port", str(port)],
        env=citeqa_env(index_dir, **extra_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"citeqa serve exited early:\n{process.stdout.read() if process.stdout else ''}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        else:
            raise RuntimeError("citeqa serve did not become ready in time")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
