"""Limits decided before any work is done: request body size, question length, top_k, chat size.

The limits are settings, but the request models in schemas/ are built at import time; so the middleware in
body_limit.py publishes the serving app's limits in a context variable for the length of each request, and
the models' validators read them from there (`current_limits()`; outside a request, the defaults apply).
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass

from pydantic_core import PydanticCustomError

from citeqa.settings import Settings


@dataclass(frozen=True, kw_only=True)
class Limits:
    """The request limits of one server; the numbers and their defaults are settings (CITEQA_MAX_*)."""

    max_request_bytes: int
    max_question_chars: int
    max_top_k: int
    max_chat_messages: int
    max_chat_chars: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            max_request_bytes=settings.max_request_bytes,
            max_question_chars=settings.max_question_chars,
            max_top_k=settings.max_top_k,
            max_chat_messages=settings.max_chat_messages,
            max_chat_chars=settings.max_chat_chars,
        )

    @classmethod
    def defaults(cls) -> Limits:
        """The declared defaults, without reading the environment (the request models are built at import time)."""
        return cls(
            max_request_bytes=Settings.default("max_request_bytes"),
            max_question_chars=Settings.default("max_question_chars"),
            max_top_k=Settings.default("max_top_k"),
            max_chat_messages=Settings.default("max_chat_messages"),
            max_chat_chars=Settings.default("max_chat_chars"),
        )


DEFAULT_LIMITS = Limits.defaults()
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
