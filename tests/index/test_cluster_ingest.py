"""Ingestion on a real Ray cluster (ray.cluster_utils.Cluster: a head and two worker nodes on this machine, every
process on 127.0.0.1, dashboard and usage statistics off), against the same folder built in-process: `citeqa index
--ray` and the upload jobs of a `citeqa serve` with a Ray address, with worker nodes and drivers killed mid-job."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

# Read when ray is imported, here and in every process it starts: no usage statistics; and a head on 127.0.0.1 is
# reached on 127.0.0.1 (index/cluster/connect.py says why).
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import ray
from ray.cluster_utils import Cluster

from citeqa.home import bundled
from citeqa.index.cluster.connect import ClusterError, check_address, connect
from citeqa.index.cluster.ingest import ClusterJob, ingest_files_on_cluster
from citeqa.index.engine import Engine
from citeqa.index.storage.collection import INCOMING_PREFIX, SEGMENTS_DIR
from citeqa.index.writing.ingest import IncomingFile
from citeqa.service.indexing import build_from_corpus
from citeqa.service.library import UPLOAD_SOURCE
from citeqa.settings import Settings
from tests.conftest import SEED_ID
from tests.files import report_docx, report_pdf, windows_executable
from tests.helpers import free_port, server_group

pytestmark = [pytest.mark.slow, pytest.mark.ray]

NODE = {"node_ip_address": "127.0.0.1", "object_store_memory": 250 * 1024 * 1024}
# A lost node is noticed after about 1.5 s rather than Ray's default 15 (health checks every 3 s, 5 missed): the
# kill tests below wait for that notice once per kill.
FAST_FAILURE_DETECTION = {"health_check_period_ms": 500, "health_check_timeout_ms": 500, "health_check_failure_threshold": 3}
QUESTIONS = [json.loads(line)["question"] for line in bundled("eval").joinpath("gold.jsonl").read_text().splitlines()][:20]


def write_corpus(folder: Path, copies: int) -> Path:
    """The seed document, its paragraphs as documents of their own (`copies` rounds, each with its own note), a PDF,
    a Word file, and a file that fails to parse."""
    folder.mkdir(parents=True)
    seed = next(bundled("seeds").glob("*.txt"))
    text = seed.read_text(encoding="utf-8")
    (folder / seed.name).write_text(text, encoding="utf-8")
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    for round_ in range(copies):
        for i, paragraph in enumerate(paragraphs):
            note = f"Note {round_}-{i}: filed under round {round_}.\n\n"
            (folder / f"part-{round_:02d}-{i:02d}.md").write_text(f"# Part {round_}.{i}\n\n{note}{paragraph}\n", encoding="utf-8")
    (folder / "report.pdf").write_bytes(report_pdf())
    (folder / "report.docx").write_bytes(report_docx())
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7 not really a PDF")
    return folder


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # The head schedules nothing: work lands on the workers.
    head = {**NODE, "num_cpus": 0, "include_dashboard": False, "_system_config": FAST_FAILURE_DETECTION}
    test_cluster = Cluster(initialize_head=True, head_node_args=head)
    for _ in range(2):
        test_cluster.add_node(num_cpus=1, **NODE)
    test_cluster.wait_for_nodes()
    try:
        yield test_cluster
    finally:
        ray.shutdown()
        test_cluster.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("cluster") / "corpus", copies=4)


@pytest.fixture(scope="module")
def local_engine(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path_factory.mktemp("local") / "index")
    engine = Engine.create(settings.index_dir, settings.engine_settings())
    build_from_corpus(settings, engine=engine)
    yield engine
    engine.close()


def build_on_ray(corpus: Path, index_dir: Path, address: str) -> tuple[Engine, object]:
    settings = Settings(corpus_dir=corpus, index_dir=index_dir, ray_address=address)
    engine = Engine.create(index_dir, settings.engine_settings())
    return engine, build_from_corpus(settings, engine=engine)


def contents(engine: Engine) -> list[tuple]:
    return [(d.id, d.sha256, d.chunks, d.source, engine.document(d.id).text) for d in engine.documents()]


def rankings(engine: Engine) -> list[list[tuple]]:
    found = []
    for question in QUESTIONS:
        results = engine.search(question, top_k=10)
        found.append([(r.chunk.doc_id, r.chunk.ordinal, r.quote.start, r.quote.end) for r in results])
    return found


def assert_nothing_staged(index_dir: Path) -> None:
    assert not list(index_dir.glob(f"*{INCOMING_PREFIX}*")), "an incoming area was left behind"
    assert not list((index_dir / SEGMENTS_DIR).glob(".tmp-*")), "a staged segment was left behind"


def workers_busy() -> bool:
    """Whether a job's actors hold the cluster's worker CPUs now (this process must be a driver of the cluster)."""
    return ray.is_initialized() and ray.available_resources().get("CPU", 0) < ray.cluster_resources().get("CPU", 0)


def wait_until_workers_busy(running: Callable[[], bool], seconds: float = 120) -> float:
    """Wait until a job's actors are at work on the cluster: the moment (time.monotonic) they were seen."""
    deadline = time.monotonic() + seconds
    while not workers_busy():
        assert running() and time.monotonic() < deadline, "the job never reached the cluster's workers"
        time.sleep(0.05)
    return time.monotonic()


