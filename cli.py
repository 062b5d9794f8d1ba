"""The `citeqa` command: index, serve, ask, search (and eval, from the eval package)."""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from citeqa.index.documents import DocumentError
from citeqa.index.manifest import IndexMismatchError, IndexMissingError
from citeqa.index.search import SearchMode
from citeqa.settings import Settings

if TYPE_CHECKING:
    from citeqa.index.engine import Engine

USER_ERRORS = (DocumentError, IndexMismatchError, IndexMissingError, FileNotFoundError)


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    if getattr(args, "path", None):
        overrides["corpus_dir"] = Path(args.path)
    if getattr(args, "index_dir", None):
        overrides["index_dir"] = Path(args.index_dir)
    return Settings(**overrides)


def cmd_index(args: argparse.Namespace) -> int:
    from citeqa.service.indexing import build_from_corpus

    settings = _settings(args)
    summary = build_from_corpus(settings, rebuild=args.rebuild, show_progress=True)
    print(f"indexed {settings.corpus_dir} -> {settings.index_dir}")
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


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from citeqa.service.app import create_app
    from citeqa.service.indexing import open_or_build

    settings = _settings(args)
    settings.host = args.host or settings.host
    settings.port = args.port or settings.port
    engine = open_or_build(settings, show_progress=True)  # a mismatched index fails here, with a clear message
    counts = f"{len(engine.store.documents)} documents, {len(engine.store.chunks)} chunks"
    print(f"citeqa: {counts}; chat page http://{settings.host}:{settings.port}/ , API docs at /docs", file=sys.stderr)
    uvicorn.run(create_app(settings, engine), host=settings.host, port=settings.port, log_level="info")
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
        hit, quote = passage.hit, passage.quote
        print(f"{passage.rank}. score {hit.score:.3f} (dense {hit.dense:.3f}, lexical {hit.lexical:.2f})  {hit.chunk.chunk_id}")
        print(textwrap.indent(textwrap.fill(f"“{quote.text}” [{quote.start}:{quote.end}]", width=96), "    "))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from citeqa.eval.runner import run_from_args

    return run_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="citeqa", description="Ask questions of your documents; get answers you can check.")
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--index-dir", help="index folder (default: CITEQA_INDEX_DIR or <home>/collections/default)")
        sub.set_defaults(handler=handler)
        return sub

    index = add("index", cmd_index, "build or refresh the index from a folder of .txt/.md files")
    index.add_argument("path", nargs="?", help="corpus folder (default: CITEQA_CORPUS_DIR or seeds/)")
    index.add_argument("--rebuild", action="store_true", help="ignore the existing index and build from scratch")

    serve = add("serve", cmd_serve, "serve the HTTP API (builds the index first if there is none)")
    serve.add_argument("--host", help="default 127.0.0.1 (CITEQA_HOST)")
    serve.add_argument("--port", type=int, help="default 8000 (CITEQA_PORT)")
    serve.add_argument("--corpus", dest="path", help="corpus folder to build from when there is no index")

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


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except USER_ERRORS as exc:
        print(f"citeqa: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
