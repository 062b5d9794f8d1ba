"""Fingerprint every search and quote: the proof that a change which should not move results did not.

`python -m citeqa.eval.fingerprint --output before.json` ranks every judged question of each BEIR dataset under
../shared/data (or --data) and every gold-set question, in all three modes, and records for each question its
first ten hits (document, chunk row, score) and the quotes of the head (spans, companions). Run it before and
after a refactor, then `--compare before.json after.json`: it prints the questions whose results differ and exits
1 if any do. Scores are rounded to 6 decimals, as the API reports them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from citeqa.eval.beir import load_beir
from citeqa.eval.gold import load_gold
from citeqa.eval.runner import cached_engine, default_cache_dir
from citeqa.index.ranking.search import SearchMode
from citeqa.index.writing.ingest import load_folder

DATASETS = ("squad-dev-a", "scifact", "cisi", "medline", "npl")
DEPTH = 10


def _quote_record(quote) -> list:
    return [quote.start, quote.end, round(quote.score, 6), [[c.start, c.end] for c in quote.companions]]


def fingerprint_queries(engine, queries: dict[str, str]) -> dict[str, dict]:
    """Per question and mode: the first DEPTH hits and the quotes of the head."""
    records: dict[str, dict] = {}
    qids = list(queries)
    vectors = engine.embedder.embed([queries[q] for q in qids])
    for mode in (SearchMode.LEXICAL, SearchMode.DENSE, SearchMode.HYBRID):
        for qid, vector in zip(qids, vectors, strict=True):
            hits, quotes = engine.rank(queries[qid], DEPTH, mode=mode, query_vector=vector)
            records.setdefault(qid, {})[mode.value] = {
                "hits": [[hit.doc_id, hit.row, round(hit.score, 6)] for hit in hits],
                "quotes": [_quote_record(quote) for quote in quotes],
            }
    return records


def digest(records: dict) -> str:
    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()


def run(data: Path, cache_dir: Path, datasets: tuple[str, ...]) -> dict[str, dict]:
    from citeqa.settings import Settings

    settings = Settings()
    engine_settings = settings.engine_settings()
    report: dict[str, dict] = {}
    for name in datasets:
        dataset = load_beir(data / name)
        engine = cached_engine(dataset.name, dataset.documents(), engine_settings, cache_dir)
        queries = {q: dataset.queries[q] for q in dataset.qrels}
        records = fingerprint_queries(engine, queries)
        report[name] = {"digest": digest(records), "records": records}
        print(f"{name}: {len(records)} questions, digest {report[name]['digest'][:16]}", flush=True)
    loaded = load_folder(settings.corpus_dir)
    engine = cached_engine(f"gold-{Path(settings.corpus_dir).name}", loaded.documents, engine_settings, cache_dir)
    queries = {question.id: question.question for question in load_gold()}
    records = fingerprint_queries(engine, queries)
    report["gold"] = {"digest": digest(records), "records": records}
    print(f"gold: {len(records)} questions, digest {report['gold']['digest'][:16]}", flush=True)
    return report


def compare(before: dict, after: dict) -> int:
    """Print each dataset's verdict and the first differing questions; 1 when anything differs."""
    differing = 0
    for name in sorted(set(before) | set(after)):
        if name not in before or name not in after:
            print(f"{name}: only in {'after' if name in after else 'before'}")
            differing += 1
            continue
        old, new = before[name]["records"], after[name]["records"]
        changed = sorted(q for q in set(old) | set(new) if old.get(q) != new.get(q))
        print(f"{name}: {len(old)} questions, {len(changed)} differ")
        for qid in changed[:5]:
            print(f"  {qid}: before {json.dumps(old.get(qid))[:300]}\n  {qid}: after  {json.dumps(new.get(qid))[:300]}")
        differing += len(changed)
    print("identical" if not differing else f"{differing} differences")
    return 1 if differing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m citeqa.eval.fingerprint", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder of BEIR datasets")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated dataset folders")
    parser.add_argument("--cache-dir", type=Path, help="where evaluation indexes are kept (default: <home>/eval-cache)")
    parser.add_argument("--output", type=Path, help="write the fingerprints here")
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"), help="compare two fingerprint files")
    args = parser.parse_args(argv)
    if args.compare:
        before, after = (json.loads(path.read_text(encoding="utf-8")) for path in args.compare)
        return compare(before, after)
    if not args.output:
        parser.error("--output is required unless --compare is given")
    datasets = tuple(name.strip() for name in args.datasets.split(",") if name.strip())
    report = run(args.data, args.cache_dir or default_cache_dir(), datasets)
    args.output.write_text(json.dumps(report), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
