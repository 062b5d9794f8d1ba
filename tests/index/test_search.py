from itertools import pairwise

import bm25s
import numpy as np
import pytest
import Stemmer

from citeqa.index.answering.compose import MIN_RELEVANCE
from citeqa.index.engine import Engine
from citeqa.index.ranking.search import FusionMethod, RetrievalSettings, SearchMode, fuse
from citeqa.index.storage.rows import sorted_union
from citeqa.index.text.lexical import LexicalSettings, LexicalTokenizer
from citeqa.settings import Settings
from tests.conftest import SEED_ID


def test_rrf_fusion_adds_reciprocal_ranks() -> None:
    rows = np.array([1, 2, 3])
    settings = RetrievalSettings(fusion=FusionMethod.RRF, dense_weight=0.5, rrf_k=60)
    fused = fuse(rows, np.zeros(3), np.zeros(3), np.array([2, 1]), np.array([1, 3]), settings)
    assert fused[0] == pytest.approx(0.5 / 62 + 0.5 / 61)  # row 1: second densely, first lexically
    assert fused[1] == pytest.approx(0.5 / 61)
    assert fused[2] == pytest.approx(0.5 / 62)


def test_weighted_fusion_normalises_each_side() -> None:
    rows = np.array([0, 1])
    settings = RetrievalSettings(fusion=FusionMethod.WEIGHTED, dense_weight=0.25)
    fused = fuse(rows, np.array([0.2, 0.6]), np.array([4.0, 2.0]), np.array([1, 0]), np.array([0, 1]), settings)
    assert fused[0] == pytest.approx(0.25 * 0.0 + 0.75 * 1.0)
    assert fused[1] == pytest.approx(0.25 * 1.0 + 0.75 * 0.5)


def test_bad_retrieval_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        RetrievalSettings(dense_weight=1.5)


@pytest.mark.parametrize("mode", list(SearchMode))
def test_every_mode_puts_shoygus_allegation_first(seed_engine: Engine, mode: SearchMode) -> None:
    [top, *_] = seed_engine.search("what did Shoygu allege?", 3, mode=mode)
    assert "Shoygu alleged" in top.hit.chunk.text


def test_hits_carry_fused_and_component_scores_in_order(seed_engine: Engine) -> None:
    passages = seed_engine.search("peacekeepers deployed to Ukraine", 4)
    scores = [p.hit.score for p in passages]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0 <= p.hit.dense <= 1.0 and p.hit.lexical >= 0.0 for p in passages)
    assert len({p.hit.row for p in passages}) == len(passages)


def test_lexical_mode_finds_nothing_for_unknown_words_while_dense_still_ranks(seed_engine: Engine) -> None:
    assert seed_engine.search("zzzqqq xxyyzz", 3, mode=SearchMode.LEXICAL) == []
    assert len(seed_engine.search("zzzqqq xxyyzz", 3, mode=SearchMode.DENSE)) == 3


def test_the_quote_is_the_sentence_that_states_the_allegation(seed_engine: Engine) -> None:
    top = seed_engine.search("what did Shoygu allege?", 1)[0]
    text = top.document.text
    assert top.quote.text.startswith("In a statement at the end of April, Shoygu alleged")
    assert text[top.quote.start : top.quote.end] == top.quote.text
    assert top.hit.chunk.start <= top.quote.start < top.quote.end <= top.hit.chunk.end
    assert top.document.id == SEED_ID


def test_ask_abstains_when_the_documents_do_not_answer(seed_engine: Engine) -> None:
    answer = seed_engine.ask("What is the boiling point of water at sea level?")
    assert not answer.composed.found
    assert answer.cited == []
    answered = seed_engine.ask("How many personnel would the Western contingent include?")
    assert answered.composed.found
    assert "100,000" in answered.composed.text and "[1]" in answered.composed.text


