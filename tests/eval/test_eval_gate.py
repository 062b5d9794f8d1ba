"""The CI gate: the gold set over the seed document must not fall below eval/baseline.json."""

import json
from pathlib import Path

import pytest

from citeqa.eval.gold import GoldQuestion, check_gold, load_gold
from citeqa.eval.reader_figures import PARAPHRASED_PATH
from citeqa.eval.runner import evaluate_gold
from citeqa.index.engine import Engine

BASELINE = Path(__file__).resolve().parents[2] / "eval" / "baseline.json"


@pytest.fixture(scope="module")
def report(seed_engine: Engine) -> dict:
    return evaluate_gold(seed_engine, load_gold())


def test_the_gold_set_is_well_formed(seed_engine: Engine) -> None:
    questions = load_gold()
    assert check_gold(questions, {d.id: seed_engine.document(d.id) for d in seed_engine.documents()}) == []
    assert sum(q.answerable for q in questions) >= 40
    assert sum(not q.answerable for q in questions) >= 8


def test_every_part_of_a_several_part_answer_is_checked_and_counted(seed_engine: Engine) -> None:
    documents = {d.id: seed_engine.document(d.id) for d in seed_engine.documents()}
    [doc_id] = documents
    allegation = "Shoygu alleged that the West’s intentions are obscured"
    misspelt = GoldQuestion("x1", "What did Shoygu allege?", "several-part", doc_id, allegation, ("a hallmark of peace",))
    assert check_gold([misspelt], documents) == [f"x1: 'a hallmark of peace' not found verbatim in {doc_id}"]
    # The same question, with a second part the answer quotes and with one no answer to it would (the headline).
    quoted = GoldQuestion("x2", "What did Shoygu allege?", "several-part", doc_id, allegation, ("unmistakable hallmark",))
    headline = GoldQuestion("x3", "What did Shoygu allege?", "several-part", doc_id, allegation, ("Emphasizes Opposition",))
    report = evaluate_gold(seed_engine, [quoted, headline])
    assert [row["complete"] for row in report["per_question"]] == [True, False]
    assert report["several_part_questions"] == 2 and report["complete_answers"] == 0.5


def test_gold_set_figures_stay_above_the_committed_baseline(report: dict) -> None:
    baseline = json.loads(BASELINE.read_text())
    failures = [f"{name} {report[name]:.3f} < {floor}" for name, floor in baseline["floors"].items() if report[name] < floor]
    failures += [f"{name} {report[name]} > {ceiling}" for name, ceiling in baseline["ceilings"].items() if report[name] > ceiling]
    assert not failures, "retrieval regressed: " + "; ".join(failures)


def test_the_paraphrased_set_stays_above_its_floors(seed_engine: Engine) -> None:
    questions = load_gold(PARAPHRASED_PATH)
    documents = {d.id: seed_engine.document(d.id) for d in seed_engine.documents()}
    assert check_gold(questions, documents) == [] and len(questions) == 20 and all(q.answerable for q in questions)
    report = evaluate_gold(seed_engine, questions)
    floors = json.loads(BASELINE.read_text())["paraphrased"]["floors"]
    failures = [f"{name} {report[name]:.3f} < {floor}" for name, floor in floors.items() if report[name] < floor]
    assert not failures, "paraphrased questions regressed: " + "; ".join(failures)


def test_every_citation_for_every_gold_question_points_at_exact_text(seed_engine: Engine) -> None:
    for question in load_gold():
        for passage in seed_engine.search(question.question, 10):
            text = passage.document.text
            assert text[passage.hit.chunk.start : passage.hit.chunk.end] == passage.hit.chunk.text
            assert text[passage.quote.start : passage.quote.end] == passage.quote.text
    for info in seed_engine.documents():
        chunks = seed_engine.chunks(info.id)
        assert len(chunks) == info.chunks > 0
        for chunk in chunks:
            assert seed_engine.document(info.id).text[chunk.start : chunk.end] == chunk.text


def test_metrics_match_hand_computed_values() -> None:
    from citeqa.eval.metrics import hit_at_k, mrr_at_k, ndcg_at_k, recall_at_k

    ranked, relevant = ["a", "b", "c", "d"], {"b": 1, "d": 2, "z": 1}
    assert hit_at_k(ranked, relevant, 1) == 0.0 and hit_at_k(ranked, relevant, 2) == 1.0
    assert mrr_at_k(ranked, relevant, 10) == 0.5
    assert recall_at_k(ranked, relevant, 4) == pytest.approx(2 / 3)
    dcg = 1 / 1.584962500721156 + 2 / 2.321928094887362
    idcg = 2 / 1.0 + 1 / 1.584962500721156 + 1 / 2.0
    assert ndcg_at_k(ranked, relevant, 10) == pytest.approx(dcg / idcg)
