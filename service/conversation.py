"""Turning the last turn of a conversation into a standalone search query, without a language model.

Follow-ups lean on earlier turns: "What position does he hold?" or "And what did the SVR claim?" after
"what did Shoygu allege?". The rules below resolve the common cases from the user's earlier questions:
a pronoun becomes the entity it most likely points at, "what about X?" re-asks the previous question
about X, and a bare "why?" carries the previous question along.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LEADING_FILLER = re.compile(r"^\s*(?:and|but|so|also|then|ok(?:ay)?|well)\b[\s,]*", re.IGNORECASE)
WHAT_ABOUT = re.compile(r"^\s*(?:what|how)\s+about\s+(?P<subject>.+?)\s*\??\s*$", re.IGNORECASE)
PRONOUN = re.compile(r"\b(?P<word>he|she|him|her|his|hers|they|them|their|theirs|it|its)\b", re.IGNORECASE)
POSSESSIVE = {"his", "her", "hers", "their", "theirs", "its"}
# Capitalised words (or acronyms) in a run: "Sergei Shoygu", "SVR", "Keir Starmer".
ENTITY = re.compile(r"\b(?:[A-Z][\w’'-]*[a-z\d][\w’'-]*|[A-Z]{2,})(?:\s+(?:[A-Z][\w’'-]*|[A-Z]{2,}))*")
QUESTION_WORDS = {"what", "who", "whom", "whose", "which", "when", "where", "why", "how", "is", "are", "was", "were", "did",
                  "does", "do", "can", "could", "will", "would", "should", "has", "have", "had", "tell", "and", "the", "a",
                  "an", "in", "on", "according", "i", "please"}  # fmt: skip
SHORT_FOLLOW_UP_WORDS = 3


@dataclass(frozen=True)
class Turn:
    role: str
    content: str


def entities(text: str) -> list[str]:
    """Named things in a question, in order; a capitalised question word at the start is not one."""
    found = []
    for match in ENTITY.finditer(text):
        words = match.group(0).split()
        while words and words[0].lower() in QUESTION_WORDS:
            words = words[1:]
        if words:
            found.append(" ".join(words))
    return found


# A lone capitalised adjective of nationality ("British prime minister") names no one a pronoun could mean.
DEMONYM = re.compile(r"^[A-Z][a-z]+(?:ish|ian|ean|ese|an|i)$")


def _anchor(history: list[str]) -> str | None:
    """The entity a follow-up most likely refers to: the first name-like one in the latest question naming one."""
    for question in reversed(history):
        named = [e for e in entities(question) if " " in e or not DEMONYM.match(e)]
        if named:
            return named[0]
    return None


def condense(turns: list[Turn]) -> str:
    """A standalone query for the last user turn, resolved against the earlier user turns."""
    user_turns = [t.content.strip() for t in turns if t.role == "user" and t.content.strip()]
    if not user_turns:
        raise ValueError("the conversation has no user message")
    question, history = user_turns[-1], user_turns[:-1]
    if not history:
        return question
    anchor = _anchor(history)

    about = WHAT_ABOUT.match(question)
    if about:
        previous = history[-1]
        previous_anchor = next(iter(entities(previous)), None)
        subject = about.group("subject")
        return previous.replace(previous_anchor, subject, 1) if previous_anchor else f"{previous} {subject}"

    stripped = LEADING_FILLER.sub("", question) or question
    if PRONOUN.search(stripped):
        if anchor and anchor not in stripped:

            def replace_pronoun(match: re.Match[str]) -> str:
                return f"{anchor}’s" if match.group("word").lower() in POSSESSIVE else anchor

            return PRONOUN.sub(replace_pronoun, stripped, count=1)
        if not anchor:  # nothing to put in the pronoun's place: search with the earlier question alongside
            return f"{stripped} {history[-1]}"
    if not entities(stripped) and len(re.findall(r"\w+", stripped)) <= SHORT_FOLLOW_UP_WORDS:
        return f"{history[-1]} {stripped}"
    return stripped