def test_an_answer_with_several_parts_quotes_each_once_with_the_best_first(seed_engine: Engine) -> None:
    answer = seed_engine.ask("What did the SVR claim?")
    quotes = [passage.quote for passage in answer.cited]
    assert len(quotes) == 3 and all("SVR" in quote.text for quote in quotes)
    assert "100,000 personnel" in quotes[0].text
    assert "combat readiness" in quotes[1].text and "cover for the occupation" in quotes[2].text  # document order
    assert answer.composed.text == " ".join(f"{quote.text} [{n}]" for n, quote in enumerate(quotes, start=1))
    text = answer.cited[0].document.text
    assert all(text[q.start : q.end] == q.text for q in quotes)
    in_order = sorted(quotes, key=lambda q: q.start)
    assert all(a.end <= b.start for a, b in pairwise(in_order))  # distinct words


def test_what_someone_alleged_is_answered_with_each_of_their_statements(seed_engine: Engine) -> None:
    """The design card's question: both allegations of Shoygu's (in two passages) and the accusation that leans on
    the second ("He accused …"), each quoted once, the selector's choice first."""
    answer = seed_engine.ask("What did Shoygu allege?")
    quotes = [passage.quote.text for passage in answer.cited]
    assert quotes[0].startswith("In a statement at the end of April, Shoygu alleged")
    assert any("unmistakable hallmark of a planned occupation of western Ukraine" in quote for quote in quotes[1:])
    assert any(quote.startswith("He accused Ukrainian authorities") for quote in quotes[1:])
    assert len(quotes) == len(set(quotes)) == 3
    assert {passage.document.id for passage in answer.cited} == {SEED_ID}
    text = answer.cited[0].document.text
    assert all(text[p.quote.start : p.quote.end] == p.quote.text for p in answer.cited)


def test_a_statement_question_does_not_pad_with_sentences_that_only_name_the_speaker(seed_engine: Engine) -> None:
    # "The failure of Starmer's proposal…" names him but states nothing he said.
    answer = seed_engine.ask("What did Starmer announce?")
    assert [passage.quote.text for passage in answer.cited] == [answer.passages[0].quote.text]
    assert "announced plans to send peacekeepers" in answer.composed.text


def test_an_answer_does_not_pad_with_sentences_that_only_share_a_name(seed_engine: Engine) -> None:
    # "He accused Ukrainian authorities…" scores close on words, but the selector judges it unlikely to answer.
    answer = seed_engine.ask("Who is the Kremlin's spokesperson?")
    assert [passage.quote.text for passage in answer.cited] == [answer.passages[0].quote.text]
    assert "Kremlin spokesperson Dmitry Peskov" in answer.composed.text


def test_feedback_moves_the_query_toward_the_first_pass_and_stays_normalised(seed_engine: Engine) -> None:
    from citeqa.index.ranking.search import Retriever

    settings = RetrievalSettings(feedback_weight=0.5, feedback_depth=2)
    snapshot = seed_engine.collection.snapshot()
    retriever = Retriever(snapshot, settings)
    vector = seed_engine.embedder.embed_query("what did Shoygu allege?")
    terms = seed_engine.tokenizer.tokenize(["what did Shoygu allege?"])[0]
    first = retriever._search(vector, *retriever._lexical_side(terms), 3, SearchMode.HYBRID)
    moved = retriever._with_feedback(vector, first)
    centroid = snapshot.chunk_vectors(np.array([h.row for h in first[:2]])).mean(axis=0)
    assert np.linalg.norm(moved) == pytest.approx(1.0, abs=1e-5)
    assert float(moved @ centroid) > float(vector @ centroid)
    hits = retriever.search(terms, vector, 3, SearchMode.HYBRID)
    assert "Shoygu alleged" in hits[0].chunk.text


def test_negative_feedback_weight_is_refused() -> None:
    with pytest.raises(ValueError):
        RetrievalSettings(feedback_weight=-0.1)


def test_search_serves_the_ranking_the_evaluation_scores(seed_engine: Engine) -> None:
    """One ranking path: /v1/search's top_k results are the first top_k of the depth the evaluation ranks to."""
    from citeqa.eval.runner import BEIR_CHUNK_DEPTH

    for question in ("what did Shoygu allege?", "How many personnel would the West deploy?", "Keir Starmer"):
        served = seed_engine.search(question, 3)
        evaluated, quotes = seed_engine.rank(question, BEIR_CHUNK_DEPTH)
        assert [p.hit.row for p in served] == [h.row for h in evaluated[:3]]
        assert [(p.quote.start, p.quote.end) for p in served] == [(q.start, q.end) for q in quotes[:3]]


