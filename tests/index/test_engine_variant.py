"""Evaluation variants are new engines over the same segments: ranking with other settings never changes the
engine they came from."""

from dataclasses import replace

import pytest

from citeqa.index.engine import Engine
from citeqa.index.ranking.search import SearchMode
from citeqa.index.text.chunking import ChunkerSettings

QUESTION = "what did Shoygu allege?"


def lexical_scores(engine: Engine) -> list[float]:
    hits, _ = engine.rank(QUESTION, 5, mode=SearchMode.LEXICAL)
    return [hit.lexical for hit in hits]


def test_a_bm25_variant_scores_differently_and_leaves_its_base_alone(seed_engine: Engine) -> None:
    before = lexical_scores(seed_engine)
    index = seed_engine.settings.index
    settings = replace(seed_engine.settings, index=replace(index, lexical=replace(index.lexical, k1=2.0, b=0.9)))
    variant = seed_engine.variant(settings)
    assert variant.collection is not seed_engine.collection
    assert lexical_scores(variant) != before
    assert lexical_scores(seed_engine) == before
    same = seed_engine.variant(replace(seed_engine.settings, rerank_depth=5))
    assert same.collection is seed_engine.collection and lexical_scores(same) == before


def test_a_variant_cannot_change_what_the_index_holds(seed_engine: Engine) -> None:
    index = seed_engine.settings.index
    with pytest.raises(ValueError, match="index settings must be the collection's"):
        seed_engine.variant(replace(seed_engine.settings, index=replace(index, chunker=ChunkerSettings(chunk_size=300))))
    with pytest.raises(ValueError, match="tokenising is the index's own"):
        seed_engine.variant(replace(seed_engine.settings, index=replace(index, lexical=replace(index.lexical, stemmer=""))))