@pytest.fixture(scope="module")
def ray_build(cluster: Cluster, corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, object, float]]:
    """The corpus built through the cluster once, with how long its actors were at work (the kill tests aim by it)."""
    outcome: dict[str, object] = {}
    index_dir = tmp_path_factory.mktemp("ray") / "index"

    def build() -> None:
        outcome["engine"], outcome["summary"] = build_on_ray(corpus, index_dir, cluster.address)

    job = threading.Thread(target=build)
    job.start()
    busy_from = wait_until_workers_busy(job.is_alive)
    job.join()
    engine = outcome["engine"]
    assert isinstance(engine, Engine)
    yield engine, outcome["summary"], time.monotonic() - busy_from
    engine.close()


def test_a_ray_build_is_the_in_process_build(
    cluster: Cluster, corpus: Path, local_engine: Engine, ray_build: tuple[Engine, object, float]
) -> None:
    engine, summary, _ = ray_build
    assert contents(engine) == contents(local_engine)
    assert [s.source for s in summary.skipped] == [str(corpus / "broken.pdf")]
    assert rankings(engine) == rankings(local_engine)
    assert engine.collection.manifest.config == local_engine.collection.manifest.config  # the encoder's hash holds
    assert engine.stats().generation == 1, "everything attached in one commit"
    assert_nothing_staged(engine.collection.folder)
    # Run again: every document is unchanged, nothing is embedded or committed.
    again = build_from_corpus(
        Settings(corpus_dir=corpus, index_dir=engine.collection.folder, ray_address=cluster.address), engine=engine
    )
    assert (len(again.unchanged), again.written) == (len(contents(local_engine)), False)
    assert engine.stats().generation == 1


def test_a_worker_node_killed_at_5_random_moments_still_commits_each_document_once(
    cluster: Cluster, corpus: Path, local_engine: Engine, ray_build: tuple[Engine, object, float], tmp_path: Path
) -> None:
    rng = random.Random(28)
    on_cluster_seconds = ray_build[2]  # from the actors' start to the job's end, uncut
    mid_job = runs = 0
    # A run beside other tests (two test processes) can be quicker than the uncut one measured, and a kill aimed by
    # it then lands after the actors' work: such a run is still checked, but another is drawn, up to 8 runs in all.
    while mid_job < 5 and runs < 8:
        run, runs = runs, runs + 1
        victim = rng.choice(sorted(cluster.worker_nodes, key=lambda node: node.unique_id))
        outcome: dict[str, object] = {}
        index_dir = tmp_path / f"index-{run}"

        def build(index_dir: Path = index_dir, outcome: dict[str, object] = outcome) -> None:
            try:
                outcome["engine"], outcome["summary"] = build_on_ray(corpus, index_dir, cluster.address)
            except BaseException as exc:  # reported by the assertion below
                outcome["error"] = exc

        job = threading.Thread(target=build)
        job.start()
        wait_until_workers_busy(job.is_alive)
        time.sleep(rng.uniform(0.05, 0.8) * on_cluster_seconds)  # a random moment of the actors' work
        mid_job += job.is_alive() and workers_busy()
        cluster.remove_node(victim, allow_graceful=False)
        job.join(timeout=240)
        cluster.add_node(num_cpus=1, **NODE)  # back to two workers for the next run
        cluster.wait_for_nodes()
        assert "error" not in outcome, outcome.get("error")
        engine = outcome["engine"]
        assert isinstance(engine, Engine)
        try:
            assert contents(engine) == contents(local_engine), f"run {run}"
            assert engine.stats().generation == 1, "one commit"
            ids = [row.id for row in engine.collection.documents()]
            assert len(ids) == len(set(ids)) == len(contents(local_engine))
            assert_nothing_staged(index_dir)
        finally:
            engine.close()
    print(f"{mid_job} of {runs} kills landed while the job's actors were at work (uncut: {on_cluster_seconds:.1f} s)")
    assert mid_job == 5, f"only {mid_job} of {runs} kills landed while the job's actors were at work"


