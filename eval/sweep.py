"""Parameter sweep on a BEIR dataset: one index per chunker setting, then fusion and BM25 settings
varied in memory over it. Prints one line per setting; the README records what it showed.

    python -m eval.sweep --dataset ../shared/data/scifact --chunks 800:200,1200:200
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import replace
from pathlib import Path

from eval.beir import load_beir
from eval.runner import DEFAULT_CACHE, cached_engine, evaluate_beir
from index.builder import IndexSettings, passage_text
from index.chunking import ChunkerSettings
from index.engine import Engine, EngineSettings
from index.lexical import LexicalIndex, LexicalSettings
from index.search import FusionMethod, RetrievalSettings, Retriever, SearchMode


def _with_lexical(engine: Engine, lexical: LexicalSettings) -> None:
    store = engine.store
    title = engine.settings.index.title_in_passages
    texts = [passage_text(store.documents[c.doc_id], c, title) for c in store.chunks]
    store.lexical = LexicalIndex.build(texts, lexical)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--chunks", default="800:200", help="comma-separated size:overlap pairs")
    parser.add_argument("--titles", default="1", help="comma-separated 0/1 for title_in_passages")
    parser.add_argument("--weights", default="0.3,0.4,0.5,0.6,0.7")
    parser.add_argument("--fusions", default="weighted,rrf")
    parser.add_argument("--k1", default="1.2")
    parser.add_argument("--b", default="0.75")
    parser.add_argument("--methods", default="lucene")
    parser.add_argument("--stopwords", default="en")
    parser.add_argument("--candidates", default="100")
    args = parser.parse_args()
    dataset = load_beir(args.dataset)
    floats = lambda text: [float(x) for x in text.split(",")]  # noqa: E731
    for chunk_spec, title in itertools.product(args.chunks.split(","), args.titles.split(",")):
        size, overlap = (int(x) for x in chunk_spec.split(":"))
        index = IndexSettings(chunker=ChunkerSettings(size, overlap), title_in_passages=title == "1")
        engine = cached_engine(dataset.name, dataset.documents(), EngineSettings(index=index), DEFAULT_CACHE)
        for method, k1, b, stop in itertools.product(
            args.methods.split(","), floats(args.k1), floats(args.b), args.stopwords.split(",")
        ):
            _with_lexical(engine, LexicalSettings(method=method, k1=k1, b=b, stopwords=stop if stop != "none" else ""))
            lexical = evaluate_beir(engine, dataset, (SearchMode.LEXICAL,), show_progress=False)["modes"]["lexical"]
            print(
                f"chunks={chunk_spec} title={title} bm25={method},k1={k1},b={b},stop={stop} "
                f"lexical ndcg@10={lexical['ndcg@10']:.4f}",
                flush=True,
            )
            for fusion, weight, cands in itertools.product(
                args.fusions.split(","), floats(args.weights), args.candidates.split(",")
            ):
                retrieval = RetrievalSettings(fusion=FusionMethod(fusion), dense_weight=weight, candidates=int(cands))
                engine.retriever = Retriever(engine.store, engine.embedder, retrieval)
                engine.settings = replace(engine.settings, retrieval=retrieval)
                figures = evaluate_beir(engine, dataset, (SearchMode.HYBRID,), show_progress=False)["modes"]["hybrid"]
                print(
                    f"chunks={chunk_spec} title={title} bm25={method},k1={k1},b={b},stop={stop} fusion={fusion} w={weight} "
                    f"cand={cands} ndcg@10={figures['ndcg@10']:.4f} r@100={figures['recall@100']:.4f} "
                    f"hit@1={figures['hit@1']:.4f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
