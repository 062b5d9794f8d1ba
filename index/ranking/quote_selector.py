"""A learned quote selector: which evidence unit of a chunk is the one to quote.

Every candidate unit gets a row of cheap features available at query time (quote_features.py: cosines from
vectors made at index time, term statistics from the lexical tokenizer, a few answer-type patterns), and a
logistic model turns the row into a probability that the unit holds the answer. The model is a JSON file shipped
in index/models (`quote_model.json`, written by `python -m citeqa.eval.train_quote_selector`); inference is
numpy only.

The probability is meant to compare across chunks, not just within one: the model was fitted on the units
of the paragraph that answers a question together with the units of the closest wrong paragraph of the same
article, so the best unit of an off-target chunk still scores low. On SQuAD that makes it the better signal
of which paragraph answers (see the model file's cross-validation figures). Its training questions were
written while looking at the paragraph, so it leans on shared words more than today's score does; on
paraphrased questions its probabilities run low, and an abstention threshold must be calibrated on it
afresh (eval/calibrate.py), not carried over from the cosine + overlap score.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path

import numpy as np

from citeqa.index.models.model_files import check_model, read_model
from citeqa.index.ranking.quote_features import FEATURE_NAMES, CandidateUnits, QuestionInput, quote_features

MODEL_FILE = "quote_model.json"
MODEL_FORMAT = 1


class QuoteSelector:
    """Scores candidate units with the shipped logistic model: P(unit holds the answer), in (0, 1)."""

    def __init__(self, model: Mapping[str, object]) -> None:
        check_model(model, "quote", MODEL_FORMAT, FEATURE_NAMES)
        self.model = dict(model)
        self.mean = np.asarray(model["mean"], dtype=np.float64)
        self.scale = np.asarray(model["scale"], dtype=np.float64)
        self.coefficients = np.asarray(model["coefficients"], dtype=np.float64)
        self.intercept = float(model["intercept"])  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path | None = None) -> QuoteSelector:
        """The model shipped in the package, or the JSON file at `path`."""
        return cls(read_model(MODEL_FILE, path))

    @cached_property
    def weights(self) -> dict[str, float]:
        """Coefficients per standardised feature: the change in log-odds for one standard deviation."""
        return dict(zip(FEATURE_NAMES, self.coefficients.tolist(), strict=True))

    def logits(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.scale) @ self.coefficients + self.intercept

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Probability per row of `features` (quote_features output); higher is better."""
        return 1.0 / (1.0 + np.exp(-self.logits(features)))

    def score(self, question: QuestionInput, candidates: CandidateUnits) -> np.ndarray:
        return self.scores(quote_features(question, candidates))