def test_a_failed_job_leaves_the_collection_as_it_was(cluster: Cluster, tmp_path: Path) -> None:
    # A folder that vanishes between the listing and the commit is a job that fails; a collection it was to write
    # into stays empty, its incoming area removed.
    settings = Settings(corpus_dir=tmp_path / "missing", index_dir=tmp_path / "index", ray_address=cluster.address)
    engine = Engine.create(settings.index_dir, settings.engine_settings())
    try:
        with pytest.raises(Exception, match="does not exist"):
            build_from_corpus(settings, engine=engine)
        assert engine.stats().documents == 0
        assert_nothing_staged(tmp_path / "index")
    finally:
        engine.close()


def test_a_driver_killed_mid_job_leaves_the_collection_unchanged(cluster: Cluster, corpus: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    command = [sys.executable, "-m", "citeqa", "index", str(corpus), "--index-dir", str(index_dir), "--ray", cluster.address]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (index_dir / "manifest.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(4.0)  # the job is under way on the cluster (a trigger, not a measurement)
        assert driver.poll() is None, "the job ended before it could be killed"
    finally:
        driver.kill()
        driver.wait()
    engine = Engine.open(index_dir, Settings(index_dir=index_dir).engine_settings())
    try:
        assert (engine.stats().documents, engine.stats().generation) == (0, 0), "nothing was committed"
        engine.collection.write([], [])  # the next write removes whatever the killed job left
        assert_nothing_staged(index_dir)
    finally:
        engine.close()


def incoming(folder: Path, files: dict[str, bytes]) -> list[IncomingFile]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return [IncomingFile(folder / name, name, name, len(data)) for name, data in files.items()]


def test_an_upload_on_the_cluster_reports_each_file_as_an_upload_in_process_does(cluster: Cluster, tmp_path: Path) -> None:
    """Outcome by outcome, field by field: added, updated, unchanged, failed (with the parser's reason, and whether
    the kind is one citeqa does not read), media types; then the same documents and hashes in both collections."""
    first = {
        "note.md": b"# Note\n\nThe ferry to the island leaves at seven from pier four.",
        "report.pdf": report_pdf(),
        "broken.pdf": b"%PDF-1.7 not really a PDF",
        "tool.exe": windows_executable(),
    }
    second = {"note.md": b"# Note\n\nThe ferry to the island now leaves at eight from pier two.", "report.pdf": report_pdf()}
    settings = Settings(index_dir=tmp_path / "local")
    local = Engine.create(tmp_path / "local", settings.engine_settings())
    on_cluster = Engine.create(tmp_path / "cluster", settings.engine_settings())
    job = ClusterJob(cluster.address)
    try:
        for round_, files in enumerate((first, second)):
            expected = local.ingest_files(incoming(tmp_path / f"a{round_}", files), UPLOAD_SOURCE)
            found = ingest_files_on_cluster(on_cluster, incoming(tmp_path / f"b{round_}", files), UPLOAD_SOURCE, job)
            assert found.outcomes == expected.outcomes
        assert [o.status for o in found.outcomes] == ["updated", "unchanged"]
        assert {(d.id, d.sha256) for d in on_cluster.documents()} == {(d.id, d.sha256) for d in local.documents()}
    finally:
        local.close()
        on_cluster.close()


def server_on_cluster(home: Path, address: str, log_path: Path) -> AbstractContextManager[tuple[str, subprocess.Popen[bytes]]]:
    """`citeqa serve` whose upload jobs run on the cluster at `address`, in a process group of its own."""
    return server_group(home / "collections" / "default", log_path, CITEQA_HOME=str(home), CITEQA_RAY_ADDRESS=address)


def wait_for_job(base: str, job_id: str, until: Callable[[dict], bool], seconds: float = 240) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        job = httpx.get(f"{base}/v1/jobs/{job_id}", timeout=30).json()
        if until(job) or job["state"] in ("done", "failed"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def test_an_upload_job_on_the_cluster_resumes_after_its_server_is_killed_and_commits_once(
    cluster: Cluster, corpus: Path, local_engine: Engine, tmp_path: Path
) -> None:
    home, log_path = tmp_path / "home", tmp_path / "serve.log"
    index_dir = home / "collections" / "default"
    files = {path.name: path.read_bytes() for path in sorted(corpus.iterdir())}
    form = [("files", (name, data, "application/octet-stream")) for name, data in files.items()]
    with server_on_cluster(home, cluster.address, log_path) as (base, server):
        reply = httpx.post(f"{base}/v1/documents?wait=false", files=form, timeout=60)
        assert reply.status_code == 202, reply.text
        job_id = reply.json()["job"]["id"]
        on_cluster = wait_for_job(base, job_id, lambda job: all(f["stage"] == "embedding" for f in job["files"]))
        assert on_cluster["state"] == "running", on_cluster
        connect(cluster.address)  # this process watches the cluster's CPUs, as a driver of its own
        wait_until_workers_busy(lambda: server.poll() is None)  # the server's job is on the cluster's workers
        time.sleep(random.Random(28).uniform(0.0, 1.0))
        assert workers_busy() and server.poll() is None
        os.killpg(server.pid, signal.SIGKILL)  # the server and its driver process, mid-job
        server.wait()
    # The collection is as it was: the seed document only, nothing staged in view.
    engine = Engine.open(index_dir, Settings(index_dir=index_dir).engine_settings())
    try:
        assert [d.id for d in engine.documents()] == [SEED_ID], "the killed job committed nothing"
    finally:
        engine.close()
    # Restarted, the server finds the job in its store and runs it again, to one commit.
    with server_on_cluster(home, cluster.address, log_path) as (base, _):
        job = wait_for_job(base, job_id, lambda job: False)
        assert (job["state"], job["attempts"]) == ("done", 2), job
        statuses = {f["filename"]: f["status"] for f in job["files"]}
        assert statuses.pop("broken.pdf") == "failed"
        assert statuses.pop(SEED_ID) == "unchanged", "the seed document was there already, with the same text"
        assert set(statuses.values()) == {"added"} and set(statuses) == set(files) - {"broken.pdf", SEED_ID}
        listed = httpx.get(f"{base}/v1/documents?limit=1000", timeout=30).json()["documents"]
        assert sorted(d["id"] for d in listed) == sorted(set(files) - {"broken.pdf"}), "each document once"
    engine = Engine.open(index_dir, Settings(index_dir=index_dir).engine_settings())
    try:
        expected = {d.id: d.sha256 for d in local_engine.documents()}
        assert {d.id: d.sha256 for d in engine.documents()} == expected, "the same texts as in-process"
        engine.collection.write([], [])  # a write's start removes what a killed job left; nothing else is there
        assert_nothing_staged(index_dir)
    finally:
        engine.close()


def test_an_upload_job_whose_cluster_cannot_be_reached_fails_with_the_reason_after_its_attempts(
    corpus: Path, tmp_path: Path
) -> None:
    home, log_path = tmp_path / "home", tmp_path / "serve.log"
    index_dir = home / "collections" / "default"
    build_from_corpus(Settings(corpus_dir=corpus, index_dir=index_dir))  # built here: the server only opens it
    nowhere = f"127.0.0.1:{free_port()}"  # nothing listens there
    with server_on_cluster(home, nowhere, log_path) as (base, _):
        form = [("files", ("late.md", b"# Late\n\nA note that arrives after the cluster went away.", "text/markdown"))]
        reply = httpx.post(f"{base}/v1/documents?wait=false", files=form, timeout=60)
        assert reply.status_code == 202, reply.text
        job = wait_for_job(base, reply.json()["job"]["id"], lambda job: False, seconds=120)
        assert (job["state"], job["attempts"]) == ("failed", 3), job
        assert f"no Ray cluster at {nowhere}" in job["error"], job["error"]
        assert httpx.get(f"{base}/v1/documents/late.md", timeout=30).status_code == 404


def test_bad_addresses_are_refused_with_the_reason() -> None:
    for address in ("ray://127.0.0.1:10001", "nowhere", "127.0.0.1:0"):
        with pytest.raises(ClusterError):
            check_address(address)


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _sockets_of(pids: set[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    return inodes


LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


def test_every_ray_process_listens_and_connects_on_loopback_only(cluster: Cluster) -> None:
    pids = _descendants(os.getpid()) | {os.getpid()}
    inodes = _sockets_of(pids)
    seen = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if inode not in inodes:
                continue
            seen += 1
            assert local.split(":")[0] in LOOPBACK, f"a Ray process is bound to {local} ({table})"
            if state != "0A":  # not listening: a connection, whose far end must be loopback too
                assert remote.split(":")[0] in LOOPBACK, f"a Ray process is connected to {remote} ({table})"
    assert seen > 5, "the cluster's sockets were found"
