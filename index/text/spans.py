"""Character spans and sentence boundaries. Every span is (start, end) into one document's text."""

from __future__ import annotations

import re
from typing import NamedTuple


class Span(NamedTuple):
    start: int
    end: int


# A sentence ends at . ! ? or … (optionally followed by closing quotes/brackets) before whitespace,
# or at a line break. Lookbehinds keep the punctuation in the sentence it ends.
SENTENCE_BREAK = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"'”’)\]]))\s+|\n\s*")


def trim(text: str, span: Span) -> Span:
    """Shrink a span so it neither starts nor ends with whitespace (empty spans stay empty)."""
    start, end = span
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end)


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Non-empty, whitespace-trimmed sentence spans inside text[start:end], in order."""
    end = len(text) if end is None else end
    spans: list[Span] = []
    cursor = start
    for match in SENTENCE_BREAK.finditer(text, start, end):
        piece = trim(text, Span(cursor, match.start()))
        if piece.end > piece.start:
            spans.append(piece)
        cursor = match.end()
    last = trim(text, Span(cursor, end))
    if last.end > last.start:
        spans.append(last)
    return spans


# A sentence this short ("No, we cannot.") rarely stands alone; as evidence it runs on to the next one.
SHORT_SENTENCE_CHARS = 40


def evidence_units(text: str) -> list[Span]:
    """The spans a quote can be: each sentence, a short one joined to the sentence after it."""
    sentences = sentence_spans(text)
    units: list[Span] = []
    for i, sentence in enumerate(sentences):
        if sentence.end - sentence.start < SHORT_SENTENCE_CHARS and i + 1 < len(sentences):
            units.append(Span(sentence.start, sentences[i + 1].end))
        else:
            units.append(sentence)
    return units
