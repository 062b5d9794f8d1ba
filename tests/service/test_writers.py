"""Processes sharing one collection: the CLI writes while the server serves, and kill -9 never breaks it."""

import dataclasses
import random
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from citeqa.eval.bench import wait_ready
from citeqa.index.engine import Engine, EngineSettings
from citeqa.index.models.embedding import Embedder
from citeqa.index.storage.segment_writer import PreparedDocument
from citeqa.index.text.documents import make_document
from tests.conftest import SEED_ID
from tests.helpers import CITEQA, citeqa_env, free_port, run_citeqa, running_server

pytestmark = pytest.mark.slow  # real servers and commands, started and killed, many times over


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
    """20 kills at random moments of a real `citeqa index` run (aimed within the time an uncut run takes, as the merge
    test below aims its kills): the index always loads, and since a run commits once, every document is at the
    version of the last completed run, all old or all new, never mixed."""
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
    # One uncut run of the same size: how long a run takes from start to exit, to aim the kills within it (a fixed
    # window would put most kills after a fast machine's run has already committed).
    write_round(1)
    started = time.monotonic()
    assert run_citeqa("index", str(folder), env=env).returncode == 0
    run_seconds = time.monotonic() - started
    assert rounds_in_index() == {1}
    committed = 1
    rng = random.Random(7)
    before_commit = 0
    for n in range(2, 22):
        write_round(n)
        process = subprocess.Popen([*CITEQA, "index", str(folder)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, 1.2 * run_seconds))  # some land after the commit, during the exit
        process.send_signal(signal.SIGKILL)
        process.wait()
        rounds = rounds_in_index()
        assert rounds in ({committed}, {n})  # all old or all new, never mixed
        before_commit += rounds == {committed}
        committed = rounds.pop()
    print(f"kills during citeqa index: {before_commit} before the commit, {20 - before_commit} after")
    # The kills must test the run, not a process that has already finished: most land before its commit.
    assert before_commit >= 10, f"only {before_commit} of 20 kills landed before the commit (an uncut run: {run_seconds:.1f} s)"


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


def test_sigkill_during_a_merge_always_leaves_every_document_as_it_was(tmp_path: Path, embedder: Embedder) -> None:
    """20 kills of a real `citeqa compact` at random moments of its merge (24 segments of 2,400 documents, into one):
    the index always loads with all its segments or with the merged one, every live document has its own text
    and chunks, and the deleted ones stay deleted."""
    pristine = tmp_path / "pristine"
    engine = Engine.create(pristine, EngineSettings(), embedder)
    engine.background_merges = False  # the merges under test are the killed process's
    seed = engine.preparer.prepare([make_document(f"d{i}.md", dispatch(i), source=f"api/d{i}.md") for i in range(24)])
    # 24 segments of 100 documents each, one commit apiece (the vectors are the real ones of the 24 texts above).
    for segment in range(24):
        batch = [renamed(seed[(segment + k) % len(seed)], f"s{segment}/d{k}.md") for k in range(100)]
        engine.collection.write(batch, [])
    deleted = [f"s{segment}/d{k}.md" for segment in range(0, 24, 3) for k in range(0, 100, 10)]
    engine.delete(deleted)
    expected = {info.id: engine.document(info.id).text for info in engine.documents()}
    generation = engine.collection.generation()
    engine.close()
    assert len(expected) == 2400 - len(deleted)

    def compact(folder: Path) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [*CITEQA, "compact", "--index-dir", str(folder)], env=citeqa_env(folder), stdout=subprocess.PIPE, text=True
        )
        assert process.stdout.readline().startswith(f"compacting {folder}: 24 segments")
        return process

    # One uncut run: how long the merge takes (between the command's two lines), to aim the kills within it.
    reference = tmp_path / "reference"
    shutil.copytree(pristine, reference)
    process = compact(reference)
    started = time.monotonic()
    assert process.stdout.readline().startswith("merged 24 segments into one")
    merge_seconds = time.monotonic() - started
    assert process.wait(timeout=300) == 0
    assert segments_after_kill(reference, expected, embedder) == (1, generation + 1)

    rng = random.Random(13)
    outcomes = []
    for round_number in range(20):
        folder = tmp_path / f"round-{round_number}"
        shutil.copytree(pristine, folder)
        process = compact(folder)
        time.sleep(rng.uniform(0, 1.3 * merge_seconds))  # some land after the commit, during the clean-up
        process.send_signal(signal.SIGKILL)
        process.wait()
        outcome = segments_after_kill(folder, expected, embedder)
        assert outcome in ((24, generation), (1, generation + 1))  # all the old segments, or the merged one
        outcomes.append(outcome[0])
        shutil.rmtree(folder)
    print(f"kills during merges: {outcomes.count(24)} before the commit, {outcomes.count(1)} after")


