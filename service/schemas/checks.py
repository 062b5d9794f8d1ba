"""Validators the request bodies share: strict counts, non-blank and valid Unicode text, and the limits that are
settings (read per request from current_limits(), see service/limits.py)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator
from pydantic_core import PydanticKnownError

from citeqa.service.limits import DEFAULT_LIMITS, current_limits

# The defaults; a server's own limits are settings (CITEQA_MAX_QUESTION_CHARS, CITEQA_MAX_TOP_K), checked below
# against current_limits() and written into its OpenAPI schema (service/openapi.py).
MAX_QUERY_CHARS = DEFAULT_LIMITS.max_question_chars
MAX_TOP_K = DEFAULT_LIMITS.max_top_k
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def no_bool_or_text(value: object) -> object:
    # Lax int would take `true` as 1 and "5" as 5, hiding a client's mistake; strict int would refuse 5.0, which
    # JSON Schema (and so the OpenAPI schema) calls an integer. Refuse the first two, keep the last.
    if isinstance(value, bool | str):
        raise PydanticKnownError("int_type")
    return value


Count = Annotated[int, BeforeValidator(no_bool_or_text)]


def not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain non-whitespace text")
    return value


def valid_unicode(value: str) -> str:
    # JSON can carry "\udc00" on its own; no encoder or tokenizer can, so it is refused here rather than failing later.
    if LONE_SURROGATE.search(value):
        raise ValueError("must be valid Unicode text: it contains a lone surrogate code point (U+D800-U+DFFF)")
    return value


def question_text(value: str) -> str:
    not_blank(value)
    limit = current_limits().max_question_chars
    if len(value) > limit:
        raise ValueError(f"must have at most {limit} characters (CITEQA_MAX_QUESTION_CHARS); it has {len(value)}")
    return value


def top_k_within_limit(value: int) -> int:
    limit = current_limits().max_top_k
    if value > limit:
        raise ValueError(f"Input should be less than or equal to {limit} (CITEQA_MAX_TOP_K)")
    return value
