"""Limits decided before any work is done: request body size, question length, top_k, chat size.

The limits are settings, but the request models in schemas.py are built at import time; so the middleware in
body_limit.py publishes the serving app's limits in a context variable for the length of each request, and
the models' validators read them from there (`current_limits()`; outside a request, the defaults apply).
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass

from pydantic_core import PydanticCustomError

DEFAULT_MAX_REQUEST_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_QUESTION_CHARS = 2000
DEFAULT_MAX_TOP_K = 50
DEFAULT_MAX_CHAT_MESSAGES = 200
DEFAULT_MAX_CHAT_CHARS = 200_000


@dataclass(frozen=True)
class Limits:
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_question_chars: int = DEFAULT_MAX_QUESTION_CHARS
    max_top_k: int = DEFAULT_MAX_TOP_K
    max_chat_messages: int = DEFAULT_MAX_CHAT_MESSAGES
    max_chat_chars: int = DEFAULT_MAX_CHAT_CHARS


DEFAULT_LIMITS = Limits()
_current: ContextVar[Limits] = ContextVar("citeqa_limits", default=DEFAULT_LIMITS)


def current_limits() -> Limits:
    return _current.get()


def publish(limits: Limits) -> Token[Limits]:
    return _current.set(limits)


def withdraw(token: Token[Limits]) -> None:
    _current.reset(token)


# A validation error of this type leaves as a 413 rather than a 400 (see errors.py): the request is well formed
# but more than this server agreed to take.
LIMIT_EXCEEDED = "limit_exceeded"


def limit_exceeded(message: str) -> PydanticCustomError:
    return PydanticCustomError(LIMIT_EXCEEDED, message)
