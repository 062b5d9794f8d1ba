"""Claims: each sentence of an answer, the [n] markers that support it, and how well they do.

An answer is split into sentences (a marker written after a sentence's full stop, "… peacekeeping. [1]", belongs
to the sentence before it). Each sentence is scored against the passages it cites by one of two checkers
(`ClaimSettings.checker`):

- "model": the claim checker trained here (index/answering/claim_checker.py), a cross-encoder reading the sentence
  with the passage: the probability that the passage supports it. It sees most added negations and changed
  numbers, which leave nearly every word of the sentence in the passage (swapped names and antonyms less often:
  docs/reader.md).
- "similarity": the cosine of the sentence's vector and the best-matching sentence (or the whole) of the passage,
  and the IDF-weighted share of its content terms that the passage contains, blended into a score in [0, 1]
  (`SupportScorer`).

A marker scoring below the checker's threshold is removed; a sentence left with no supporting marker is checked
against every passage given, and cited to the best one if that one supports it; otherwise it is unsupported:
flagged (kept, `supported: false`) or dropped, with a short note saying how many sentences were removed. Markers
that point at no passage are removed. Markers are renumbered 1..m in order of use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from citeqa.index.answering.compose import NOT_FOUND, ComposedAnswer
from citeqa.index.ranking.quote_terms import TermMatches, term_stats
from citeqa.index.text.spans import Span, sentence_spans

MARKER = re.compile(r"\[(\d+)\]")
LEADING_MARKERS = re.compile(r"(?:\[\d+\][ \t]*)+")
FINAL_PUNCTUATION = re.compile(r"[.!?…][\"'”’)]*$")

UnsupportedAction = Literal["flag", "drop"]
ClaimChecking = Literal["model", "similarity"]


@dataclass(frozen=True, kw_only=True)
class ClaimSettings:
    checker: ClaimChecking = "model"
    # The probability of support (the "model" checker) a cited passage must give a sentence for its marker to stay.
    min_probability: float = 0.5
    # Support (0.5 x cosine + 0.5 x term overlap; the "similarity" checker) a cited passage must give a sentence.
    # On the seed document a sentence scores 0.6-1.0 against the passage it restates and 0.1-0.35 against
    # passages of the same document about something else (whose cosines alone are 0.35-0.55: hence the overlap).
    min_support: float = 0.4
    unsupported: UnsupportedAction = "flag"
    dense_weight: float = 0.5

    @property
    def threshold(self) -> float:
        return self.min_probability if self.checker == "model" else self.min_support


class SupportScores(Protocol):
    def scores(self, sentences: list[str], evidence: list[str], wanted: np.ndarray | None = None) -> np.ndarray:
        """[i, j]: how well evidence[j] supports sentences[i], in [0, 1], for every cell `wanted` (a boolean
        matrix) marks, or every cell when it is None; a scorer may leave the others NaN."""
        ...


@dataclass(frozen=True)
class Claim:
    start: int  # span of the sentence (with its markers) in the answer text
    end: int
    citations: list[int]  # the markers [n] supporting it, after renumbering
    support: float  # best support among its citations; for an unsupported sentence, the best any passage gave
    supported: bool


@dataclass(frozen=True)
class CheckedAnswer:
    text: str
    cited: list[int]  # indexes into the evidence given: marker [n] is cited[n - 1]
    claims: list[Claim]
    dropped: int  # unsupported sentences removed (with unsupported="drop")
    removed_markers: int  # markers removed: pointing at no passage, or at one that does not support the sentence

    @property
    def found(self) -> bool:
        return bool(self.claims)


def strip_markers(text: str) -> str:
    return _tidy(MARKER.sub("", text))


def _tidy(text: str) -> str:
    return re.sub(r"[ \t]+([.,;:!?…])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()


def claim_spans(text: str) -> list[Span]:
    """Sentence spans of an answer; markers opening a sentence ("…. [1] Next …") are moved to the one before."""
    spans = list(sentence_spans(text))
    out: list[Span] = []
    for span in spans:
        start = span.start
        lead = LEADING_MARKERS.match(text, start, span.end)
        if lead and out:
            out[-1] = Span(out[-1].start, len(text[: lead.end()].rstrip()))
            start = lead.end()
            while start < span.end and text[start].isspace():
                start += 1
        if start < span.end:
            out.append(Span(start, span.end))
    return out


def dropped_note(count: int) -> str:
    return f"({count} unsupported sentence{'s' if count != 1 else ''} removed.)"


class SupportScorer:
    """Support of sentences by evidence texts: dense_weight x cosine + (1 - dense_weight) x IDF-weighted overlap."""

    def __init__(
        self,
        embed: Callable[[list[str]], np.ndarray],
        tokenize: Callable[[list[str]], list[list[str]]],
        idf: Callable[[set[str]], dict[str, float]],
        dense_weight: float = 0.5,
    ) -> None:
        self.embed, self.tokenize, self.idf, self.dense_weight = embed, tokenize, idf, dense_weight

    def scores(self, sentences: list[str], evidence: list[str], wanted: np.ndarray | None = None) -> np.ndarray:
        """[i, j]: how well evidence[j] supports sentences[i], in [0, 1]; every cell, whatever `wanted` asks (one
        batch of embeddings costs about what a part of it would)."""
        if not sentences or not evidence:
            return np.zeros((len(sentences), len(evidence)))
        units: list[str] = []
        owner: list[int] = []
        for j, text in enumerate(evidence):
            pieces = [text[s.start : s.end] for s in sentence_spans(text)]
            for piece in [*pieces, text] if len(pieces) > 1 else pieces or [text]:
                units.append(piece)
                owner.append(j)
        vectors = self.embed(sentences + units)
        cosines = vectors[: len(sentences)] @ vectors[len(sentences) :].T
        owners = np.array(owner)
        dense = np.stack([cosines[:, owners == j].max(axis=1) for j in range(len(evidence))], axis=1)
        sentence_terms = self.tokenize(sentences)
        evidence_terms = self.tokenize(evidence)
        evidence_stats = [term_stats(tuple(found)) for found in evidence_terms]
        lexical = np.zeros_like(dense)
        for i, terms in enumerate(sentence_terms):  # the share of each sentence's terms that each passage holds
            lexical[i] = TermMatches.of(self.idf(set(terms)), evidence_stats).shares()
        blended = self.dense_weight * np.clip(dense, 0.0, 1.0) + (1 - self.dense_weight) * lexical
        return np.clip(blended, 0.0, 1.0)


def support_scores(sentences: list[str], evidence: list[str], scorer: SupportScores, threshold: float) -> np.ndarray:
    """The scores check_claims reads: first each sentence against the passages it cites; then, for a sentence none
    of them supports, against every passage (to find one that does, or the best support for its claim). The cells
    never read may stay NaN; a model scorer reads a sentence against one passage, not five, when its citation holds."""
    shape = (len(sentences), len(evidence))
    if not sentences or not evidence:
        return np.zeros(shape)
    cited = np.zeros(shape, dtype=bool)
    for i, sentence in enumerate(sentences):
        for marker in MARKER.findall(sentence):
            if 0 <= int(marker) - 1 < len(evidence):
                cited[i, int(marker) - 1] = True
    claims = [strip_markers(s) for s in sentences]
    scores = scorer.scores(claims, evidence, wanted=cited)
    unsupported = ~np.any(cited & (np.nan_to_num(scores, nan=-1.0) >= threshold), axis=1)
    rest = unsupported[:, None] & np.isnan(scores)
    if rest.any():
        more = scorer.scores(claims, evidence, wanted=rest)
        scores = np.where(rest, more, scores)
    return scores


def check_claims(text: str, evidence: Sequence[str], scorer: SupportScores, settings: ClaimSettings) -> CheckedAnswer:
    """Check each sentence of `text` (markers [n] point at evidence[n - 1]) and rebuild the text: unsupporting or
    unknown markers removed, unsupported sentences re-cited to a supporting passage, flagged or dropped."""
    spans = claim_spans(text)
    sentences = [text[s.start : s.end] for s in spans]
    scores = support_scores(sentences, list(evidence), scorer, settings.threshold)
    numbers: dict[int, int] = {}  # evidence index -> new marker
    pieces: list[tuple[str, str, Claim]] = []  # (separator before, sentence text, claim with offsets relative)
    dropped = removed = 0
    previous_end = None
    for i, (span, sentence) in enumerate(zip(spans, sentences, strict=True)):
        separator = text[previous_end : span.start] if previous_end is not None else ""
        previous_end = span.end
        given = [int(m) - 1 for m in MARKER.findall(sentence)]
        keep = [k for k in dict.fromkeys(given) if 0 <= k < len(evidence) and scores[i, k] >= settings.threshold]
        removed += sum(1 for k in given if k not in keep)
        added = None
        if not keep and len(evidence):
            best = int(np.argmax(scores[i]))
            if scores[i, best] >= settings.threshold:
                added = best
        supported = bool(keep) or added is not None
        if not supported and settings.unsupported == "drop":
            dropped += 1
            continue
        support_of = keep or ([added] if added is not None else list(range(len(evidence))))
        support = float(max((scores[i, k] for k in support_of), default=0.0))

        def renumbered(match: re.Match[str], keep: list[int] = keep) -> str:
            index = int(match.group(1)) - 1
            if index not in keep:
                return ""
            return f"[{numbers.setdefault(index, len(numbers) + 1)}]"

        rebuilt = _tidy(MARKER.sub(renumbered, sentence))
        if added is not None:
            marker = f"[{numbers.setdefault(added, len(numbers) + 1)}]"
            ending = FINAL_PUNCTUATION.search(rebuilt)
            cut = ending.start() if ending else len(rebuilt)
            rebuilt = f"{rebuilt[:cut].rstrip()} {marker}{rebuilt[cut:]}"
        citing: Sequence[int | None] = keep or [added]
        citations = sorted({numbers[k] for k in citing if k is not None})
        pieces.append((separator, rebuilt, Claim(0, len(rebuilt), citations, round(support, 4), supported)))

    out: list[str] = []
    claims: list[Claim] = []
    offset = 0
    for n, (separator, rebuilt, claim) in enumerate(pieces):
        if n:
            sep = separator if separator.strip() == "" and separator else " "
            out.append(sep)
            offset += len(sep)
        out.append(rebuilt)
        claims.append(Claim(offset, offset + len(rebuilt), claim.citations, claim.support, claim.supported))
        offset += len(rebuilt)
    answer = "".join(out)
    if dropped:
        note = dropped_note(dropped)
        answer = f"{answer} {note}" if answer else f"{NOT_FOUND} {note}"
    cited = sorted(numbers, key=numbers.__getitem__)
    return CheckedAnswer(answer, cited, claims, dropped, removed)


def extractive_claims(composed: ComposedAnswer) -> list[Claim]:
    """The claims of a composed extractive answer, exact by construction: each quote with its marker is a claim
    supported by its own passage."""
    if not composed.found:
        return []
    claims = []
    offset = 0
    for n, passage in enumerate(composed.cited, start=1):
        piece = f"{passage.quote.text} [{n}]"
        start = composed.text.index(piece, offset)
        claims.append(Claim(start, start + len(piece), [n], 1.0, True))
        offset = start + len(piece)
    return claims
