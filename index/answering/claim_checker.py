"""The claim checker: a small cross-encoder, trained here (eval/train_claims.py), that reads a claim together with
a stretch of the passage it cites and says whether the passage supports it.

Unlike the similarity check (index/answering/claims.py: cosine and shared words), it reads both texts at once, so an
added negation or a changed number or date lowers its score even though nearly every word of the claim is in the
passage (a replaced or swapped name, or an antonym, less often: docs/reader.md). A passage is read in windows of
consecutive sentences (at most `WINDOW_PIECES` word pieces each, one starting at each sentence unless it would lie
inside the one before), after the passage's title;
the claim's support is its best window's, turned into a probability by a logistic calibration fitted on claims of
articles the model never read (`calibration` in claims.json).

Like the reader it ships in index/models as an int8 ONNX file with claims.json beside it, loaded by
index/models/pair_model.py (sha256 checked, no torch, pairs read alone and cached).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from citeqa.index.models.pair_model import MODEL_FOLDER, PairModel, bundled_tokenizer_path
from citeqa.index.ranking.reader import reader_input
from citeqa.index.text.spans import Span, sentence_spans

INFO_FILE = "claims.json"
# A window's word pieces: about one sentence, two when they are short. Windows of up to 128 (three or four
# sentences) read worse after the same training time: 0.743 against 0.826 with these windows (docs/reader.md).
WINDOW_PIECES = 64


class PieceCounter:
    """Word pieces of a text under the bundled tokenizer (no truncation: a long sentence counts in full; no padding,
    which the tokenizer's file turns on and which would count every text of a batch as long as its longest)."""

    def __init__(self) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(bundled_tokenizer_path()))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()

    def __call__(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)] if texts else []


def window_spans(text: str, count: PieceCounter, budget: int = WINDOW_PIECES) -> list[Span]:
    """Stretches of consecutive sentences of `text`, each as long as fits in `budget` word pieces (a longer sentence
    alone), one starting at each sentence unless it would end where the one before it ends."""
    spans = sentence_spans(text)
    if not spans:
        return [Span(0, len(text))] if text.strip() else []
    pieces = count([text[s.start : s.end] for s in spans])
    windows: list[Span] = []
    last_end = -1
    for first in range(len(spans)):
        last, total = first, pieces[first]
        while last + 1 < len(spans) and total + pieces[last + 1] <= budget:
            last += 1
            total += pieces[last]
        if last > last_end:
            windows.append(Span(spans[first].start, spans[last].end))
            last_end = last
    return windows


def evidence_windows(text: str, count: PieceCounter, budget: int = WINDOW_PIECES) -> list[str]:
    """The texts of `window_spans`."""
    return [text[s.start : s.end] for s in window_spans(text, count, budget)]


class ClaimChecker:
    """P(a passage supports a claim), from the best of its windows."""

    def __init__(self, folder: Path = MODEL_FOLDER, threads: int | None = None) -> None:
        self.model = PairModel(folder, INFO_FILE, threads)
        self.info = self.model.info
        self.sha256 = self.model.sha256
        self.scale = float(self.info["calibration"]["scale"])
        self.offset = float(self.info["calibration"]["offset"])
        self.count = PieceCounter()

    def windows(self, title: str, passage: str) -> list[str]:
        """What the model reads of a passage: its windows, each after the passage's title."""
        return [reader_input(title, w) for w in evidence_windows(passage, self.count)]

    def logit(self, claim: str, windows: list[str]) -> float:
        """The best window's logit (uncalibrated), for windows from `windows`."""
        return float(self.model.logits(claim, windows).max()) if windows else float("-inf")

    def probability(self, logits: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.scale * np.asarray(logits, dtype=np.float64) + self.offset)))

    def scorer(self, titles: list[str]) -> ModelSupport:
        """A support scorer for evidence passages with these titles (evidence[j] is titled titles[j])."""
        return ModelSupport(self, titles)


class ModelSupport:
    """The claim checker behind the support-scorer interface check_claims uses (index/answering/claims.py)."""

    def __init__(self, checker: ClaimChecker, titles: list[str]) -> None:
        self.checker, self.titles = checker, titles
        self._windows: dict[tuple[int, str], list[str]] = {}  # a passage's windows, cut once per answer

    def scores(self, sentences: list[str], evidence: list[str], wanted: np.ndarray | None = None) -> np.ndarray:
        """[i, j]: the probability that evidence[j] supports sentences[i], for the cells `wanted` marks (every
        cell when None); NaN elsewhere, since each cell is a transformer pass per window."""
        wanted = np.ones((len(sentences), len(evidence)), dtype=bool) if wanted is None else wanted
        logits = np.full((len(sentences), len(evidence)), np.nan)
        for i, j in zip(*np.nonzero(wanted), strict=True):
            logits[i, j] = self.checker.logit(sentences[i], self.windows(int(j), evidence[j]))
        return self.checker.probability(logits)

    def windows(self, index: int, text: str) -> list[str]:
        key = (index, text)
        if key not in self._windows:
            self._windows[key] = self.checker.windows(self.titles[index], text)
        return self._windows[key]
