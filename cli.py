"""The `citeqa` command: index, serve, ask, search (and eval, from the eval package)."""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import sys
import textwrap
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from citeqa import __version__
from citeqa.index.cluster.connect import ClusterError, preflight
from citeqa.index.ranking.search import SearchMode
from citeqa.index.storage.backup import BackupError
from citeqa.index.storage.manifest import IndexMismatchError, IndexMissingError
from citeqa.index.storage.write_lock import WriterBusyError
from citeqa.index.text.documents import DocumentError
from citeqa.service.keys import KeyConfigError
from citeqa.settings import Settings

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

    from citeqa.index.engine import Engine

USER_ERRORS = (
    DocumentError,
    IndexMismatchError,
    IndexMissingError,
    FileNotFoundError,
    KeyConfigError,
    WriterBusyError,
    BackupError,
    ClusterError,
)


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}  # keyword arguments of Settings
    if getattr(args, "path", None):
        overrides["corpus_dir"] = Path(args.path)
    if getattr(args, "index_dir", None):
        overrides["index_dir"] = Path(args.index_dir)
    if getattr(args, "ray", None):
        overrides["ray_address"] = args.ray
    return Settings(**overrides)


def cmd_index(args: argparse.Namespace) -> int:
    from citeqa.console import TerminalProgress
    from citeqa.service.indexing import build_from_corpus

    settings = _settings(args)
    summary = build_from_corpus(settings, rebuild=args.rebuild, progress=TerminalProgress())
    print(f"indexed {args.path or settings.corpus_dir} -> {args.index_dir or settings.index_dir}")
    print(
        f"documents: {summary.documents} ({len(summary.added)} added, {len(summary.updated)} updated, "
        f"{len(summary.unchanged)} unchanged, {len(summary.removed)} removed)"
    )
    print(f"chunks: {summary.chunks}")
    print(f"skipped: {len(summary.skipped)}")
    for skipped in summary.skipped:
        print(f"  {skipped.source}: {skipped.reason}")
    print(f"time: {summary.seconds:.1f}s" + ("" if summary.written else " (nothing changed; index left as it was)"))
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    """Add or replace files in the collection, in one commit; each file's id is its name."""
    from citeqa.console import TerminalProgress
    from citeqa.index.engine import Engine
    from citeqa.index.text.documents import check_document_id
    from citeqa.index.writing.ingest import IncomingFile

    settings = _settings(args)
    assert settings.index_dir is not None  # Settings puts it in the data home when unset
    incoming = []
    for name in args.files:
        path = Path(name)
        refused = None if path.is_file() else ("is a folder: use `citeqa index`" if path.is_dir() else "no such file")
        doc_id: str | None = path.name
        try:
            check_document_id(path.name)
        except DocumentError as exc:
            refused, doc_id = refused or f"file name refused: {exc}", None
        size = path.stat().st_size if refused is None else 0
        incoming.append(IncomingFile(path, name, doc_id, size, refused=refused))
    # The one way to open a collection for writing: the embedder is the configured one (model, encoder, ONNX folder).
    engine = Engine.create(settings.index_dir, settings.engine_settings())
    engine.background_merges = False  # merge before exiting, not in a thread the exit would cut short
    try:
        report = engine.ingest_files(incoming, "add/", settings.parse_limits(), TerminalProgress())
        engine.settle()
    finally:
        engine.close()
    print(f"added to {settings.index_dir}")
    for outcome in report.outcomes:
        detail = f": {outcome.reason}" if outcome.reason else ""
        print(f"  {outcome.filename}: {outcome.status}{detail}")
    counts = ", ".join(f"{report.count(status)} {status}" for status in ("added", "updated", "unchanged", "failed"))
    print(f"files: {len(report.outcomes)} ({counts})")
    return 1 if report.count("failed") else 0


def _say(line: str) -> None:
    """A line for the person at the terminal: stderr, so stdout keeps only what a script may read."""
    print(line, file=sys.stderr)


def _prepare_index(settings: Settings) -> tuple[int, int] | str:
    """Open the index, building it first if there is none: its (documents, chunks), or why it cannot be served."""
    from citeqa.console import TerminalProgress
    from citeqa.service.indexing import open_or_build

    try:
        engine = open_or_build(settings, TerminalProgress(), announce=_say)
    except USER_ERRORS as exc:  # a message crosses back from another process more surely than an exception
        return str(exc)
    stats = engine.stats()
    engine.close()
    return stats.documents, stats.chunks


