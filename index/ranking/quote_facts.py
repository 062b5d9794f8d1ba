"""The quote selector's answer-type signals: what kind of answer a question asks for (a person, a date, a number, a
place) and what a candidate unit's text offers of each, read with a few patterns rather than a tagger."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

# First words that make a sentence lean on the one before it ("He accused …", "This claim …");
# two-word openers are matched on the first two words.
REFERENCE_OPENERS = frozenset(
    {"he", "she", "it", "they", "his", "her", "its", "their", "them", "this", "these", "those", "that", "such", "both"}
    | {"the latter", "the former"}
)

_WORD = re.compile(r"[A-Za-z][\w’'-]*")
NUMBER = re.compile(r"\d[\d,.]*")
_NUMBER_WORDS = frozenset(
    {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"}
    | {"thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "trillion"}
    | {"thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred", "thousand", "million", "billion"}
    | {"dozen", "dozens", "hundreds", "thousands", "millions", "billions", "half", "quarter", "percent"}
)
_MONTHS = frozenset(
    {"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november"}
    | {"december", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
)
_YEAR = re.compile(r"\b(?:1\d{3}|20\d{2})s?\b|\b\d{1,2}(?:st|nd|rd|th)\b|\bcentur(?:y|ies)\b|\bBC\b|\bAD\b")
_PLACE = re.compile(r"\b(?:in|at|from|near|to|into|across|outside|inside|throughout)\s+(?:the\s+)?([A-Z][\w’'-]+)")

# Question types, matched on the lower-cased question.
_ASKS_NUMBER = re.compile(
    r"\bhow (?:many|much|long|far|old|large|big|tall|high|often|fast|deep|wide|heavy)\b"
    r"|\bwhat (?:percentage|percent|proportion|number|amount|fraction|share)\b"
)
_ASKS_DATE = re.compile(
    r"\bwhen\b|\b(?:what|which) (?:year|years|date|day|month|century|decade|era|period|season)\b|\bhow long ago\b"
)
_ASKS_PERSON = re.compile(r"\bwho(?:m|se)?\b")
_ASKS_PLACE = re.compile(
    r"\bwhere\b|\b(?:what|which) (?:country|countries|city|cities|state|place|region|continent|town|area|county|nation)\b"
)


def words_of(text: str) -> list[str]:
    return _WORD.findall(text)


def question_types(question: str) -> tuple[bool, bool, bool, bool]:
    lowered = question.lower()
    return (
        bool(_ASKS_PERSON.search(lowered)),
        bool(_ASKS_DATE.search(lowered)),
        bool(_ASKS_NUMBER.search(lowered)),
        bool(_ASKS_PLACE.search(lowered)),
    )


@dataclass(frozen=True)
class TextFacts:
    """What the answer-type features read off a unit's text, whatever the question: computed once per text."""

    names: frozenset[str]  # lower-cased capitalised words after the first, months aside ("Shoygu", "Kyiv")
    has_date: bool  # a year, an ordinal, a century, a capitalised month or weekday
    numbers: frozenset[str]  # digit runs ("1,200", "3.5")
    number_words: frozenset[str]  # lower-cased number words ("twelve", "million")
    places: frozenset[str]  # lower-cased capitalised words after in/at/from/…
    leans_back: bool  # opens with a word that points at the sentence before ("He …", "This claim …")
    log_length: float  # log of the length in characters


@lru_cache(maxsize=65536)
def text_facts(text: str) -> TextFacts:
    """The question-independent facts of one unit text. A query scores a few dozen units, mostly the same ones
    as recent queries, so the regular expressions run once per text rather than once per query (bounded cache)."""
    words = words_of(text)
    lowered = [w.lower() for w in words]
    opener = lowered[:2]
    # Month names count as dates only capitalised, so "may be carried over" is not a date.
    return TextFacts(
        names=frozenset(lw for w, lw in zip(words[1:], lowered[1:], strict=True) if w[0].isupper() and lw not in _MONTHS),
        has_date=bool(_YEAR.search(text)) or any(w[0].isupper() and lw in _MONTHS for w, lw in zip(words, lowered, strict=True)),
        numbers=frozenset(NUMBER.findall(text)),
        number_words=frozenset(lw for lw in lowered if lw in _NUMBER_WORDS),
        places=frozenset(m.group(1).lower() for m in _PLACE.finditer(text)),
        leans_back=bool(opener) and (opener[0] in REFERENCE_OPENERS or " ".join(opener) in REFERENCE_OPENERS),
        log_length=math.log(max(len(text), 1)),
    )
