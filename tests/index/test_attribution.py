"""Reported speech: the speaker a "What did X say?" question asks about, and the sentences that state what X said."""

import pytest

from citeqa.index.engine import Engine
from citeqa.index.ranking.attribution import Speaker, question_speaker, reports


def _speaker(engine: Engine, question: str) -> Speaker | None:
    snapshot = engine.collection.snapshot()
    return question_speaker(question, engine.tokenizer.tokenize, snapshot.idf, snapshot.idf_from(0))


@pytest.mark.parametrize(
    ("question", "term", "topic"),
    [
        ("What did Shoygu allege?", "shoygu", set()),
        ("what did the SVR claim?", "svr", set()),
        ("What did the SVR call the mission?", "svr", {"mission"}),
        ("What has Keir Starmer said about peacekeepers?", "keir", {"peacekeep"}),  # "Starmer" is in more chunks
        ("What did the SVR report say?", "svr", set()),  # a second verb of saying is no topic
        # "report" ends no speaker here ("the" names nobody), so the speaker runs on to "say".
        ("What did the report of the SVR say?", "report", set()),
    ],
)
def test_the_speaker_is_the_rarest_known_term_before_the_reporting_verb(
    seed_engine: Engine, question: str, term: str, topic: set[str]
) -> None:
    speaker = _speaker(seed_engine, question)
    assert speaker is not None and speaker.term == term and set(speaker.topic) == topic


@pytest.mark.parametrize(
    "question",
    [
        "Who is the Kremlin's spokesperson?",  # not a question about what someone said
        "What did Macron say?",  # a speaker the documents never name
        "What is the headline of the article?",
    ],
)
def test_other_questions_have_no_speaker(seed_engine: Engine, question: str) -> None:
    assert _speaker(seed_engine, question) is None


def test_a_statement_names_its_speaker_or_leans_on_the_sentence_before() -> None:
    speaker = Speaker("Shoygu", "shoygu")
    texts = [
        "Shoygu alleged that the West hides its aims.",
        "He accused Ukraine of ignoring it.",  # "He" carries the speaker on
        "They met in April.",  # no cue of saying
        "He said nothing more.",  # the sentence before is no statement of his
        "Analysts said Shoygu was wrong.",  # names him and reports: counted (a known over-reach)
    ]
    terms = [
        ["shoygu", "alleg", "west", "hide", "aim"],
        ["accus", "ukrain", "ignor"],
        ["met", "april"],
        ["said"],
        ["analyst", "said", "shoygu", "wrong"],
    ]
    assert speaker.attributed(texts, terms) == [True, True, False, False, True]
    # About Ukraine: only the statement that mentions it, though it leans on one that does not.
    on_topic = Speaker("Shoygu", "shoygu", frozenset({"ukrain"}))
    assert on_topic.attributed(texts, terms) == [False, True, False, False, False]
    assert reports("According to the SVR, troops will come.") and not reports("The state of the region.")
