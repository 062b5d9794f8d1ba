"""Allowed Host names, against DNS rebinding.

A web page on another site can make its own domain resolve to 127.0.0.1 and then read this server's replies
as if they were its own; the one thing it cannot change is the Host header, which carries its domain. So a
request is served only when its Host is a name this server answers to: the loopback names, the host it is
bound to, and CITEQA_ALLOWED_HOSTS. A Host that is an IP address is always accepted: rebinding needs a name.
"""

from __future__ import annotations

import ipaddress
import socket

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from citeqa.service.errors import error_response

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """Whether listening on `host` keeps the server to this machine."""
    name = host.strip().lower().strip("[]")
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # another name may resolve anywhere: not loopback, to be safe


def host_name(header: str) -> str:
    """'Example.org:8000' -> 'example.org'; '[::1]:8000' -> '::1'."""
    header = header.strip().lower().rstrip(".")
    if header.startswith("["):
        return header[1:].partition("]")[0]
    name, _, _port = header.rpartition(":") if header.count(":") == 1 else (header, "", "")
    return name


def allowed_names(bound_host: str, configured: list[str]) -> frozenset[str] | None:
    """The Host names to accept, or None when '*' turns the check off."""
    extra = {host_name(name) for name in configured if name.strip()}
    if "*" in extra:
        return None
    names = set(LOOPBACK_NAMES) | extra
    bound = bound_host.strip().lower()
    if bound in WILDCARD_HOSTS:
        names.add(socket.gethostname().lower())  # listening everywhere: the machine's own name too
    elif not is_ip(bound):
        names.add(bound)
    return frozenset(names)


class AllowedHostsMiddleware:
    def __init__(self, app: ASGIApp, names: frozenset[str] | None) -> None:
        self.app = app
        self.names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.names is None:
            await self.app(scope, receive, send)
            return
        header = Headers(scope=scope).get("host")
        # No Host at all is HTTP/1.0 from a script, not a browser: rebinding needs a browser.
        name = host_name(header) if header is not None else None
        if name is None or name in self.names or is_ip(name):
            await self.app(scope, receive, send)
            return
        message = f"this server does not answer to the host name '{name[:100]}'; add it to CITEQA_ALLOWED_HOSTS if it is yours"
        await error_response(400, message, param="Host", code="host_not_allowed")(scope, receive, send)
