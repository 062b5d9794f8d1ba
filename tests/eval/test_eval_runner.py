"""The eval runner on a tiny BEIR-format dataset written by the test."""

import json
import os
import subprocess
import sys
from pathlib import Path

from citeqa.eval.beir import load_beir
from citeqa.index.models.embedding import Embedder

CORPUS = [
    ("d1", "Penguins", "Emperor penguins breed in the Antarctic winter and huddle for warmth."),
    ("d2", "Volcanoes", "Mount Etna in Sicily is one of the most active volcanoes in Europe."),
    ("d3", "Coffee", "Coffee beans are the roasted seeds of the Coffea plant, first cultivated in Yemen."),
    ("d4", "Tides", "Ocean tides are caused mainly by the gravitational pull of the Moon."),
]
QUERIES = [
    ("q1", "Where do emperor penguins breed?", ["Antarctic"]),
    ("q2", "Which European volcano is very active?", ["Mount Etna"]),
    ("q3", "What causes the tides?", ["gravitational pull of the Moon"]),
]


def write_dataset(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as out:
        for doc_id, title, text in CORPUS:
            out.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w") as out:
        for qid, text, answers in QUERIES:
            out.write(json.dumps({"_id": qid, "text": text, "answers": answers}) + "\n")
        out.write(json.dumps({"_id": "q-unjudged", "text": "ignored: no qrels"}) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td4\t1\n")
    return folder


def test_loader_keeps_judged_queries_and_answers(tmp_path: Path) -> None:
    dataset = load_beir(write_dataset(tmp_path / "tiny"))
    assert set(dataset.queries) == {"q1", "q2", "q3"}
    assert dataset.qrels["q3"] == {"d4": 1}
    assert dataset.answers["q2"] == ["Mount Etna"]
    assert dataset.documents()[0].text == "Penguins\n\nEmperor penguins breed in the Antarctic winter and huddle for warmth."


def test_runner_compares_three_retrievers_and_writes_json(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "tiny")
    output = tmp_path / "out.json"
    command = [
        sys.executable,
        "-m",
        "citeqa.eval",
        "--dataset",
        str(dataset),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--output",
        str(output),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert result.returncode == 0, result.stderr
    assert "| lexical |" in result.stdout and "| dense |" in result.stdout and "| hybrid |" in result.stdout
    report = json.loads(output.read_text())
    assert set(report["modes"]) == {"lexical", "dense", "hybrid"}
    hybrid = report["modes"]["hybrid"]
    assert hybrid["ndcg@10"] == 1.0 and hybrid["hit@1"] == 1.0
    assert hybrid["answer_in_top_quote"] == 1.0
    cache = next(p for p in (tmp_path / "cache").iterdir() if (p / "segments").is_dir())
    segments = sorted(p.name for p in (cache / "segments").iterdir())
    again = subprocess.run(command, capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert again.returncode == 0
    assert sorted(p.name for p in (cache / "segments").iterdir()) == segments  # the cached index was reused


def test_missing_dataset_files_are_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "citeqa", "eval", "--dataset", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "not a BEIR dataset" in result.stderr and "Traceback" not in result.stderr


def test_the_embedding_cache_returns_the_models_vectors_and_persists(tmp_path: Path, embedder: Embedder) -> None:
    import numpy as np

    from citeqa.eval.embedding_cache import CachedEmbedder
    from citeqa.settings import Settings

    texts = ["Emperor penguins breed in winter.", "Tides follow the Moon.", "Emperor penguins breed in winter."]
    settings = Settings().engine_settings()  # the embedder the fixture built: the configured one
    cached = CachedEmbedder.for_settings(tmp_path, settings).load()
    vectors = cached.embed(texts)
    assert np.allclose(vectors, embedder.embed(texts), atol=1e-5)
    cached.save()
    reopened = CachedEmbedder.for_settings(tmp_path, settings)
    reopened._load_cache()
    assert len(reopened._vectors) == 2
    assert np.allclose(reopened.embed(texts[:2]), vectors[:2], atol=1e-6)
