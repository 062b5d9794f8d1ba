"""`citeqa eval` / `python -m citeqa.eval`: the gold set for a corpus, or any BEIR-format dataset.

Indexes built for evaluation are kept under a cache folder keyed by dataset and index settings; a
re-run reuses them (and re-embeds only documents whose content changed), so repeat runs are quick.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from tqdm import tqdm

from citeqa.console import TerminalProgress
from citeqa.eval.beir import BeirDataset, load_beir
from citeqa.eval.embedding_cache import CachedEmbedder
from citeqa.eval.gold import GOLD_PATH, GoldQuestion, check_gold, load_gold
from citeqa.eval.metrics import hit_at_k, mean, mrr_at_k, ndcg_at_k, recall_at_k
from citeqa.index.engine import Engine, EngineSettings
from citeqa.index.models.embedding import Embedder
from citeqa.index.progress import NO_PROGRESS
from citeqa.index.ranking.evidence import Passage
from citeqa.index.ranking.search import Hit, SearchMode
from citeqa.index.text.documents import Document
from citeqa.index.writing.builder import first_of_each_id
from citeqa.index.writing.ingest import load_folder

MODES = (SearchMode.LEXICAL, SearchMode.DENSE, SearchMode.HYBRID)


def default_cache_dir() -> Path:
    """Evaluation indexes and embeddings live in the data home, beside the collections."""
    from citeqa.settings import Settings

    return Settings().home / "eval-cache"


# Chunks fetched per query for document-level metrics: enough to rank 100 distinct documents.
BEIR_CHUNK_DEPTH = 300


def cached_engine(
    name: str,
    documents: list[Document],
    settings: EngineSettings,
    cache_dir: Path,
    show_progress: bool = False,
    embedder: Embedder | None = None,
) -> Engine:
    """An engine over `documents`, its index kept under cache_dir/<name>-<hash of the index settings>;
    texts already embedded for any other settings come from the embedding cache in cache_dir."""
    embedder = (embedder or CachedEmbedder.for_settings(cache_dir, settings)).load()
    config = settings.index.config_for(embedder)
    key = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode()).hexdigest()[:12]
    engine = Engine.create(cache_dir / f"{name}-{key}", settings, embedder)
    unique, _ = first_of_each_id(documents)
    engine.sync(unique, None, progress=TerminalProgress() if show_progress else NO_PROGRESS)
    if isinstance(embedder, CachedEmbedder):
        embedder.save()
    return engine


# -- the gold set ----------------------------------------------------------------------------------


def _covers(span: tuple[int, int], golds: list[tuple[int, int]]) -> bool:
    return any(span[0] <= start and end <= span[1] for start, end in golds)


def evaluate_gold(engine: Engine, questions: list[GoldQuestion], top_k: int = 10) -> dict:
    """hit@1, hit@3, MRR@10 over passages; quote accuracy; complete answers; abstention precision and recall.

    A passage is relevant when its span contains an occurrence of the gold quote. Quote accuracy is the
    share of answerable questions whose top passage's quote span contains an occurrence of the gold quote. A
    question with several parts (`also`) is answered completely when the answer's quotes contain every part.
    """
    documents: dict[str, Document] = {}
    for info in engine.documents():
        document = engine.document(info.id)
        assert document is not None  # listed just now, and nothing else writes to an evaluation's own index
        documents[info.id] = document
    problems = check_gold(questions, documents)
    if problems:
        raise ValueError("gold set does not match the corpus: " + "; ".join(problems))
    hits1, hits3, mrrs, quote_ok, complete, per_question = [], [], [], [], [], []
    abstained_unanswerable = abstained_answerable = unanswerable = 0
    for q in questions:
        answer = engine.ask(q.question, top_k)
        row = {"id": q.id, "question": q.question, "kind": q.kind, "found": answer.composed.found, "answer": answer.composed.text}
        if not q.answerable:
            unanswerable += 1
            abstained_unanswerable += not answer.composed.found
            per_question.append(row)
            continue
        abstained_answerable += not answer.composed.found
        assert q.doc_id is not None  # check_gold found the document of every answerable question
        golds = q.gold_spans(documents[q.doc_id])
        relevant = [p.document.id == q.doc_id and _covers((p.chunk.start, p.chunk.end), golds) for p in answer.passages]
        first = next((i + 1 for i, ok in enumerate(relevant) if ok), None)
        top = answer.passages[0] if answer.passages else None
        quote_hit = bool(top and top.document.id == q.doc_id and _covers((top.quote.start, top.quote.end), golds))
        hits1.append(float(first == 1))
        hits3.append(float(first is not None and first <= 3))
        mrrs.append(1.0 / first if first else 0.0)
        quote_ok.append(float(quote_hit))
        row |= {"first_relevant_rank": first, "quote_correct": quote_hit, "top_quote": top.quote.text if top else None}
        if q.also:  # a several-part answer: is each part quoted (in any of the answer's sentences)?
            quoted = [(p.quote.start, p.quote.end) for p in answer.cited if p.document.id == q.doc_id]
            parts = [q.gold_spans(documents[q.doc_id], words) for words in (q.quote, *q.also)]
            answered_completely = all(any(_covers(span, spans) for span in quoted) for spans in parts)
            row["complete"] = answered_completely
            complete.append(float(answered_completely))
        per_question.append(row)
    abstained = abstained_unanswerable + abstained_answerable
    return {
        "questions": len(questions),
        "answerable": len(hits1),
        "unanswerable": unanswerable,
        "hit@1": mean(hits1),
        "hit@3": mean(hits3),
        "mrr@10": mean(mrrs),
        "quote_accuracy": mean(quote_ok),
        "several_part_questions": len(complete),
        "complete_answers": mean(complete),
        "abstention_precision": abstained_unanswerable / abstained if abstained else 1.0,
        "abstention_recall": abstained_unanswerable / unanswerable if unanswerable else 1.0,
        "answerable_abstained": abstained_answerable,
        "per_question": per_question,
    }


# -- BEIR datasets ---------------------------------------------------------------------------------


def rank_documents(hits: list[Hit], depth: int = 100) -> list[str]:
    """Documents ranked by their best chunk: a document split in several chunks scores as its best one."""
    ranked: list[str] = []
    seen: set[str] = set()
    for hit in hits:  # hits arrive best first, so a document's first hit is its best
        doc_id = hit.doc_id  # looked up in the snapshot each time it is read
        if doc_id not in seen:
            seen.add(doc_id)
            ranked.append(doc_id)
            if len(ranked) == depth:
                break
    return ranked


def ranking_metrics(rankings: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    qids = list(qrels)
    return {
        "ndcg@10": mean([ndcg_at_k(rankings[q], qrels[q], 10) for q in qids]),
        "recall@10": mean([recall_at_k(rankings[q], qrels[q], 10) for q in qids]),
        "recall@100": mean([recall_at_k(rankings[q], qrels[q], 100) for q in qids]),
        "hit@1": mean([hit_at_k(rankings[q], qrels[q], 1) for q in qids]),
        "mrr@10": mean([mrr_at_k(rankings[q], qrels[q], 10) for q in qids]),
    }


def answer_in_quote(passage: Passage | None, answers: list[str]) -> bool:
    if passage is None:
        return False
    quote = passage.quote.text.casefold()
    return any(answer.strip().casefold() in quote for answer in answers if answer.strip())


def evaluate_beir(
    engine: Engine, dataset: BeirDataset, modes: tuple[SearchMode, ...] = MODES, show_progress: bool = True
) -> dict:
    qids = list(dataset.queries)
    started = time.perf_counter()
    vectors = engine.embedder.embed([dataset.queries[q] for q in qids], show_progress=show_progress)
    results: dict[str, dict] = {}
    for mode in modes:
        rankings, quote_hits = {}, []
        mode_started = time.perf_counter()
        for qid, vector in tqdm(
            list(zip(qids, vectors, strict=True)), desc=f"{mode.value:>7}", disable=not show_progress, leave=False
        ):
            query = dataset.queries[qid]
            hits, quotes = engine.rank(query, BEIR_CHUNK_DEPTH, mode=mode, query_vector=vector)
            rankings[qid] = rank_documents(hits)
            if dataset.answers and mode is engine.settings.retrieval.mode and qid in dataset.answers:
                top = engine.passages(hits[:1], quotes[:1])[0] if hits else None
                quote_hits.append(float(answer_in_quote(top, dataset.answers[qid])))
        figures = ranking_metrics(rankings, dataset.qrels)
        if quote_hits:
            figures["answer_in_top_quote"] = mean(quote_hits)
        figures["ms_per_query"] = 1000 * (time.perf_counter() - mode_started) / max(len(qids), 1)
        results[mode.value] = figures
    return {
        "dataset": dataset.name,
        "queries": len(qids),
        "documents": len(dataset.corpus),
        "chunks": engine.stats().chunks,
        "seconds": time.perf_counter() - started,
        "modes": results,
    }


# -- output ----------------------------------------------------------------------------------------


def markdown_table(rows: dict[str, dict[str, float]], columns: list[str]) -> str:
    lines = ["| retriever | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for name, figures in rows.items():
        cells = [f"{figures[c]:.3f}" if isinstance(figures.get(c), float) else str(figures.get(c, "")) for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


GOLD_COLUMNS = [
    "hit@1",
    "hit@3",
    "mrr@10",
    "quote_accuracy",
    "complete_answers",
    "abstention_precision",
    "abstention_recall",
    "answerable_abstained",
]
BEIR_COLUMNS = ["ndcg@10", "recall@10", "recall@100", "hit@1", "mrr@10", "answer_in_top_quote", "ms_per_query"]


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", type=Path, help="a BEIR-format folder (corpus.jsonl, queries.jsonl, qrels/test.tsv)")
    parser.add_argument("--corpus", type=Path, help="corpus folder for the gold set (default: CITEQA_CORPUS_DIR or seeds/)")
    parser.add_argument("--gold", type=Path, default=GOLD_PATH, help="gold question set (default: eval/gold.jsonl)")
    parser.add_argument("--modes", default="lexical,dense,hybrid", help="retrievers to compare on a BEIR dataset")
    parser.add_argument("--max-queries", type=int, help="evaluate only the first N queries (quick looks)")
    parser.add_argument("--output", type=Path, help="JSON file for every figure (default: <home>/eval-results/<name>.json)")
    parser.add_argument("--cache-dir", type=Path, help="where evaluation indexes are kept (default: <home>/eval-cache)")


def run_from_args(args: argparse.Namespace) -> int:
    from citeqa.settings import Settings

    settings = Settings()
    engine_settings = settings.engine_settings()
    output_dir = settings.home / "eval-results"
    args.cache_dir = args.cache_dir or default_cache_dir()
    if args.dataset:
        dataset = load_beir(args.dataset)
        if args.max_queries:
            keep = list(dataset.queries)[: args.max_queries]
            dataset = replace(dataset, queries={q: dataset.queries[q] for q in keep}, qrels={q: dataset.qrels[q] for q in keep})
        engine = cached_engine(dataset.name, dataset.documents(), engine_settings, args.cache_dir, show_progress=True)
        modes = tuple(SearchMode(m.strip()) for m in args.modes.split(",") if m.strip())
        report = evaluate_beir(engine, dataset, modes)
        table = markdown_table(report["modes"], BEIR_COLUMNS)
        title = f"{dataset.name}: {report['queries']} queries, {report['documents']} documents, {report['chunks']} chunks"
    else:
        corpus = args.corpus or settings.corpus_dir
        loaded = load_folder(corpus)
        engine = cached_engine(f"gold-{Path(corpus).name}", loaded.documents, engine_settings, args.cache_dir, show_progress=True)
        gold = evaluate_gold(engine, load_gold(args.gold))
        report = {"dataset": f"gold set {args.gold.name} over {corpus}", **gold}
        table = markdown_table({engine_settings.retrieval.mode.value: gold}, GOLD_COLUMNS)
        title = f"gold set: {gold['answerable']} answerable, {gold['unanswerable']} unanswerable questions"
    report["settings"] = json.loads(json.dumps(asdict(engine_settings), default=str))
    output = args.output or output_dir / f"{report['dataset'].split()[0] if args.dataset else 'gold'}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print(f"\n{title}\n\n{table}\n\nfigures written to {output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m citeqa.eval", description="measure retrieval on the gold set or a BEIR dataset"
    )
    add_eval_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