def cmd_serve(args: argparse.Namespace) -> int:
    from citeqa.console import TerminalProgress
    from citeqa.service.app import create_app
    from citeqa.service.indexing import open_or_build

    settings = _settings(args)
    settings.host = args.host or settings.host
    settings.port = args.port or settings.port
    settings.insecure = args.insecure or settings.insecure
    settings.workers = args.workers or settings.workers
    # Before the model loads: a refusal should be immediate.
    from citeqa.service.surface import refuse_to_serve, serving_notes

    reason = refuse_to_serve(settings)
    if reason:
        print(f"citeqa: error: {reason}", file=sys.stderr)
        return 2
    if settings.ray_address:
        preflight(settings.ray_address, settings.encoder)  # upload jobs run on the cluster: refuse a bad address now
    for note in serving_notes(settings):
        print(f"citeqa: {note}", file=sys.stderr)
    workers = settings.server_workers()
    # A mismatched index fails here, with a clear message; workers only open what was built here.
    if workers == 1:
        engine = open_or_build(settings, TerminalProgress(), announce=_say)
        stats = engine.stats()
        counts = f"{stats.documents} documents, {stats.chunks} chunks"
    else:
        # In a process of its own: the supervisor of the workers would otherwise keep the model it loaded to build
        # or check the index for as long as it runs, and never use it (299 MiB of RSS against 139, on the seed index).
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            prepared = pool.submit(_prepare_index, settings).result()
        if isinstance(prepared, str):
            print(f"citeqa: error: {prepared}", file=sys.stderr)
            return 2
        counts = f"{prepared[0]} documents, {prepared[1]} chunks"
    print(
        f"citeqa: {counts}; {workers} worker{'s' * (workers > 1)}; chat page http://{settings.host}:{settings.port}/ ,"
        " API docs at /docs",
        file=sys.stderr,
    )
    from citeqa.index.models.onnx_encoder import available_cores
    from citeqa.service.observability import configure_access_log
    from citeqa.service.server import serve, serve_workers

    configure_access_log()  # one JSON line per request replaces uvicorn's access log (which prints query strings)
    if workers == 1:
        serve(create_app(settings, engine), settings.host, settings.port)
        return 0
    if settings.threads is None:
        # The cores shared out: two workers of one thread each served 10% more requests under load than two of two
        # threads each on two cores (docs/benchmarks.md, "Workers"); OpenMP (faiss) takes the same share.
        settings.threads = max(1, available_cores() // workers)
        os.environ.setdefault("OMP_NUM_THREADS", str(settings.threads))
    settings.export_to_environment()  # a worker is a fresh process: it reads its settings from there
    serve_workers(settings.host, settings.port, workers)
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from citeqa.service.keys import Role, add_key, read_keys_file, remove_keys

    path = Path(args.file) if args.file else _settings(args).api_keys_file
    assert path is not None  # Settings puts it in the data home when unset
    if args.action == "add":
        key = add_key(path, Role.parse(args.role), args.note or "")
        print(key)  # alone on stdout, so a script can capture it
        print(f"citeqa: added a {args.role} key to {path}; only its sha256 is stored, so copy it now", file=sys.stderr)
    elif args.action == "list":
        for stored in read_keys_file(path) if path.exists() else []:
            print(f"{stored.role.label:5}  {stored.digest[:16]}…  {stored.note}")
    else:
        removed = remove_keys(path, args.hash)
        print(f"citeqa: removed {removed} key(s) from {path}", file=sys.stderr)
        return 0 if removed else 1
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from citeqa.console import TerminalProgress
    from citeqa.service.mcp_stdio import serve_stdio

    serve_stdio(_settings(args), TerminalProgress(), announce=_say)
    return 0


def _open_engine(args: argparse.Namespace) -> Engine:
    from citeqa.service.indexing import open_or_build

    return open_or_build(_settings(args))


def cmd_ask(args: argparse.Namespace) -> int:
    engine = _open_engine(args)
    answer = engine.ask(args.question, args.top_k)
    print(textwrap.fill(answer.composed.text, width=100))
    for n, passage in enumerate(answer.cited, start=1):
        quote = passage.quote
        print(f"\n[{n}] {passage.document.title}")
        print(f"    {passage.document.id} characters {quote.start}-{quote.end}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    engine = _open_engine(args)
    for passage in engine.search(args.query, args.top_k, mode=SearchMode(args.mode) if args.mode else None):
        hit, quote, chunk_id = passage.hit, passage.quote, passage.chunk.chunk_id
        print(f"{passage.rank}. score {hit.score:.3f} (dense {hit.dense:.3f}, lexical {hit.lexical:.2f})  {chunk_id}")
        print(textwrap.indent(textwrap.fill(f"“{quote.text}” [{quote.start}:{quote.end}]", width=96), "    "))
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    """Merge every segment into one. Background merges keep segments few; this is for before a backup or a copy."""
    import time

    from citeqa.index.engine import Engine

    settings = _settings(args)
    assert settings.index_dir is not None  # Settings fills it in (_index_in_home)
    engine = Engine.open(settings.index_dir, settings.engine_settings())
    try:
        before = engine.stats().segments
        print(f"compacting {settings.index_dir}: {before} segment{'' if before == 1 else 's'}", flush=True)
        started = time.perf_counter()
        merged = engine.merge(force=True)
        seconds = time.perf_counter() - started
        print(f"merged {merged} segments into one in {seconds:.1f}s" if merged else "nothing to merge")
    finally:
        engine.close()
    return 0


def _collection_folder(settings: Settings, name: str) -> Path:
    from citeqa.service.collections import collection_folder

    try:
        return collection_folder(settings, name)
    except ValueError as exc:  # not a valid collection name
        raise BackupError(str(exc)) from None


def cmd_backup(args: argparse.Namespace) -> int:
    """Copy collections, each at one generation, to DEST/<name>/, while a server may keep serving and writing."""
    import time

    from citeqa.index.storage.backup import backup_collection
    from citeqa.index.storage.collection import Collection
    from citeqa.service.collections import collection_names

    settings = _settings(args)
    names = [args.collection] if args.collection else collection_names(settings)
    if not names:
        raise IndexMissingError(f"no collections in {settings.home}; nothing to back up")
    dest = Path(args.dest)
    for name in names:
        folder = _collection_folder(settings, name)
        collection = Collection(folder, Collection.read_manifest(folder), durable=settings.durable_writes)
        try:
            started = time.perf_counter()
            info = backup_collection(collection, name, dest, timeout=settings.write_timeout)
            seconds = time.perf_counter() - started
        finally:
            collection.close()
        print(
            f"backed up {name} at generation {info.generation}: {info.documents} documents, {len(info.segments)} "
            f"segment{'' if len(info.segments) == 1 else 's'}, {info.total_bytes / 2**20:.1f} MiB -> {dest / name} "
            f"in {seconds:.1f}s (write lock held {info.lock_ms:.0f} ms)"
        )
        for sha in info.missing_originals:
            _say(f"citeqa: warning: {name}: the original file {sha} is named by a document but was not stored")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Restore backups taken by `citeqa backup` into the data home."""
    from citeqa.index.storage.backup import backups_in, check_compatible, is_backup, restore_collection
    from citeqa.index.storage.collection import Collection

    settings = _settings(args)
    source = Path(args.source)
    if not source.is_dir():
        raise BackupError(f"no such folder: {source}")
    found = backups_in(source)
    if not found:
        raise BackupError(f"no citeqa backup at {source} (a collection's backup folder holds a backup.json)")
    if args.collection and is_backup(source):
        plan = {args.collection: source}  # one collection's backup, restored under the name asked for
    elif args.collection:
        if args.collection not in found:
            raise BackupError(f"{source} holds no backup of {args.collection!r} (it holds: {', '.join(sorted(found))})")
        plan = {args.collection: found[args.collection]}
    else:
        plan = found
    targets = {name: _collection_folder(settings, name) for name in plan}
    for name, target in targets.items():  # refuse before the model loads, and before anything is copied
        if Collection.exists(target) and not args.replace:
            raise BackupError(f"collection {name!r} exists at {target}; pass --replace to replace it with the backup")
    engine_settings = settings.engine_settings()
    expected = engine_settings.index.config_for(engine_settings.embedder().load())
    for backup in plan.values():
        check_compatible(backup, expected)
    for name, backup in plan.items():
        replaced = Collection.exists(targets[name])
        info = restore_collection(
            backup, targets[name], expected, replace=args.replace, timeout=settings.write_timeout, durable=settings.durable_writes
        )
        print(f"restored {name} at generation {info.generation} ({info.documents} documents) from {backup} -> {targets[name]}")
        if replaced:
            _say(f"citeqa: {name} was replaced: restart any server that had it open (until then it serves the old contents)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from citeqa.eval.runner import run_from_args

    return run_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="citeqa", description="Ask questions of your documents; get answers you can check.")
    parser.add_argument("--version", action="version", version=f"citeqa {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--index-dir", help="index folder (default: CITEQA_INDEX_DIR or <home>/collections/default)")
        sub.set_defaults(handler=handler)
        return sub

    index = add("index", cmd_index, "build or refresh the index from a folder of documents (PDF, Word, HTML, Markdown, text)")
    index.add_argument("path", nargs="?", help="corpus folder (default: CITEQA_CORPUS_DIR or seeds/)")
    index.add_argument("--rebuild", action="store_true", help="ignore the existing index and build from scratch")
    index.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="parse, split and embed on the Ray cluster whose head is ADDRESS (HOST:PORT or auto; needs citeqa[ray]); "
        "this command commits (default: CITEQA_RAY_ADDRESS, else in-process)",
    )

    add_files = add("add", cmd_add, "add or replace files in the collection, in one commit (each file's id is its name)")
    add_files.add_argument("files", nargs="+", metavar="FILE", help="PDF, Word (.docx), HTML, Markdown or text files")

    serve = add("serve", cmd_serve, "serve the HTTP API (builds the index first if there is none)")
    serve.add_argument("--host", help="default 127.0.0.1 (CITEQA_HOST)")
    serve.add_argument("--port", type=int, help="default 8000 (CITEQA_PORT)")
    serve.add_argument("--corpus", dest="path", help="corpus folder to build from when there is no index")
    serve.add_argument("--workers", type=int, help="server processes on one data home; default one per core (CITEQA_WORKERS)")
    serve.add_argument("--insecure", action="store_true", help="allow a non-loopback --host without API keys (CITEQA_INSECURE)")

    keys = add("keys", cmd_keys, "manage API keys (stored as sha256 hashes in CITEQA_API_KEYS_FILE)")
    keys.add_argument("--file", help="keys file (default: CITEQA_API_KEYS_FILE or <home>/api-keys)")
    key_actions = keys.add_subparsers(dest="action", required=True)
    key_add = key_actions.add_parser("add", help="create a random key, print it once, store its hash")
    key_add.add_argument("--role", choices=["read", "write"], required=True)
    key_add.add_argument("--note", help="a note stored beside the hash, e.g. who the key is for")
    key_actions.add_parser("list", help="the stored keys: role, start of the hash, note")
    key_remove = key_actions.add_parser("remove", help="revoke the keys whose hash starts with HASH")
    key_remove.add_argument("hash", help="at least the first 8 hex digits of the hash, as `keys list` shows")

    add("compact", cmd_compact, "merge the collection's segments into one, in one commit (drops deleted documents' data)")

    backup = add("backup", cmd_backup, "copy collections, each at one generation, to DEST/<name>/ (a server may keep writing)")
    backup.add_argument("dest", metavar="DEST", help="folder to write the backups in")
    backup.add_argument("--collection", metavar="NAME", help="only this collection (default: every collection in the data home)")

    restore = add("restore", cmd_restore, "restore backups taken by `citeqa backup` into the data home")
    restore.add_argument("source", metavar="SRC", help="a collection's backup folder, or a folder of them (a backup's DEST)")
    restore.add_argument(
        "--collection", metavar="NAME", help="restore only this one (from a folder of backups), or under this name (from one)"
    )
    restore.add_argument("--replace", action="store_true", help="replace an existing collection of that name")

    mcp = add("mcp", cmd_mcp, "serve MCP tools (search, ask, documents) over stdio, for agents and desktop clients")
    mcp.add_argument("--corpus", dest="path", help="corpus folder to build from when there is no index")

    ask = add("ask", cmd_ask, "answer a question with citations")
    ask.add_argument("question")
    ask.add_argument("--top-k", type=int, default=5)

    search = add("search", cmd_search, "print the ranked passages for a query")
    search.add_argument("query")
    search.add_argument("--top-k", type=int, default=5)
    search.add_argument("--mode", choices=[m.value for m in SearchMode])

    from citeqa.eval.runner import add_eval_arguments

    add_eval_arguments(add("eval", cmd_eval, "measure retrieval on the gold set or a BEIR dataset"))
    return parser


def setting_problem(error: ErrorDetails) -> str:
    """One invalid setting, named as its environment variable; a rule across settings names them itself."""
    if not error["loc"]:
        return str(error["msg"]).removeprefix("Value error, ")
    return f"CITEQA_{'_'.join(map(str, error['loc'])).upper()}: {error['msg']}"


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except USER_ERRORS as exc:
        print(f"citeqa: error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # a CITEQA_* setting (environment or .env) that is not a valid value
        if exc.title != Settings.__name__:
            raise
        problems = "; ".join(setting_problem(e) for e in exc.errors())
        print(f"citeqa: error: invalid setting: {problems}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