def test_overlapping_chunks_never_repeat_a_quote(seed_engine: Engine) -> None:
    for question in ("Keir Starmer", "what did Shoygu allege?", "peacekeeping mission"):
        passages = seed_engine.search(question, 6)
        keys = [(p.document.id, p.quote.start, p.quote.end) for p in passages]
        assert len(keys) == len(set(keys))


def test_the_tokenizer_gives_the_tokens_bm25s_gives() -> None:
    """The index's own tokenizer replaced bm25s.tokenize on the query path for speed; its tokens must not change."""
    texts = [
        "What did Shoygu allege about the planned occupation of western Ukraine?",
        "The Normans' settlements, 1,200 of them, were in Normandy (Ñormandie) — in the 10th century.",
        "",
        "a I to",
        "Straße naïve café İstanbul running runs ran",
    ]
    for settings in (LexicalSettings(), LexicalSettings(stemmer="", stopwords="")):
        stemmer = Stemmer.Stemmer(settings.stemmer).stemWords if settings.stemmer else None
        expected = bm25s.tokenize(
            texts, stopwords=settings.stopwords or None, stemmer=stemmer, return_ids=False, show_progress=False
        )
        assert LexicalTokenizer(settings).tokenize(texts) == expected
        assert [LexicalTokenizer(settings).tokenize([t])[0] for t in texts] == expected
    assert LexicalTokenizer(LexicalSettings()).tokenize(["the runner was running"]) == [["runner", "run"]]


def test_a_dense_query_scores_rows_as_their_vectors_do(seed_engine: Engine) -> None:
    """The dense side reads candidates' cosines out of one scan per segment; they must be the vectors' own."""
    snapshot = seed_engine.collection.snapshot()
    vector = seed_engine.embedder.embed_query("What did Shoygu allege?")
    dense = snapshot.dense_query(vector)
    chunk_rows = np.array([3, 0, 2, 2], dtype=np.int64)
    unit_rows = np.array([5, 1, 4, 0], dtype=np.int64)
    np.testing.assert_allclose(dense.chunk_cosines(chunk_rows), snapshot.chunk_vectors(chunk_rows) @ vector, atol=1e-6)
    np.testing.assert_allclose(dense.unit_cosines(unit_rows), snapshot.unit_vectors(unit_rows) @ vector, atol=1e-6)
    every_chunk = snapshot.chunk_vectors(np.arange(snapshot.live_chunks)) @ vector
    assert dense.nearest_chunks(3).tolist() == np.argsort(-every_chunk)[:3].tolist()


def test_the_abstention_threshold_follows_the_kind_of_sentence_vectors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pooled sentence vectors score answering sentences lower: unset, the threshold is the one calibrated for them."""
    monkeypatch.delenv("CITEQA_MIN_RELEVANCE", raising=False)
    assert Settings().engine_settings().answer.min_relevance == MIN_RELEVANCE["encoded"] == 0.42
    assert Settings(unit_vectors="pooled").engine_settings().answer.min_relevance == MIN_RELEVANCE["pooled"] == 0.35
    assert Settings(unit_vectors="pooled", min_relevance=0.5).engine_settings().answer.min_relevance == 0.5
    assert Settings(min_relevance=0.0).engine_settings().answer.min_relevance == 0.0


def test_sorted_union_is_numpys_union() -> None:
    rng = np.random.default_rng(7)
    parts = [rng.integers(0, 50, size) for size in (0, 1, 30, 300)]
    assert np.array_equal(sorted_union(*parts), np.unique(np.concatenate(parts)))
    assert np.array_equal(sorted_union(parts[2], parts[3]), np.union1d(parts[2], parts[3]))
    assert len(sorted_union()) == 0 and len(sorted_union(parts[0])) == 0
