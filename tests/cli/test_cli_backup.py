"""`citeqa backup` and `citeqa restore` as real subprocesses: refusals with their reasons, a backup taken while a
real server keeps writing restores to exactly the documents of the generation it names, and a restored copy served
as a read replica answers as the original does."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import citeqa_env, run_citeqa, running_server

QUERIES = ["lighthouse keeper", "glacier retreat", "Geneva summit", "harbour repainted", "what did Shoygu allege?"]
WRITE_SECONDS = 60.0  # how long the writer keeps writing while backups are taken
BACKUP_AT = (15.0, 30.0, 45.0)  # seconds into the writes


def home_env(home: Path, **extra: str) -> dict[str, str]:
    """A data home of its own, its default collection inside it."""
    return citeqa_env(home / "collections" / "default", CITEQA_HOME=str(home), **extra)


def write_notes(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "harbour.md").write_text("# Harbour\n\nThe lighthouse at the harbour was repainted. The keeper logs ships.")
    (folder / "glacier.md").write_text("# Glacier\n\nThe glacier retreated forty metres. Teams measured it each spring.")
    (folder / "summit.md").write_text("# Summit\n\nThe summit was moved to Geneva. Delegates came by train.")
    return folder


def catalog_state(collection: Path) -> tuple[int, dict[str, str]]:
    """Generation and live documents (id -> sha256), read from a collection's (or a backup's) catalog file."""
    with contextlib.closing(sqlite3.connect(f"file:{collection / 'catalog.sqlite'}?mode=ro", uri=True)) as db:
        generation = int(db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
        return generation, dict(db.execute("SELECT id, sha256 FROM documents").fetchall())


def test_backup_and_restore_commands_refuse_with_reasons(tmp_path: Path) -> None:
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    added = run_citeqa("add", *map(str, sorted(write_notes(tmp_path / "notes").iterdir())), env=home_env(home_a))
    assert added.returncode == 0, added.stderr

    backup = run_citeqa("backup", str(tmp_path / "backups"), env=home_env(home_a))
    assert backup.returncode == 0, backup.stderr
    assert re.search(r"backed up default at generation \d+: 3 documents", backup.stdout), backup.stdout
    info = json.loads((tmp_path / "backups" / "default" / "backup.json").read_text())
    assert info["collection"] == "default" and info["documents"] == 3

    again = run_citeqa("backup", str(tmp_path / "backups"), env=home_env(home_a))
    assert again.returncode == 2 and "exists already" in again.stderr
    unknown = run_citeqa("backup", str(tmp_path / "other"), "--collection", "Bad Name", env=home_env(home_a))
    assert unknown.returncode == 2 and "invalid collection name" in unknown.stderr
    missing = run_citeqa("backup", str(tmp_path / "other"), "--collection", "absent", env=home_env(home_a))
    assert missing.returncode == 2 and "no index" in missing.stderr

    existing = run_citeqa("restore", str(tmp_path / "backups"), env=home_env(home_a))
    assert existing.returncode == 2 and "--replace" in existing.stderr
    mismatched = run_citeqa("restore", str(tmp_path / "backups"), env=home_env(home_b, CITEQA_CHUNK_SIZE="700"))
    assert mismatched.returncode == 2 and "other settings" in mismatched.stderr and "chunk_size" in mismatched.stderr
    assert not (home_b / "collections" / "default").exists()
    not_backup = run_citeqa("restore", str(tmp_path / "notes"), env=home_env(home_b))
    assert not_backup.returncode == 2 and "no citeqa backup" in not_backup.stderr

    # One collection's backup restored under another name, beside the default.
    named = run_citeqa("restore", str(tmp_path / "backups" / "default"), "--collection", "copy", env=home_env(home_a))
    assert named.returncode == 0, named.stderr
    assert catalog_state(home_a / "collections" / "copy") == catalog_state(home_a / "collections" / "default")
    replaced = run_citeqa("restore", str(tmp_path / "backups"), "--replace", env=home_env(home_a))
    assert replaced.returncode == 0, replaced.stderr
    assert "restart any server" in replaced.stderr
    # Every collection of the home: both, each under its own name.
    both = run_citeqa("backup", str(tmp_path / "all"), env=home_env(home_a))
    assert both.returncode == 0, both.stderr
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["copy", "default"]


def search(base: str, query: str) -> list[tuple[str, str]]:
    """Top-10 (chunk id, quote)."""
    reply = httpx.post(f"{base}/v1/search", json={"query": query, "top_k": 10}, timeout=60).raise_for_status().json()
    return [(r["citation"]["chunk_id"], r["citation"]["quote"]) for r in reply["results"]]


@pytest.mark.slow  # two real servers
def test_a_restored_backup_serves_as_a_read_replica(tmp_path: Path) -> None:
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    indexed = run_citeqa("index", str(write_notes(tmp_path / "notes")), env=home_env(home_a))
    assert indexed.returncode == 0, indexed.stderr
    assert run_citeqa("backup", str(tmp_path / "backups"), env=home_env(home_a)).returncode == 0
    restored = run_citeqa("restore", str(tmp_path / "backups"), env=home_env(home_b))
    assert restored.returncode == 0, restored.stderr
    with (
        running_server(home_a / "collections" / "default", CITEQA_HOME=str(home_a)) as primary,
        running_server(home_b / "collections" / "default", CITEQA_HOME=str(home_b)) as replica,
    ):
        for query in QUERIES:
            assert search(replica, query) == search(primary, query)


@pytest.mark.slow  # a real server written to for a minute
def test_a_backup_taken_while_a_server_writes_restores_the_generation_it_names(tmp_path: Path) -> None:
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    ops: list[tuple[str, str | None]] = []  # (id, sha256 after the op, or None for a delete), in commit order
    sent = [0]  # operations sent so far (each is acknowledged before the next is sent)
    errors: list[str] = []
    stop = threading.Event()

    (home_a / "collections").mkdir(parents=True)  # the server builds the default collection from the seeds
    server = running_server(home_a / "collections" / "default", CITEQA_HOME=str(home_a))
    with server as base, httpx.Client(base_url=base, timeout=120) as client:
        initial = {d["id"]: d["sha256"] for d in client.get("/v1/documents").json()["documents"]}

        def writer() -> None:
            """Adds, replaces (every 5th) and deletes (every 7th), one at a time, until stopped."""
            n = 0
            live: list[str] = []
            while not stop.is_set():
                n += 1
                if n % 7 == 0 and live:
                    doc_id = live.pop(0)
                    sent[0] += 1
                    reply = client.delete(f"/v1/documents/{doc_id}")
                    result: tuple[str, str | None] = (doc_id, None)
                else:
                    doc_id = live[-3] if n % 5 == 0 and len(live) >= 3 else f"w-{n:05d}"
                    text = f"# Writer note {n}\n\nThe lighthouse keeper counted {n} ships, written as operation {n}."
                    sent[0] += 1
                    reply = client.post("/v1/documents", json={"id": doc_id, "text": text})
                    result = (doc_id, reply.json()["document"]["sha256"] if reply.status_code < 300 else None)
                    if doc_id not in live:
                        live.append(doc_id)
                if reply.status_code >= 300:
                    errors.append(f"{reply.status_code}: {reply.text[:200]}")
                    return
                ops.append(result)

        thread = threading.Thread(target=writer)
        started = time.monotonic()
        thread.start()
        windows = []  # per backup: (operations acknowledged before it began, operations sent when it ended)
        try:
            for k, at in enumerate(BACKUP_AT):
                time.sleep(max(0.0, started + at - time.monotonic()))
                before = len(ops)
                taken = run_citeqa("backup", str(tmp_path / f"backup-{k}"), env=home_env(home_a))
                assert taken.returncode == 0, taken.stderr
                windows.append((before, sent[0]))
            time.sleep(max(0.0, started + WRITE_SECONDS - time.monotonic()))
        finally:
            stop.set()
            thread.join(timeout=120)
    assert not errors, errors
    assert len(ops) > windows[-1][1], "the writer kept writing after the last backup"

    def after(count: int) -> dict[str, str]:
        """The documents once the first `count` operations were committed."""
        state = dict(initial)
        for doc_id, sha in ops[:count]:
            if sha is None:
                state.pop(doc_id, None)
            else:
                state[doc_id] = sha
        return state

    for k, (before, sent_by_end) in enumerate(windows):
        backup = tmp_path / f"backup-{k}" / "default"
        generation, documents = catalog_state(backup)
        assert json.loads((backup / "backup.json").read_text())["generation"] == generation
        matches = [count for count in range(before, sent_by_end + 1) if after(count) == documents]
        assert matches, f"backup {k} is not the state after any prefix of the writes in its window"

    # The last backup, restored into another home, is that generation exactly.
    last = tmp_path / f"backup-{len(BACKUP_AT) - 1}"
    restored = run_citeqa("restore", str(last), env=home_env(home_b))
    assert restored.returncode == 0, restored.stderr
    assert catalog_state(home_b / "collections" / "default") == catalog_state(last / "default")
