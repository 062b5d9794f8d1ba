"""Settings reach the engine, the parsers and the request limits field by field, each under its own name.

Every mapped setting is given a value of its own, distinct from every other and from its default, so a setting
carried into the wrong field (two floats swapped, say) shows here.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from citeqa.index.ranking.search import FusionMethod, SearchMode
from citeqa.service.limits import DEFAULT_LIMITS, Limits
from citeqa.settings import Settings

DISTINCT = {
    "model": "/models/some-encoder",
    "embed_batch_size": 7,
    "encoder": "onnx-int8",
    "models_dir": Path("/tmp/citeqa-models"),
    "chunk_size": 611,
    "chunk_overlap": 37,
    "title_in_passages": False,
    "chunk_vectors": "derived",
    "bm25_k1": 1.31,
    "bm25_b": 0.61,
    "stemmer": "german",
    "stopwords": "",
    "search_mode": SearchMode.DENSE,
    "fusion": FusionMethod.RRF,
    "dense_weight": 0.23,
    "rrf_k": 41,
    "candidates": 257,
    "sentence_weight": 0.17,
    "feedback_weight": 0.29,
    "feedback_depth": 5,
    "quote_lexical_weight": 1.7,
    "quote_rerank_weight": 0.33,
    "rerank_depth": 13,
    "min_relevance": 0.27,
    "companion_ratio": 0.81,
    "companion_probability": 0.19,
    "write_timeout": 9.5,
    "learned_quotes": False,
    "learned_ranking": False,
    "max_upload_file_bytes": 1001,
    "max_unpacked_bytes": 1002,
    "max_pdf_pages": 1003,
    "max_text_chars": 1004,
    "max_image_pixels": 1005,
    "ocr_max_pages": 1006,
    "ocr_seconds_per_file": 1007.5,
    "ocr_dpi": 301,
    "ocr_language": "deu+fra",
    "ocr_enabled": False,
    "max_request_bytes": 2001,
    "max_question_chars": 2002,
    "max_top_k": 2003,
    "max_chat_messages": 2004,
    "max_chat_chars": 2005,
    "claim_checker": "similarity",
    "claim_min_probability": 0.63,
    "claim_min_support": 0.57,
    "unsupported_claims": "drop",
}


def test_the_distinct_values_are_distinct_and_not_the_defaults() -> None:
    values = [str(v) for v in DISTINCT.values() if not isinstance(v, bool)]  # the switches can only be off
    assert len(set(values)) == len(values)
    for name, value in DISTINCT.items():
        assert Settings.default(name) != value, name


def test_engine_settings_carry_each_setting_into_its_own_field() -> None:
    engine = Settings(**DISTINCT).engine_settings()
    index, retrieval, answer = engine.index, engine.retrieval, engine.answer
    assert asdict(index.chunker) == {"chunk_size": 611, "chunk_overlap": 37}
    assert asdict(index.lexical) == {"method": "lucene", "k1": 1.31, "b": 0.61, "stemmer": "german", "stopwords": ""}
    assert (index.title_in_passages, index.chunk_vectors, index.unit_vectors) == (False, "derived", "encoded")
    assert asdict(retrieval) == {
        "mode": SearchMode.DENSE,
        "fusion": FusionMethod.RRF,
        "dense_weight": 0.23,
        "rrf_k": 41,
        "candidates": 257,
        "sentence_weight": 0.17,
        "feedback_weight": 0.29,
        "feedback_depth": 5,
    }
    assert (answer.min_relevance, answer.companion_ratio, answer.companion_probability) == (0.27, 0.81, 0.19)
    assert (engine.model, engine.encoder, engine.models_dir, engine.batch_size) == (
        "/models/some-encoder",
        "onnx-int8",
        Path("/tmp/citeqa-models"),
        7,
    )
    assert (engine.quote_lexical_weight, engine.quote_rerank_weight, engine.rerank_depth) == (1.7, 0.33, 13)
    assert (engine.write_timeout, engine.learned_quotes, engine.learned_ranking) == (9.5, False, False)


def test_parse_claim_and_request_limits_carry_each_setting_into_its_own_field() -> None:
    settings = Settings(**DISTINCT)
    assert asdict(settings.parse_limits()) == {
        "max_file_bytes": 1001,
        "max_unpacked_bytes": 1002,
        "max_pages": 1003,
        "max_text_chars": 1004,
        "max_image_pixels": 1005,
        "ocr": {"language": "deu+fra", "dpi": 301, "max_pages": 1006, "seconds_per_file": 1007.5, "enabled": False},
    }
    claims = settings.claim_settings()
    assert (claims.checker, claims.min_probability, claims.min_support, claims.unsupported) == ("similarity", 0.63, 0.57, "drop")
    assert claims.threshold == 0.57
    assert asdict(Limits.of(settings)) == {
        "max_request_bytes": 2001,
        "max_question_chars": 2002,
        "max_top_k": 2003,
        "max_chat_messages": 2004,
        "max_chat_chars": 2005,
    }


def test_the_request_limits_defaults_are_the_settings_defaults() -> None:
    # Declared once, in settings.py; service/limits.py reads them from there.
    assert Limits.of(Settings.model_construct()) == DEFAULT_LIMITS
    assert DEFAULT_LIMITS.max_question_chars == 2000 and DEFAULT_LIMITS.max_request_bytes == 10 * 1024 * 1024
