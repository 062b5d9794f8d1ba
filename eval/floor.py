"""The floor citeqa is measured against: sentence-transformers + FAISS IndexFlatIP behind one FastAPI route.

Dense only, whole passages (no chunking, no sentences, no BM25, no quotes or citations), the same bundled model.
`eval/bench.py` runs it beside `citeqa serve` so that each figure comes with its ratio to the simplest server
that answers the same question.

    python -m citeqa.eval.floor ingest --dataset DIR --out FOLDER   # embed the passages, save index + texts
    python -m citeqa.eval.floor serve --index FOLDER --port 8767     # GET /search?q=…&k=5, GET /readyz
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from citeqa.eval.beir import load_beir
from citeqa.index.models.embedding import DEFAULT_MODEL, resolve_model_path

INDEX_FILE = "passages.faiss"
TEXTS_FILE = "passages.jsonl"
STATS_FILE = "ingest.json"


def load_model():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_model_path(DEFAULT_MODEL), device="cpu")


def ingest(dataset_dir: Path, out: Path, batch_size: int = 64) -> dict:
    """Embed every passage (title + text, as citeqa indexes a BEIR entry) and save a flat inner-product index."""
    import faiss
    import numpy as np

    model = load_model()
    documents = load_beir(dataset_dir).documents()
    started = time.perf_counter()
    vectors = model.encode([d.text for d in documents], batch_size=batch_size, normalize_embeddings=True)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    out.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index, str(out / INDEX_FILE))
    with (out / TEXTS_FILE).open("w", encoding="utf-8") as handle:
        for document in documents:
            handle.write(json.dumps({"id": document.id, "text": document.text}) + "\n")
    seconds = time.perf_counter() - started
    stats = {"passages": len(documents), "seconds": seconds, "passages_per_s": len(documents) / seconds}
    (out / STATS_FILE).write_text(json.dumps(stats), encoding="utf-8")
    return stats


def create_app(folder: Path):
    import faiss
    from fastapi import FastAPI

    model = load_model()
    index = faiss.read_index(str(folder / INDEX_FILE))
    with (folder / TEXTS_FILE).open(encoding="utf-8") as handle:
        passages = [json.loads(line) for line in handle]
    model.encode(["warm-up"], normalize_embeddings=True)
    app = FastAPI()

    @app.get("/readyz")
    def readyz() -> dict:
        return {"status": "ready", "passages": len(passages)}

    @app.get("/search")
    def search(q: str, k: int = 5) -> dict:
        vector = model.encode([q], normalize_embeddings=True)
        scores, rows = index.search(vector, k)
        results = [
            {"rank": i + 1, "score": float(s), "id": passages[r]["id"], "text": passages[r]["text"]}
            for i, (s, r) in enumerate(zip(scores[0], rows[0], strict=True))
            if r >= 0
        ]
        return {"query": q, "results": results}

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m citeqa.eval.floor", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_ingest = commands.add_parser("ingest")
    run_ingest.add_argument("--dataset", type=Path, required=True)
    run_ingest.add_argument("--out", type=Path, required=True)
    run_serve = commands.add_parser("serve")
    run_serve.add_argument("--index", type=Path, required=True)
    run_serve.add_argument("--port", type=int, default=8767)
    args = parser.parse_args(argv)
    if args.command == "ingest":
        print(json.dumps(ingest(args.dataset, args.out)))
        return 0
    import uvicorn

    uvicorn.run(create_app(args.index), host="127.0.0.1", port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
