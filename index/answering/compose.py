"""Composing an extractive answer from quotes, or saying plainly that the documents do not answer."""

from __future__ import annotations

from dataclasses import dataclass, replace

from citeqa.index.ranking.evidence import Passage, Quote, close_to_best

NOT_FOUND = "Not found in the documents."


# Below this quote score (cosine + weighted term overlap) the best passage is judged not to answer; calibrated on the
# gold set's answerable and unanswerable questions and squad-dev-a's (docs/evaluation.md, "Abstention") for each kind of sentence
# vector (IndexSettings.unit_vectors): pooled ones score answering sentences lower, so their threshold is lower.
MIN_RELEVANCE = {"encoded": 0.42, "pooled": 0.35}


@dataclass(frozen=True, kw_only=True)
class AnswerSettings:
    min_relevance: float = MIN_RELEVANCE["encoded"]
    max_sentences: int = 3
    # Another sentence joins the answer (a sentence of the same passage, for a two-part answer, or another passage's
    # best one) if it scores at least companion_ratio of the best one (which has already passed min_relevance) and
    # the quote selector gives it at least companion_probability of holding an answer, or companion_ratio of the
    # best one's probability when the selector is unsure of the best too. Chosen on squad-dev-a: docs/evaluation.md,
    # "Complete answers".
    companion_ratio: float = 0.7
    companion_probability: float = 0.4


@dataclass(frozen=True)
class ComposedAnswer:
    text: str
    # The passage behind each marker, in marker order ([n] is cited[n - 1]); its quote is the sentence quoted, so a
    # passage quoted twice appears twice, with two quotes.
    cited: list[Passage]
    found: bool


def compose_answer(passages: list[Passage], settings: AnswerSettings) -> ComposedAnswer:
    """The best passage's quote, then its close companions and close runners-up that say something else (a
    document's sentences in the document's order, documents in rank order); or NOT_FOUND."""
    if not passages or passages[0].quote.score < settings.min_relevance:
        return ComposedAnswer(NOT_FOUND, [], False)
    best = passages[0].quote
    candidates = [passages[0]] + [replace(passages[0], quote=q) for q in passages[0].quote.companions]
    # Another passage's quote joins when it answers nearly as well, or when it is one more statement of the speaker
    # the question asks about and the best quote is one too ("What did Shoygu allege?": each allegation once).
    candidates += [p for p in passages[1:] if _close(p.quote, best, settings) or (best.attributed and p.quote.attributed)]
    chosen: list[Passage] = []
    for passage in candidates:
        if len(chosen) < settings.max_sentences and not any(_same_words(passage, other) for other in chosen):
            chosen.append(passage)
    # The best sentence leads; the others follow, a document's sentences in the order it has them.
    first_seen = {p.document.id: n for n, p in reversed(list(enumerate(chosen)))}
    chosen[1:] = sorted(chosen[1:], key=lambda p: (first_seen[p.document.id], p.quote.start))
    text = " ".join(f"{p.quote.text} [{n}]" for n, p in enumerate(chosen, start=1))
    return ComposedAnswer(text, chosen, True)


def _close(quote: Quote, best: Quote, settings: AnswerSettings) -> bool:
    """The rule EvidenceFinder applies to a passage's own companions, applied to another passage's quote."""
    ratio, least = settings.companion_ratio, settings.companion_probability
    return bool(close_to_best(quote.score, quote.probability, best.score, best.probability, ratio, least))


def _same_words(a: Passage, b: Passage) -> bool:
    """Quotes that overlap in one document, or say the same thing twice (a repeated headline)."""
    if a.document.id == b.document.id and a.quote.start < b.quote.end and b.quote.start < a.quote.end:
        return True
    return a.quote.text.strip() == b.quote.text.strip()
