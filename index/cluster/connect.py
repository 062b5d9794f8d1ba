"""Joining a Ray cluster as its driver: the address checked, ray imported only here, loopback kept loopback."""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

REACH_SECONDS = 5.0  # how long joining waits for the head's port to answer


class ClusterError(RuntimeError):
    """No cluster ingestion is possible: ray is not installed, the address is not one, or the cluster refused."""


def require_ray() -> Any:
    """The ray module, or ClusterError saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ClusterError("ingestion on a Ray cluster needs the ray extra: pip install 'citeqa[ray]'") from exc
    return ray


def check_address(address: str) -> str:
    """`HOST:PORT` of a running cluster's head (its GCS, 6379 by default), or `auto` for the cluster this machine
    runs; anything else is refused with the reason. Ray Client (`ray://`) is refused: it moves data through a proxy
    on the head, and the committer must receive the segments itself."""
    address = address.strip()
    if address == "auto":
        return address
    if address.startswith("ray://"):
        raise ClusterError(f"{address}: Ray Client addresses are not supported; give the head's HOST:PORT (its GCS)")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"{address!r} is not a Ray address: give the head's HOST:PORT (e.g. 127.0.0.1:6379) or auto")
    return address


def is_loopback(address: str) -> bool:
    host = address.rpartition(":")[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
        except OSError:
            return False


def preflight(address: str, encoder: str | None = None) -> None:
    """Refuse a bad address, a missing ray, or (given the encoder's name) an encoder workers cannot run, before any
    work starts (ClusterError with the reason)."""
    check_address(address)
    if encoder == "torch":
        raise ClusterError("a cluster ingestion ships the ONNX file workers run: use CITEQA_ENCODER=onnx or onnx-int8")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    require_ray()


def connect(address: str) -> Any:
    """Join the cluster at `address` (once per process) and return the ray module. A head on a loopback address
    makes this driver bind 127.0.0.1 too: left to itself Ray would pick the machine's outward address."""
    address = check_address(address)
    loopback = address != "auto" and is_loopback(address)
    # Read when ray is imported: no usage statistics leave the machine.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if loopback:
        # Ray rewrites a loopback head address to this machine's outward address before it connects; this turns
        # that off (on Linux it only decides which address "localhost" stands for), so a cluster bound to
        # 127.0.0.1 is reached on 127.0.0.1.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = require_ray()
    if ray.is_initialized():
        return ray
    check_reachable(address)
    options: dict[str, Any] = {"address": address, "log_to_driver": False, "logging_level": "WARNING"}
    if loopback:
        options["_node_ip_address"] = "127.0.0.1"
    try:
        ray.init(**options)
    except (ConnectionError, TimeoutError, RuntimeError) as exc:
        raise ClusterError(f"no Ray cluster at {address}: {exc}") from exc
    return ray


def check_reachable(address: str) -> None:
    """ClusterError at once when nothing listens at `address` (`auto` is not checked): Ray itself would try for
    minutes before it gives up."""
    if address == "auto":
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_SECONDS).close()
    except OSError as exc:
        raise ClusterError(f"no Ray cluster at {address}: {exc.strerror or exc}") from exc
