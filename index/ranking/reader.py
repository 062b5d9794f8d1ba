"""The reader: a small cross-encoder, trained here (eval/train_reader.py), that reads a question together with one
sentence and scores how likely the sentence holds the answer.

Unlike the quote selector's features (cosines of vectors made apart, shared words), it reads both texts at once, so
it can see that "unwilling" asks about "reluctance" or that "which newspaper" wants a newspaper's name. It is
expensive (a transformer pass per sentence), so the engine runs it only on the first few passages
(`EngineSettings.reader_depth`), and in each only on the sentences the selector finds most likely
(`EngineSettings.reader_sentences`); it combines its logit with the selector's (`combine`): the two miss different
questions.

The model ships in index/models (index/models/pair_model.py loads it): an int8 ONNX file run by onnxruntime (no
torch), its sha256 checked when loaded, and reader.json with what it was trained on, its figures and the
combination's weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from citeqa.index.models.pair_model import MODEL_FOLDER, PairModel

INFO_FILE = "reader.json"


def reader_input(title: str, text: str) -> str:
    """The second text the reader sees: the passage's title, then the sentence (a sentence alone often lacks its
    subject: "It was founded in 1851")."""
    return f"{title}: {text}" if title else text


def logit(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(probabilities, 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


def combined_logit(weights: Mapping[str, float], selector_probabilities: np.ndarray, reader_logits: np.ndarray) -> np.ndarray:
    """The combination's log-odds that a sentence holds the answer: weights["selector"] x the selector's logit +
    weights["reader"] x the reader's + weights["intercept"] (the one formula training fits and the engine applies)."""
    return weights["selector"] * logit(selector_probabilities) + weights["reader"] * reader_logits + weights["intercept"]


class Reader:
    """Scores (question, sentence) pairs: logits, higher meaning more likely to hold the answer."""

    def __init__(self, folder: Path = MODEL_FOLDER, threads: int | None = None, sentences: int = 0) -> None:
        """`sentences`: how many sentences of each passage are read, the selector's most likely first; 0 reads all."""
        self.model = PairModel(folder, INFO_FILE, threads)
        self.sentences = sentences
        self.info = self.model.info
        self.sha256 = self.model.sha256
        self.weights = {key: float(self.info["combination"][key]) for key in ("selector", "reader", "intercept")}

    def logits(self, question: str, texts: Sequence[str]) -> np.ndarray:
        """One logit per text (already through `reader_input`); texts read before with this question come from the cache."""
        return self.model.logits(question, texts)

    def combine(self, selector_probabilities: np.ndarray, reader_logits: np.ndarray) -> np.ndarray:
        """P(the sentence holds the answer) from both signals: a logistic model over the selector's logit and the
        reader's, fitted on held-out folds (eval/train_reader.py)."""
        return 1.0 / (1.0 + np.exp(-combined_logit(self.weights, selector_probabilities, reader_logits)))

    def probabilities(
        self, question: str, texts: Sequence[str], selector_probabilities: np.ndarray, sizes: Sequence[int]
    ) -> np.ndarray:
        """P(holds the answer) for each text (already through `reader_input`), the texts being runs of `sizes`
        sentences, one run per passage. In each run only the `sentences` the selector finds most likely are read
        (ties by position). A sentence left unread is given the lowest logit read in its run: the combination rises
        with both signals and the selector put it below every read one, so it never outranks a sentence that was read."""
        chosen: list[int] = []
        begin = 0
        for size in sizes:
            run = selector_probabilities[begin : begin + size]
            order = np.argsort(-run, kind="stable")
            chosen.extend((begin + order[: self.sentences or size]).tolist())
            begin += size
        read = self.logits(question, [texts[i] for i in chosen])
        logits = np.full(len(texts), np.inf)
        logits[chosen] = read
        begin = 0
        for size in sizes:
            run = logits[begin : begin + size]
            run[np.isinf(run)] = run[np.isfinite(run)].min() if size else 0.0
            begin += size
        return self.combine(selector_probabilities, logits)
