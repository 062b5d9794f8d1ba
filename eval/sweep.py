"""Parameter sweep on a BEIR dataset: one index per chunker setting, everything else varied in memory
over it. Prints one line per setting (hybrid figures); docs/tuning.md records what the sweeps showed.

    python -m citeqa.eval.sweep --dataset ../shared/data/scifact --chunks 800:200,1200:200 --weights 0.4,0.5
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import replace
from pathlib import Path

from citeqa.eval.beir import load_beir
from citeqa.eval.runner import cached_engine, default_cache_dir, evaluate_beir
from citeqa.index.engine import Engine, EngineSettings
from citeqa.index.ranking.search import FusionMethod, RetrievalSettings, SearchMode
from citeqa.index.text.chunking import ChunkerSettings
from citeqa.index.writing.builder import IndexSettings


def _with_bm25(engine: Engine, k1: float, b: float) -> Engine:
    """k1 and b act at query time (postings keep raw term frequencies), so they vary without re-indexing: a variant
    engine over the same segments."""
    index = replace(engine.settings.index, lexical=replace(engine.settings.index.lexical, k1=k1, b=b))
    return engine.variant(replace(engine.settings, index=index))


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def main() -> None:
    served = EngineSettings()  # every default is the served one, so a sweep varies only what it is asked to
    chunker, lexical, retrieval = served.index.chunker, served.index.lexical, served.retrieval
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--max-queries", type=int)
    parser.add_argument(
        "--chunks", default=f"{chunker.chunk_size}:{chunker.chunk_overlap}", help="comma-separated size:overlap pairs"
    )
    titles = str(int(served.index.title_in_passages))
    parser.add_argument("--titles", default=titles, help="comma-separated 0/1 for title_in_passages")
    parser.add_argument("--k1", default=str(lexical.k1), help="comma-separated BM25 k1 values")
    parser.add_argument("--b", default=str(lexical.b), help="comma-separated BM25 b values")
    parser.add_argument("--fusions", default=retrieval.fusion.value, help="comma-separated fusion methods")
    parser.add_argument("--weights", default=str(retrieval.dense_weight), help="dense weights in fusion")
    parser.add_argument("--candidates", default=str(retrieval.candidates), help="comma-separated candidates per retriever")
    parser.add_argument(
        "--sentence-weights",
        default=str(retrieval.sentence_weight),
        help="comma-separated best-sentence weights in the dense score",
    )
    parser.add_argument("--quote-lexical", default=str(served.quote_lexical_weight), help="comma-separated quote lexical weights")
    parser.add_argument(
        "--rerank-weights", default=str(served.quote_rerank_weight), help="comma-separated quote re-scoring weights of the head"
    )
    parser.add_argument(
        "--feedback-weights", default=str(retrieval.feedback_weight), help="comma-separated dense feedback weights"
    )
    args = parser.parse_args()
    dataset = load_beir(args.dataset)
    if args.max_queries:
        keep = list(dataset.queries)[: args.max_queries]
        dataset = replace(dataset, queries={q: dataset.queries[q] for q in keep}, qrels={q: dataset.qrels[q] for q in keep})
    for chunk_spec, title in itertools.product(args.chunks.split(","), args.titles.split(",")):
        size, overlap = (int(x) for x in chunk_spec.split(":"))
        index = IndexSettings(chunker=ChunkerSettings(chunk_size=size, chunk_overlap=overlap), title_in_passages=title == "1")
        base = cached_engine(dataset.name, dataset.documents(), EngineSettings(index=index), default_cache_dir())
        for k1, b in itertools.product(_floats(args.k1), _floats(args.b)):
            scored = _with_bm25(base, k1, b)
            lexical = evaluate_beir(scored, dataset, (SearchMode.LEXICAL,), show_progress=False)["modes"]["lexical"]
            prefix = f"chunks={chunk_spec} title={title} bm25 k1={k1},b={b}"
            print(f"{prefix} lexical ndcg@10={lexical['ndcg@10']:.4f} hit@1={lexical['hit@1']:.4f}", flush=True)
            grid = itertools.product(
                args.fusions.split(","),
                _floats(args.weights),
                args.candidates.split(","),
                _floats(args.sentence_weights),
                _floats(args.quote_lexical),
                _floats(args.rerank_weights),
                _floats(args.feedback_weights),
            )
            for fusion, weight, candidates, sentence, quote_lexical, rerank, feedback in grid:
                retrieval = RetrievalSettings(
                    fusion=FusionMethod(fusion),
                    dense_weight=weight,
                    candidates=int(candidates),
                    sentence_weight=sentence,
                    feedback_weight=feedback,
                )
                settings = replace(
                    scored.settings, retrieval=retrieval, quote_lexical_weight=quote_lexical, quote_rerank_weight=rerank
                )
                engine = scored.variant(settings)
                figures = evaluate_beir(engine, dataset, (SearchMode.HYBRID,), show_progress=False)["modes"]["hybrid"]
                quote = f" answer_in_quote={figures['answer_in_top_quote']:.4f}" if "answer_in_top_quote" in figures else ""
                print(
                    f"{prefix} fusion={fusion} w={weight} cand={candidates} sent={sentence} qlex={quote_lexical} rerank={rerank} "
                    f"fb={feedback} "
                    f"ndcg@10={figures['ndcg@10']:.4f} r@100={figures['recall@100']:.4f} hit@1={figures['hit@1']:.4f}{quote}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
