"""The learned head ranking: the shipped model, its features on a real index, the order it gives, its training."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from citeqa.eval.train_ranker import Question, fit, pairs
from citeqa.index.engine import Engine
from citeqa.index.models.embedding import Embedder
from citeqa.index.ranking.head_ranker import FEATURE_NAMES, HeadRanker, head_features
from citeqa.index.ranking.search import SearchMode

QUESTION = "What did Shoygu allege?"


@pytest.fixture(scope="module")
def ranker() -> HeadRanker:
    return HeadRanker.load()


def test_shipped_model_names_its_features_and_records_how_it_was_made(ranker: HeadRanker) -> None:
    model = ranker.model
    assert tuple(model["feature_names"]) == FEATURE_NAMES
    assert ranker.coefficients.shape == (len(FEATURE_NAMES),) and np.all(np.isfinite(ranker.coefficients))
    datasets = model["training"]["datasets"]
    assert set(datasets) == {"scifact (train split)", "squad-dev-a"}
    assert all(len(digest) == 64 for data in datasets.values() for digest in data["sha256"].values())
    assert "qrels/train.tsv" in datasets["scifact (train split)"]["sha256"]  # never SciFact's test split
    # It was shipped because it beat the hand-set re-scoring on articles it had not seen.
    pooled = model["cross_validation"]["pooled"]
    assert pooled["ndcg@10_learned"] > pooled["ndcg@10_hand_set"]


def test_a_model_for_other_features_is_refused(ranker: HeadRanker) -> None:
    with pytest.raises(ValueError, match="retrain"):
        HeadRanker(dict(ranker.model, feature_names=list(reversed(FEATURE_NAMES))))
    with pytest.raises(ValueError, match="format"):
        HeadRanker(dict(ranker.model, format=99))


def test_features_of_a_real_head(seed_engine: Engine) -> None:
    hits, quotes = seed_engine.first_pass(QUESTION, 10, SearchMode.HYBRID)
    head = hits[: len(quotes)]
    assert len(head) == min(len(hits), seed_engine.settings.rerank_depth) > 1
    features = head_features(head, quotes)
    assert features.shape == (len(head), len(FEATURE_NAMES))
    column = {name: features[:, i] for i, name in enumerate(FEATURE_NAMES)}
    for share in ("dense_share", "lexical_share"):
        assert np.all((column[share] >= 0) & (column[share] <= 1))
    for gap in ("chunk_cosine_gap", "sentence_cosine_gap"):
        assert column[gap].max() == 0.0 and np.all(column[gap] <= 0)
    np.testing.assert_allclose(column["quote_score"], [q.score for q in quotes])
    np.testing.assert_allclose(column["quote_probability"], [q.probability for q in quotes])
    # The hit's dense score is the mix of the two cosines the features read.
    weight = seed_engine.settings.retrieval.sentence_weight
    for hit in head:
        assert hit.dense == pytest.approx((1 - weight) * hit.chunk_cosine + weight * hit.sentence_cosine)


def _distinct_head_order(hits: list, quotes: list, scores: np.ndarray) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], hits[i].row))
    seen, rows = set(), []
    for i in order:
        key = (hits[i].doc_id, quotes[i].start, quotes[i].end)
        if key not in seen:
            seen.add(key)
            rows.append(hits[i].row)
    return rows


def test_rank_orders_the_head_by_the_model(seed_engine: Engine, ranker: HeadRanker) -> None:
    hits, quotes = seed_engine.first_pass(QUESTION, 10, SearchMode.HYBRID)
    head = hits[: len(quotes)]
    expected = _distinct_head_order(head, quotes, ranker.scores(head, quotes))
    ranked, _ = seed_engine.rank(QUESTION, len(expected))
    assert [hit.row for hit in ranked] == expected
    assert [hit.score for hit in ranked] == sorted((hit.score for hit in ranked), reverse=True)


def test_with_learned_ranking_off_the_head_is_fused_plus_weighted_quote_score(seed_engine: Engine, embedder: Embedder) -> None:
    settings = replace(seed_engine.settings, learned_ranking=False)
    engine = Engine(seed_engine.collection, embedder, settings)
    assert engine.head_ranker is None
    hits, quotes = engine.first_pass(QUESTION, 10, SearchMode.HYBRID)
    head = hits[: len(quotes)]
    hand_set = np.array([h.score + settings.quote_rerank_weight * q.score for h, q in zip(head, quotes, strict=True)])
    expected = _distinct_head_order(head, quotes, hand_set)
    ranked, _ = engine.rank(QUESTION, len(expected))
    assert [hit.row for hit in ranked] == expected
    learned, _ = seed_engine.rank(QUESTION, len(expected))
    assert [hit.score for hit in learned] != [hit.score for hit in ranked]


def _question(features: np.ndarray, grades: np.ndarray) -> Question:
    return Question(features, grades, [str(i) for i in range(len(grades))], [], np.zeros(len(grades)), {})


def test_training_learns_the_feature_that_separates_relevant_hits() -> None:
    rng = np.random.default_rng(7)
    questions = []
    for _ in range(60):
        features = rng.normal(size=(10, len(FEATURE_NAMES)))
        grades = np.zeros(10)
        grades[rng.choice(10, size=2, replace=False)] = 1
        features[:, 2] += 1.5 * grades  # relevant hits have a higher third feature; the others are noise
        questions.append(_question(features, grades))
    differences, weights = pairs(questions)
    assert len(differences) == 60 * 2 * 8
    np.testing.assert_allclose(weights.reshape(60, 16).sum(axis=1), 1.0)  # every question weighs the same
    coefficients = fit([questions[:30], questions[30:]])
    assert int(np.argmax(np.abs(coefficients))) == 2 and coefficients[2] > 0
