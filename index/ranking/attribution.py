"""Reported speech: which sentences state what the person or body a question asks about said.

"What did Shoygu allege?" asks for every allegation of Shoygu's, and a news text often spreads them over several
sentences, one naming him ("…Sergei Shoygu, has further amplified these concerns, suggesting that…") and others
leaning on him ("He accused Ukrainian authorities…"). The quote selector, fitted on questions with one answer
each, picks one; this module marks the others, so an extractive answer can quote each of them once.

A sentence is *attributed* to the question's speaker when it carries a reporting cue (a verb or noun of saying,
or "according to") and either names the speaker or opens with a personal pronoun right after an attributed
sentence. Only questions of the form "What did/does/has <speaker> <reporting verb> …" have a speaker.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

# Verbs and nouns of saying: a regular-expression alternation of their word forms, matched on whole words.
_SAYING = (
    r"alleg\w*|claim\w*|say|says|saying|said|argu\w*|accus\w*|suggest\w*|warn\w*|assert\w*|announc\w*|insist\w*"
    r"|contend\w*|describ\w*|report\w*|den(?:y|ies|ied|ying)|declar\w*|stress\w*|emphasi[sz]\w*|acknowledg\w*"
    r"|admit\w*|predict\w*|urg(?:e|es|ed|ing)|threaten\w*|dismiss\w*|reject\w*|respond\w*|repl(?:y|ies|ied|ying)"
    r"|told|tell|tells|telling|stated|stating|statements?|call(?:s|ed|ing)?|noted|believ\w*"
)
_REPORTING = re.compile(rf"\b(?:{_SAYING})\b|\baccording to\b")
_REPORTING_WORD = re.compile(rf"\b(?:{_SAYING})\b", re.IGNORECASE)
_WHAT_DID = re.compile(r"^\s*what\s+(?:did|does|do|has|have|had)\s+", re.IGNORECASE)
# Pronouns that carry a speaker from one sentence to the next ("He accused …"); "this" or "it" usually point at a
# claim or a thing, not at who made it.
_SPEAKER_PRONOUNS = frozenset({"he", "she", "they"})
_FIRST_WORD = re.compile(r"[A-Za-z]+")
# Words of a question's tail that say nothing of its topic ("What did Luther say about what …").
_NOT_TOPIC = frozenset(
    {"about", "what", "who", "whom", "which", "whose", "when", "where", "why", "how", "would", "could", "should"}
    | {"might", "will", "can", "have", "has", "had", "was", "were", "did", "does", "do", "doe", "them", "their"}
    | {"they", "it", "its", "that", "those", "these", "this", "the", "him", "her", "his", "be", "been", "being"}
)


def reports(text: str) -> bool:
    """Whether a sentence carries a cue of reported speech."""
    return bool(_REPORTING.search(text.lower()))


@dataclass(frozen=True)
class Speaker:
    """Who a question asks about: the term of its name that identifies it best (the rarest in the index)."""

    phrase: str  # as the question words it ("Shoygu", "the SVR")
    term: str  # its rarest stemmed term ("shoygu", "svr")
    # Stemmed terms of what the question asks the speaker said it about ("…call the mission?": "mission"); a
    # statement must share one of them. Empty when the question ends at the verb ("What did Shoygu allege?").
    topic: frozenset[str] = frozenset()

    def attributed(self, texts: Sequence[str], terms: Sequence[Sequence[str]]) -> list[bool]:
        """For consecutive sentences of one text (in order), which state what the speaker said."""
        speaks: list[bool] = []  # states what the speaker said, whatever about
        for i, (text, unit_terms) in enumerate(zip(texts, terms, strict=True)):
            first = _FIRST_WORD.match(text.lstrip())
            leans_back = first is not None and first.group(0).lower() in _SPEAKER_PRONOUNS and i > 0 and speaks[i - 1]
            speaks.append(reports(text) and (self.term in unit_terms or leans_back))
        on_topic = [not self.topic or not self.topic.isdisjoint(unit_terms) for unit_terms in terms]
        return [said and relevant for said, relevant in zip(speaks, on_topic, strict=True)]


def question_speaker(
    question: str,
    tokenize: Callable[[list[str]], list[list[str]]],
    idf: Callable[[set[str]], Mapping[str, float]],
    unseen_idf: float,
) -> Speaker | None:
    """The speaker a "What did X say/allege/claim …?" question asks about, or None for any other question (or a
    speaker the index has never seen). `idf` gives the index's IDF of terms, `unseen_idf` that of a term no chunk
    holds: such terms cannot identify the speaker in any sentence."""
    opening = _WHAT_DID.match(question)
    if not opening:
        return None
    # The speaker runs up to a reporting verb; the first verb after a name the index knows ends it ("What did the
    # report say?" is not about "the", "What did Shoygu say about the report?" is about Shoygu).
    for verb in _REPORTING_WORD.finditer(question, opening.end()):
        phrase = question[opening.end() : verb.start()].strip()
        terms = set(tokenize([phrase])[0]) if phrase else set()
        weights = {term: weight for term, weight in idf(terms).items() if 0 < weight < unseen_idf}
        if weights:
            tail = _REPORTING_WORD.sub(" ", question[verb.end() :])  # "What did the SVR report say?": no topic
            topic = frozenset(tokenize([tail])[0]) - terms - _NOT_TOPIC
            return Speaker(phrase, max(sorted(weights), key=weights.__getitem__), topic)
    return None
