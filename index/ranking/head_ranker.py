"""A learned ranking of the head: the first hits of the fused ranking put in order by a linear model.

Fusion (index/ranking/search.py) finds and orders the candidates with two hand-set weights. The head of that ranking
(`EngineSettings.rerank_depth` hits, quoted anyway) is then re-ordered by a model that also reads what the
quotes found: each hit's row of features below, times coefficients learned with a pairwise (RankNet-style)
logistic objective on labelled questions: SciFact's train split and squad-dev-a, each dataset weighing the same
(`python -m citeqa.eval.train_ranker`). The model is a JSON file beside this module (`head_model.json`);
inference is one dot product per hit.

Cosines enter as gaps to the head's best, not as they are: what a cosine is worth differs from one corpus and
one question to the next, and a gap compares within the question, which is all a ranking needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from citeqa.index.models.model_files import check_model, read_model
from citeqa.index.ranking.evidence import Quote
from citeqa.index.ranking.search import Hit

MODEL_FILE = "head_model.json"
MODEL_FORMAT = 1

# The columns of head_features, in order; the model file names them too and must agree.
FEATURE_NAMES: tuple[str, ...] = (
    "dense_share",  # the dense score min-max normalised over the dense side's candidates (as fusion sees it)
    "lexical_share",  # BM25 divided by the query's best
    "chunk_cosine_gap",  # the chunk's own cosine minus the best in the head
    "sentence_cosine_gap",  # the chunk's best sentence's cosine minus the best in the head
    "quote_score",  # the quote's cosine + IDF-weighted share of the question's terms
    "quote_probability",  # the quote selector's P(the quote holds the answer)
)


def head_features(hits: Sequence[Hit], quotes: Sequence[Quote]) -> np.ndarray:
    """One row per hit (FEATURE_NAMES); quotes[i] is hits[i]'s quote, chosen by the learned selector."""
    if not hits:
        return np.zeros((0, len(FEATURE_NAMES)))
    chunk = np.array([hit.chunk_cosine for hit in hits])
    sentence = np.array([hit.sentence_cosine for hit in hits])
    return np.column_stack(
        [
            [hit.dense_share for hit in hits],
            [hit.lexical_share for hit in hits],
            chunk - chunk.max(),
            sentence - sentence.max(),
            [quote.score for quote in quotes],
            [quote.probability or 0.0 for quote in quotes],
        ]
    )


class HeadRanker:
    """Scores head hits with the shipped linear model; a higher score ranks first."""

    def __init__(self, model: Mapping[str, object]) -> None:
        check_model(model, "head", MODEL_FORMAT, FEATURE_NAMES)
        self.model = dict(model)
        self.coefficients = np.asarray(model["coefficients"], dtype=np.float64)

    @classmethod
    def load(cls, path: Path | None = None) -> HeadRanker:
        """The model shipped in the package, or the JSON file at `path`."""
        return cls(read_model(MODEL_FILE, path))

    def scores(self, hits: Sequence[Hit], quotes: Sequence[Quote]) -> np.ndarray:
        return head_features(hits, quotes) @ self.coefficients