def dispatch(i: int) -> str:
    words = ["harbour", "lighthouse", "ferry", "quay", "pilot", "tide", "beacon", "dock"]
    sentences = [f"The {words[(i + k) % 8]} log of dispatch {i} notes item {k} on the {words[(i * k) % 8]}." for k in range(40)]
    return f"# Dispatch {i}\n\n" + " ".join(sentences)


def renamed(prepared: PreparedDocument, doc_id: str) -> PreparedDocument:
    document = make_document(doc_id, prepared.document.text, source=f"api/{doc_id}")
    chunks = [dataclasses.replace(chunk, doc_id=doc_id) for chunk in prepared.chunks]
    return dataclasses.replace(prepared, document=document, chunks=chunks)


def segments_after_kill(folder: Path, expected: dict[str, str], embedder: Embedder) -> tuple[int, int]:
    """Open the index as a reader would and check every document; returns (segments, generation)."""
    engine = Engine.open(folder, EngineSettings(), embedder)
    try:
        texts = {info.id: engine.document(info.id).text for info in engine.documents()}
        assert texts == expected
        for doc_id in list(expected)[::97]:
            chunks = engine.chunks(doc_id)
            assert chunks and all(expected[doc_id][c.start : c.end] == c.text for c in chunks)
        top = engine.search("the beacon log of dispatch 7", 3)[0]
        assert top.document.id in expected
        stats = engine.stats()
        return stats.segments, stats.generation
    finally:
        engine.close()


def test_sigterm_during_a_long_write_stops_the_server_in_seconds_and_commits_nothing(tmp_path: Path, embedder: Embedder) -> None:
    """A 600 KB document takes minutes to embed here. SIGTERM while it embeds: the write ends before its commit with
    a 503 saying so, the server exits within the wait below, and the index is as it was."""
    index_dir = tmp_path / "index"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with (tmp_path / "serve.log").open("w") as log:
        server = subprocess.Popen([*CITEQA, "serve", "--port", str(port)], env=citeqa_env(index_dir), stdout=log, stderr=log)
        try:
            wait_ready(base, server, seconds=180)
            with httpx.Client(base_url=base, timeout=30) as client:
                embedded_before = encoder_texts(client)
                long_text = "# Long log\n\n" + " ".join(dispatch(i) for i in range(260))
                assert len(long_text) > 600_000
                reply: list[httpx.Response] = []
                writer = threading.Thread(
                    target=lambda: reply.append(
                        httpx.post(f"{base}/v1/documents", json={"id": "long.md", "text": long_text}, timeout=600)
                    )
                )
                writer.start()
                deadline = time.monotonic() + 120
                while encoder_texts(client) == embedded_before:  # wait until the write is embedding
                    assert time.monotonic() < deadline and writer.is_alive()
                    time.sleep(0.2)
            asked = time.monotonic()
            server.send_signal(signal.SIGTERM)
            # A clean stop, then the signal's own exit status (uvicorn re-raises it once shut down, as Unix expects).
            assert server.wait(timeout=30) == -signal.SIGTERM
            assert "Application shutdown complete" in (tmp_path / "serve.log").read_text()
            print(f"the server stopped {time.monotonic() - asked:.1f}s after SIGTERM, during a write")
            writer.join(timeout=30)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    (response,) = reply
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "server_stopping" and "nothing" in response.json()["error"]["message"]
    engine = Engine.open(index_dir, EngineSettings(), embedder)
    try:
        assert [info.id for info in engine.documents()] == [SEED_ID]
        assert engine.stats().generation == 1  # the seed build's commit, and nothing after it
    finally:
        engine.close()


def encoder_texts(client: httpx.Client) -> float:
    found = re.search(r"^citeqa_encoder_texts_total (\S+)$", client.get("/metrics").text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0
