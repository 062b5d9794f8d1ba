"""Composing an extractive answer from quotes, or saying plainly that the documents do not answer."""

from __future__ import annotations

from dataclasses import dataclass

from citeqa.index.evidence import Passage

NOT_FOUND = "Not found in the documents."


@dataclass(frozen=True)
class AnswerSettings:
    # Below this quote score (cosine + weighted term overlap) the best passage is judged not to answer;
    # calibrated on the gold set's answerable and unanswerable questions (README, "Abstention").
    min_relevance: float = 0.42
    max_sentences: int = 2
    # A second quote joins the answer if it scores at least this share of the first one (which has
    # already passed min_relevance): questions often need two sentences ("what position does he hold?").
    companion_ratio: float = 0.7


@dataclass(frozen=True)
class ComposedAnswer:
    text: str
    cited: list[int]  # indexes into the passages, in marker order: marker [n] is cited[n - 1]
    found: bool


def compose_answer(passages: list[Passage], settings: AnswerSettings) -> ComposedAnswer:
    """The best passage's quote, and a close runner-up's if it cites other words; or NOT_FOUND."""
    if not passages or passages[0].quote.score < settings.min_relevance:
        return ComposedAnswer(NOT_FOUND, [], False)
    chosen = [0]
    for i, passage in enumerate(passages[1:], start=1):
        if len(chosen) >= settings.max_sentences:
            break
        repeats = any(_same_words(passage, passages[j]) for j in chosen)
        close = passage.quote.score >= settings.companion_ratio * passages[0].quote.score
        if close and not repeats:
            chosen.append(i)
    text = " ".join(f"{passages[i].quote.text} [{n}]" for n, i in enumerate(chosen, start=1))
    return ComposedAnswer(text, chosen, True)


def _same_words(a: Passage, b: Passage) -> bool:
    """Quotes that overlap in one document, or say the same thing twice (a repeated headline)."""
    if a.document.id == b.document.id and a.quote.start < b.quote.end and b.quote.start < a.quote.end:
        return True
    return a.quote.text.strip() == b.quote.text.strip()
