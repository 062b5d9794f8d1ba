"""The CI gate on public data: datasets of ../shared/data indexed from scratch with the defaults, every judged
question asked through the served ranking path in each mode, against the floors in eval/baseline.json ("public").

The gold set (test_eval_gate.py) watches one document the defaults were tuned on. These watch a thousand SQuAD
paragraphs (5,696 questions: ranking and quotes) and CISI, a collection no default was chosen on (whether hybrid
still beats both of its sides), where a regression shows in the third decimal.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from citeqa.eval.beir import BeirDataset, load_beir
from citeqa.eval.runner import MODES, cached_engine, evaluate_beir
from citeqa.index.models.embedding import Embedder
from citeqa.settings import Settings

pytestmark = [pytest.mark.public_data, pytest.mark.slow]

REPOSITORY = Path(__file__).resolve().parents[2]
BASELINE = json.loads((REPOSITORY / "eval" / "baseline.json").read_text())["public"]
DATA = Path(os.environ.get("CITEQA_EVAL_DATA", REPOSITORY.parent / "shared" / "data"))
DATASETS = sorted(name for name in BASELINE if not name.startswith("_"))


def public_dataset(name: str) -> BeirDataset:
    """The dataset, or a failure that says where it was looked for and how to leave these tests out."""
    folder = DATA / name
    if not folder.is_dir():
        pytest.fail(
            f"{folder} not found: the public evaluation data is looked for in ../shared/data beside the repository, "
            "or in CITEQA_EVAL_DATA. Without it, run the other tests with `pytest -m 'not public_data'`.",
            pytrace=False,
        )
    return load_beir(folder)


@pytest.fixture(scope="module", params=DATASETS)
def report(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> dict:
    dataset = public_dataset(request.param)
    # A fresh, empty cache folder: the index is built from scratch, the way `citeqa eval` builds its own.
    cache = tmp_path_factory.mktemp(request.param)
    engine = cached_engine(dataset.name, dataset.documents(), Settings().engine_settings(), cache, embedder=embedder)
    try:
        return evaluate_beir(engine, dataset, MODES, show_progress=False)
    finally:
        engine.close()


def test_the_hybrid_ranking_stays_above_its_floors(report: dict) -> None:
    expected = BASELINE[report["dataset"]]
    hybrid = report["modes"]["hybrid"]
    assert report["queries"] == expected["queries"]
    failures = [f"{name} {hybrid[name]:.4f} < {floor}" for name, floor in expected["floors"].items() if hybrid[name] < floor]
    assert not failures, f"{report['dataset']} regressed: " + "; ".join(failures)


def test_hybrid_beats_the_better_of_its_own_sides(report: dict) -> None:
    margin = BASELINE[report["dataset"]]["hybrid_over_better_side"]
    ndcg = {mode: figures["ndcg@10"] for mode, figures in report["modes"].items()}
    assert ndcg["hybrid"] >= max(ndcg["lexical"], ndcg["dense"]) + margin, ndcg
