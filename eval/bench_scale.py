"""Storage at scale: collections of 10k, 100k and 1M chunks built from real sentences, timed and sized.

    python -m citeqa.eval.bench_scale --data ../shared/data [--sizes 10000,100000,1000000]

Documents are recombined from real sentences of SciFact and SQuAD (two or three each, one chunk per document).
Each sentence is embedded once with the real model; a document's chunk vector is derived from its sentences'
vectors (their normalised mean), so the benchmark measures storage and retrieval, not the encoder. At each size it
prints one-document add, replace and delete (p50, p95), retrieval without the encoder (p50, p95), cold start to a
first answer, resident memory, disk per chunk, and the growth of each figure from the smallest size.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from citeqa.eval.bench import percentile
from citeqa.eval.embedding_cache import CachedEmbedder
from citeqa.index.engine import Engine, EngineSettings
from citeqa.index.models.embedding import Embedder
from citeqa.index.ranking.search import Retriever
from citeqa.index.storage.collection import Collection
from citeqa.index.storage.segment_writer import PreparedDocument
from citeqa.index.text.chunking import Chunk
from citeqa.index.text.documents import make_document
from citeqa.index.text.spans import Span, sentence_spans
from citeqa.index.writing.builder import IndexSettings, Preparer, passage_text
from citeqa.settings import Settings


def load_sentences(data: Path, limit: int) -> list[str]:
    sentences: list[str] = []
    for name in ("scifact", "squad-dev-a"):
        with (data / name / "corpus.jsonl").open(encoding="utf-8") as lines:
            for line in lines:
                text = json.loads(line)["text"]
                sentences.extend(text[s.start : s.end] for s in sentence_spans(text) if 40 <= s.end - s.start <= 300)
    return sentences[:limit]


class Corpus:
    """Documents of 2-3 real sentences, their vectors derived from the sentences' own."""

    def __init__(self, sentences: list[str], vectors: np.ndarray, preparer: Preparer, seed: int = 0) -> None:
        self.sentences, self.vectors, self.preparer = sentences, vectors, preparer
        self.rng = np.random.default_rng(seed)

    def documents(self, start: int, count: int) -> list[PreparedDocument]:
        picks = self.rng.integers(0, len(self.sentences), size=(count, 3))
        sizes = self.rng.integers(2, 4, size=count)
        prepared = []
        for n in range(count):
            chosen = picks[n, : sizes[n]]
            text = " ".join(self.sentences[i] for i in chosen)
            document = make_document(f"doc-{start + n:07d}.txt", text, source=f"bench/doc-{start + n:07d}.txt")
            units, cursor = [], 0
            for i in chosen:
                units.append(Span(cursor, cursor + len(self.sentences[i])))
                cursor += len(self.sentences[i]) + 1
            chunk = Chunk(document.id, 0, 0, len(text), text)
            unit_vectors = self.vectors[chosen]
            mean = unit_vectors.mean(axis=0)
            prepared.append(
                PreparedDocument(document, [chunk], units, (mean / np.linalg.norm(mean)).reshape(1, -1), unit_vectors, [[]])
            )
        terms = self.preparer.tokenizer.tokenize([passage_text(p.document, p.chunks[0], False) for p in prepared])
        for p, t in zip(prepared, terms, strict=True):
            p.chunk_terms = [t]
        return prepared


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def cold_start(folder: Path, query_vector: np.ndarray) -> tuple[float, float, float]:
    """A fresh process opens the collection and answers one retrieval: (seconds, peak resident MB, of which MB are
    the process's own (anonymous) memory; the rest is mapped page cache: files the search touched)."""
    script = (
        "import sys, time, numpy as np\n"
        "t = time.perf_counter()\n"
        "from citeqa.index.storage.collection import Collection\n"
        "from citeqa.index.storage.manifest import Manifest\n"
        "from citeqa.index.ranking.search import Retriever, RetrievalSettings, SearchMode\n"
        "from pathlib import Path\n"
        f"folder = Path({str(folder)!r})\n"
        "c = Collection(folder, Manifest.read(folder / 'manifest.json'))\n"
        "v = np.frombuffer(sys.stdin.buffer.read(), dtype=np.float32)\n"
        "Retriever(c.snapshot(), RetrievalSettings()).search(['cell', 'protein'], v, 10, SearchMode.HYBRID)\n"
        "status = {l.split(':')[0]: l.split()[1] for l in open('/proc/self/status') if l.startswith(('VmHWM', 'RssAnon'))}\n"
        "print(time.perf_counter() - t, int(status['VmHWM']) / 1024, int(status['RssAnon']) / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], input=query_vector.tobytes(), capture_output=True, check=True)
    seconds, rss, anonymous = out.stdout.decode().split()
    return float(seconds), float(rss), float(anonymous)


def measure(
    size: int, corpus: Corpus, engine_settings: EngineSettings, embedder: Embedder, queries: list[str], root: Path
) -> dict:
    folder = root / f"c{size}"
    config = engine_settings.index.config_for(embedder)
    collection = Collection.create(folder, config)
    started = time.perf_counter()
    batch = 50_000
    for start in range(0, size, batch):  # one commit per batch of documents, as an upload of many files would be
        collection.write(corpus.documents(start, min(batch, size - start)), [], timeout=600)
        print(f"  {size:,}: {start + batch:,} written, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    build_seconds = time.perf_counter() - started
    engine = Engine(collection, embedder, engine_settings)

    adds, replaces, deletes = [], [], []
    rng = random.Random(size)
    for n in range(30):
        new = corpus.documents(size + n, 1)
        tick = time.perf_counter()
        collection.write(new, [])
        collection.snapshot()  # until a search can see it
        adds.append(time.perf_counter() - tick)
        victim = f"doc-{rng.randrange(size):07d}.txt"
        replacement = corpus.documents(0, 1)[0]
        replacement.document = make_document(victim, replacement.document.text + " (edited)", source="bench/x")
        replacement.chunks = [Chunk(victim, 0, 0, len(replacement.document.text), replacement.document.text)]
        tick = time.perf_counter()
        collection.write([replacement], [])
        collection.snapshot()
        replaces.append(time.perf_counter() - tick)
        tick = time.perf_counter()
        collection.write([], [f"doc-{size + n:07d}.txt"])
        collection.snapshot()
        deletes.append(time.perf_counter() - tick)
        engine.merge()  # what the server does in the background after a write

    vectors = embedder.embed(queries)
    snapshot = collection.snapshot()
    retriever = Retriever(snapshot, engine_settings.retrieval)
    timings = []
    for query, vector in zip(queries, vectors, strict=True):
        terms = engine.tokenizer.tokenize([query])[0]
        tick = time.perf_counter()
        retriever.search(terms, vector, 10, engine_settings.retrieval.mode)
        timings.append(time.perf_counter() - tick)
    # What a search scans: chunk vectors everywhere, unit vectors only in segments small enough for exact search.
    # Recall@10 of the dense side as a served search asks it (HNSW where a segment has one, as many candidates as
    # RetrievalSettings.candidates) against an exact scan of every live chunk vector.
    recalls = []
    for vector in vectors[:50]:
        exact = np.concatenate([np.asarray(s.reader.chunk_vectors @ vector) for s in snapshot.segments])
        live = np.concatenate([s.live if s.live is not None else np.ones(s.reader.chunk_count, bool) for s in snapshot.segments])
        exact = np.where(live, exact, -np.inf)
        truth = set(np.argpartition(-exact, 10)[:10].tolist())
        served = snapshot.nearest_chunks(vector, engine_settings.retrieval.candidates)[:10]
        recalls.append(len(truth & set(served.tolist())) / 10)
    searched = sum(
        s.reader.chunk_vectors.nbytes + (s.reader.unit_vectors.nbytes if s.reader.ann is None else 0) for s in snapshot.segments
    )
    collection.close()
    start_seconds, start_rss, start_anonymous = cold_start(folder, vectors[0])
    figures = {
        "chunks": size,
        "build_s": build_seconds,
        "add_p50_ms": 1000 * statistics.median(adds),
        "add_p95_ms": 1000 * percentile(adds, 0.95),
        "replace_p50_ms": 1000 * statistics.median(replaces),
        "replace_p95_ms": 1000 * percentile(replaces, 0.95),
        "delete_p50_ms": 1000 * statistics.median(deletes),
        "delete_p95_ms": 1000 * percentile(deletes, 0.95),
        "retrieval_p50_ms": 1000 * statistics.median(timings),
        "retrieval_p95_ms": 1000 * percentile(timings, 0.95),
        "dense_recall_at_10": float(np.mean(recalls)),
        "cold_start_s": start_seconds,
        "cold_rss_mb": start_rss,
        "cold_anonymous_mb": start_anonymous,
        "vector_mb": searched / 1e6,
        "rss_over_vectors": start_rss * 1024 * 1024 / searched if searched else 0.0,
        "disk_bytes_per_chunk": disk_bytes(folder) / size,
        "segments": len(snapshot.segments),
        "dense": sorted({s.reader.dense_kind for s in snapshot.segments}),
    }
    shutil.rmtree(folder, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--sentences", type=int, default=20000, help="distinct real sentences to recombine")
    parser.add_argument("--work", type=Path, help="folder for the collections (default: a temporary one)")
    parser.add_argument("--cache", type=Path, help="embedding cache folder, so a second run embeds nothing")
    args = parser.parse_args()
    served = Settings().engine_settings()
    embedder = (CachedEmbedder.for_settings(args.cache, served) if args.cache else served.embedder()).load()
    settings = EngineSettings(index=IndexSettings(title_in_passages=False))
    sentences = load_sentences(args.data, args.sentences)
    print(f"embedding {len(sentences)} real sentences once …", file=sys.stderr)
    vectors = embedder.embed(sentences, show_progress=True)
    if isinstance(embedder, CachedEmbedder):
        embedder.save()
    corpus = Corpus(sentences, vectors, Preparer(embedder, settings.index))
    queries = [json.loads(line)["text"] for line in (args.data / "scifact" / "queries.jsonl").open()][:200]
    root = Path(tempfile.mkdtemp(prefix="citeqa-scale-", dir=args.work))
    rows = []
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            figures = measure(size, corpus, settings, embedder, queries, root)
            rows.append(figures)
            print(json.dumps(figures), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    keys = [k for k in rows[0] if k not in ("chunks", "dense")]
    print("\n| figure | " + " | ".join(f"{r['chunks']:,} chunks" for r in rows) + " | growth, largest / smallest |")
    print("|---|" + "---:|" * (len(rows) + 1))
    for key in keys:
        cells = [f"{r[key]:.2f}" if isinstance(r[key], float) else str(r[key]) for r in rows]
        growth = rows[-1][key] / rows[0][key] if rows[0][key] else float("nan")
        print(f"| {key} | " + " | ".join(cells) + f" | {growth:.2f}× |")
    print("| dense side | " + " | ".join(",".join(r["dense"]) for r in rows) + " | |")
    print(f"peak resident memory of this process: {rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
