"""The HTTP surface around the routes: what every request passes through, in order, and what it adds.

Outermost first:
  security headers  every reply, including the ones the layers below make
  request context   request id, JSON log line, metrics, a generic 500 for anything unhandled
  allowed hosts     400 for a Host name this server does not answer to (DNS rebinding)
  API keys          401 / 403 by method and path, before any body is read
  request limits    413 for a body over the limit; publishes the limits to the request models
"""

from __future__ import annotations

from fastapi import FastAPI

from citeqa.service.auth import ApiKeyMiddleware
from citeqa.service.body_limit import RequestLimitsMiddleware
from citeqa.service.headers import SecurityHeadersMiddleware
from citeqa.service.hosts import AllowedHostsMiddleware, allowed_names, is_loopback
from citeqa.service.keys import KeyRing
from citeqa.service.limits import Limits
from citeqa.service.observability import Metrics, RequestContextMiddleware, install_metrics_route
from citeqa.service.openapi import install_docs, install_openapi
from citeqa.service.uploads import upload_check
from citeqa.settings import Settings


def key_ring(settings: Settings) -> KeyRing:
    """Raises KeyConfigError for a malformed CITEQA_API_KEYS or keys file (the CLI prints it)."""
    secret = settings.api_keys.get_secret_value() if settings.api_keys else None
    return KeyRing.from_settings(secret, settings.api_keys_file)


def refuse_to_serve(settings: Settings) -> str | None:
    """Why `citeqa serve` must not start with these settings (None: it may). Secure by default: with no API
    keys the API reads, adds and deletes documents for anyone, which is fine on loopback and nowhere else."""
    if settings.insecure or is_loopback(settings.host) or key_ring(settings).configured:
        return None
    return (
        f"refusing to serve on {settings.host} without API keys: anyone who can reach that address could read "
        "every document, and add or delete them. Create a key with `citeqa keys add --role write` (or set "
        "CITEQA_API_KEYS), or pass --insecure (CITEQA_INSECURE=true) to serve without keys on purpose."
    )


def serving_notes(settings: Settings) -> list[str]:
    """What `citeqa serve` should tell whoever starts it on a non-loopback address."""
    if is_loopback(settings.host):
        return []
    notes = []
    if not key_ring(settings).configured:
        notes.append(
            f"warning: serving on {settings.host} without API keys (--insecure): anyone who can reach it can "
            "read, add and delete documents"
        )
    names = allowed_names(settings.host, settings.allowed_host_names())
    if names is not None:
        notes.append(
            f"answering to IP addresses and the host names {', '.join(sorted(names))}; "
            "add the names clients use to CITEQA_ALLOWED_HOSTS"
        )
    return notes


def install_http_surface(app: FastAPI, settings: Settings) -> None:
    limits = Limits.of(settings)
    keys = key_ring(settings)
    metrics = Metrics(app)
    app.state.keys, app.state.metrics = keys, metrics

    install_docs(app)
    install_metrics_route(app, metrics)
    install_openapi(app, limits, keys)

    # add_middleware wraps what is there already, so the innermost layer is added first.
    app.add_middleware(RequestLimitsMiddleware, limits=limits, exempt=upload_check(app))  # uploads count their own limits
    app.add_middleware(ApiKeyMiddleware, keys=keys)
    app.add_middleware(AllowedHostsMiddleware, names=allowed_names(settings.host, settings.allowed_host_names()))
    app.add_middleware(RequestContextMiddleware, fastapi_app=app, metrics=metrics)
    app.add_middleware(SecurityHeadersMiddleware)
