"""Processes sharing one collection: the CLI writes while the server serves, and kill -9 never breaks it."""

import random
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx

from citeqa.eval.bench import wait_ready
from citeqa.index.embedding import Embedder
from citeqa.index.engine import Engine, EngineSettings
from tests.conftest import SEED_ID
from tests.helpers import CITEQA, citeqa_env, free_port, run_citeqa, running_server


def search_ids(base: str, query: str) -> list[str]:
    results = httpx.post(f"{base}/v1/search", json={"query": query, "top_k": 5}, timeout=30).json()["results"]
    return [r["citation"]["doc_id"] for r in results]


def test_a_running_server_serves_what_citeqa_index_commits_and_an_http_add_keeps_it(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "glaciers.md").write_text("# Glaciers\n\nThe Aletsch glacier is the largest glacier in the Alps.", encoding="utf-8")
    with running_server(index_dir) as base:
        indexed = run_citeqa("index", str(folder), env=citeqa_env(index_dir))
        assert indexed.returncode == 0, indexed.stderr
        assert search_ids(base, "largest glacier in the Alps")[0] == "glaciers.md"  # no restart
        added = httpx.post(f"{base}/v1/documents", json={"id": "api/rivers.md", "text": "The Rhone flows out of a glacier."})
        assert added.status_code == 201
        listed = {d["id"] for d in httpx.get(f"{base}/v1/documents", timeout=30).json()["documents"]}
        assert listed == {SEED_ID, "glaciers.md", "api/rivers.md"}


def test_collections_answer_from_their_own_documents_only(tmp_path: Path) -> None:
    with running_server(tmp_path / "index", CITEQA_HOME=str(tmp_path / "home")) as base:
        assert httpx.post(f"{base}/v1/collections", json={"name": "handbook"}).status_code == 201
        assert httpx.post(f"{base}/v1/collections", json={"name": "handbook"}).status_code == 409
        assert httpx.post(f"{base}/v1/collections", json={"name": "../etc"}).status_code in (400, 422)
        note = {"id": "leave.md", "text": "Unused leave days expire on March 31 of the following year."}
        assert httpx.post(f"{base}/v1/collections/handbook/documents", json=note, timeout=60).status_code == 201
        scoped = httpx.post(f"{base}/v1/collections/handbook/search", json={"query": "what did Shoygu allege?"}, timeout=30)
        assert {r["citation"]["doc_id"] for r in scoped.json()["results"]} == {"leave.md"}
        assert search_ids(base, "When do unused leave days expire?")[0] == SEED_ID  # default never sees handbook
        assert httpx.post(f"{base}/v1/collections/nope/search", json={"query": "x"}).status_code == 404
        names = [c["name"] for c in httpx.get(f"{base}/v1/collections").json()["collections"]]
        assert names == ["default", "handbook"]
        assert httpx.delete(f"{base}/v1/collections/handbook").status_code == 200
        assert httpx.post(f"{base}/v1/collections/handbook/search", json={"query": "x"}).status_code == 404


def test_sigkill_during_citeqa_index_always_leaves_a_loadable_index(tmp_path: Path, embedder: Embedder) -> None:
    """20 kills at random moments of a real `citeqa index` run: the index always loads, and since a run commits once,
    every document is at the version of the last completed run, all old or all new, never mixed."""
    index_dir = tmp_path / "index"
    folder = tmp_path / "docs"
    folder.mkdir()
    names = [f"d{i}.md" for i in range(6)]

    def write_round(n: int) -> None:
        for i, name in enumerate(names):
            (folder / name).write_text(f"# Doc {i}\n\nRound {n} text for document {i} about harbours and lighthouses.")

    def rounds_in_index() -> set[int]:
        engine = Engine.open(index_dir, EngineSettings(), embedder)
        try:
            texts = {info.id: engine.document(info.id).text for info in engine.documents()}
            assert sorted(texts) == names
            for doc_id, text in texts.items():
                assert all(text[c.start : c.end] == c.text for c in engine.chunks(doc_id))
            assert engine.search("harbours and lighthouses", 3)[0].document.id in names
            return {int(re.search(r"Round (\d+)", text).group(1)) for text in texts.values()}
        finally:
            engine.close()

    env = citeqa_env(index_dir)
    write_round(0)
    assert run_citeqa("index", str(folder), env=env).returncode == 0
    committed = 0
    rng = random.Random(7)
    for n in range(1, 21):
        write_round(n)
        process = subprocess.Popen([*CITEQA, "index", str(folder)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(2.0, 9.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        rounds = rounds_in_index()
        assert rounds in ({committed}, {n})  # all old or all new, never mixed
        committed = rounds.pop()


def test_sigkill_of_the_server_during_uploads_loses_nothing_it_acknowledged(tmp_path: Path, embedder: Embedder) -> None:
    """20 kills of a real `citeqa serve` while a client uploads: the index always loads, every document the server
    acknowledged is there with exactly the text acknowledged, and no document is half-written."""
    index_dir = tmp_path / "index"
    env = citeqa_env(index_dir)
    acknowledged: dict[str, str] = {}
    rng = random.Random(11)
    for round_number in range(20):
        port = free_port()
        log = (tmp_path / f"serve-{round_number}.log").open("w")
        server = subprocess.Popen([*CITEQA, "serve", "--port", str(port)], env=env, stdout=log, stderr=log)
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, server, seconds=180)
        deadline = time.monotonic() + rng.uniform(0.3, 2.5)
        n = 0
        with httpx.Client(base_url=base, timeout=30) as client:
            while time.monotonic() < deadline:
                doc_id = f"r{round_number}/n{n}.md"
                text = f"Upload {n} of round {round_number} mentions the harbour at {rng.randrange(10_000)}."
                if client.post("/v1/documents", json={"id": doc_id, "text": text}).status_code == 201:
                    acknowledged[doc_id] = text
                n += 1
        server.send_signal(signal.SIGKILL)
        server.wait()
        log.close()
        engine = Engine.open(index_dir, EngineSettings(), embedder)
        texts = {info.id: engine.document(info.id).text for info in engine.documents()}
        assert all(texts.get(doc_id) == text for doc_id, text in acknowledged.items())
        for doc_id, text in texts.items():
            assert all(text[c.start : c.end] == c.text for c in engine.chunks(doc_id))
        engine.close()
    assert len(acknowledged) >= 20
