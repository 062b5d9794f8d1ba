"""The embedding model run by ONNX Runtime from its cached export (onnx_export.py): torch-free.

Encoding does what sentence-transformers does for a Transformer → Pooling(mean) → Normalize model: the model
folder's fast tokenizer (`tokenizer.json`) with truncation to `max_seq_length` word pieces, the transformer,
the mean of the token vectors under the attention mask, then L2 normalisation.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from citeqa.index.models.onnx_export import INFO_FILE, ONNX_VARIANTS, OUTPUT_NAME, ensure_exported, read_layout, sha256_file

# A call with at least this many texts is bulk work (see OnnxEncoder.session_for); a query, or a short document
# added over HTTP, is fewer.
BULK_TEXTS = 64


def mean_pool(hidden: np.ndarray, mask: np.ndarray, normalize: bool = True) -> np.ndarray:
    """sentence-transformers' mean pooling (sum of masked token vectors / max(token count, 1e-9)), then
    torch.nn.functional.normalize's L2 normalisation (norm clamped at 1e-12)."""
    weights = mask[:, :, None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    if normalize:
        pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    return pooled.astype(np.float32, copy=False)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class OnnxEncoder:
    """Texts in, float32 sentence vectors out, with onnxruntime on the CPU.

    `variant` is "onnx" (fp32, the exported graph) or "onnx-int8" (weights quantised to int8). `sha256` is the
    hash of the ONNX file being run; an index records it, so vectors from another file are never mixed in.
    """

    def __init__(
        self,
        model_path: str | Path,
        source_fingerprint: str,
        variant: str = "onnx-int8",
        models_dir: Path | None = None,
        threads: int | None = None,
        bulk_on_every_core: bool = True,
    ) -> None:
        """`bulk_on_every_core=False` keeps bulk work on `threads` too: for a process given its share of the cores by
        a scheduler (a Ray actor given one CPU), where every core would take the others' share."""
        if variant not in ONNX_VARIANTS:
            raise ValueError(f"unknown ONNX variant {variant!r}: choose one of {sorted(ONNX_VARIANTS)}")
        if models_dir is None:
            raise ValueError("models_dir is required: where exported models are cached")
        import onnxruntime
        from tokenizers import Tokenizer

        self.model_path = Path(model_path)
        self.variant = variant
        self.layout = read_layout(self.model_path)
        self.folder = ensure_exported(self.model_path, source_fingerprint, Path(models_dir))
        info = json.loads((self.folder / INFO_FILE).read_text(encoding="utf-8"))
        entry = info["files"][variant]
        self.path = self.folder / entry["file"]
        self.sha256 = sha256_file(self.path)
        if self.sha256 != entry["sha256"]:
            raise RuntimeError(
                f"{self.path} does not match the sha256 recorded when it was exported; delete {self.folder} to export it again"
            )

        self.tokenizer = Tokenizer.from_file(str(self.model_path / "tokenizer.json"))
        self.tokenizer.no_padding()  # batches are padded here, to their own longest text
        self.tokenizer.enable_truncation(max_length=self.layout.max_seq_length)

        onnxruntime.disable_telemetry_events()
        self.threads = threads or available_cores()
        self.bulk_on_every_core = bulk_on_every_core
        self.session = self._new_session(self.threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self._bulk_session: Any = None
        self._bulk_lock = threading.Lock()

    def _new_session(self, threads: int) -> Any:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Workers sleep between runs instead of spinning: on two cores shared with the HTTP server (and anyone
        # else) spinning burned the CPU a query needed; measured here it cut neither p50 nor bulk time.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        return onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def session_for(self, count: int) -> Any:
        """The session to run `count` texts on. Bulk work (an ingestion, a large upload) runs on every core even in a
        process given fewer threads for its queries: `citeqa serve --workers N` gives each worker cores/N, and on
        one thread an upload job embedded at half the speed of two (16.1 against 32.2 texts/s, measured). The bulk
        session is made the first time it is needed, so a worker that only answers queries never holds it."""
        if count < BULK_TEXTS or not self.bulk_on_every_core or self.threads >= available_cores():
            return self.session
        with self._bulk_lock:
            if self._bulk_session is None:
                self._bulk_session = self._new_session(available_cores())
            return self._bulk_session

    @property
    def dimension(self) -> int:
        return self.layout.dimension

    @property
    def max_tokens(self) -> int:
        return self.layout.max_seq_length

    def encode(self, texts: Sequence[str], batch_size: int, show_progress: bool = False) -> np.ndarray:
        """Vectors in the order of `texts`; batches are formed from texts of similar length (less padding)."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for rows, _, hidden, mask in self._batches(texts, batch_size, show_progress):
            vectors[rows] = mean_pool(hidden, mask, self.layout.normalize)
        return vectors

    def encode_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], batch_size: int
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Each text's vector and, from the same forward pass, a vector for each of its character spans `spans[i]`.

        A span's vector is the mean of the token vectors whose first character lies inside the span (the text's own
        context shapes them), normalised like a text's. A span the encoded text does not cover to its end (the text
        was truncated) or that holds no token gets a row of NaN: the caller encodes it on its own.
        """
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        span_vectors = [np.full((len(s), self.dimension), np.nan, dtype=np.float32) for s in spans]
        for rows, encodings, hidden, mask in self._batches(texts, batch_size, False):
            vectors[rows] = mean_pool(hidden, mask, self.layout.normalize)
            for row, index, encoding in zip(range(len(rows)), rows.tolist(), encodings, strict=True):
                if len(spans[index]):
                    span_vectors[index] = pool_spans(hidden[row], encoding, spans[index], self.layout.normalize)
        return vectors, span_vectors

    def _batches(self, texts: Sequence[str], batch_size: int, show_progress: bool):
        """(text indices, their encodings, last hidden states, attention mask) per batch of texts of similar length."""
        if not texts:
            return
        session = self.session_for(len(texts))
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=True)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        order = np.argsort(-lengths, kind="stable")
        starts = range(0, len(texts), batch_size)
        if show_progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="Batches", unit="batch")
        for start in starts:
            rows = order[start : start + batch_size]
            width = int(lengths[rows].max())
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for row, index in enumerate(rows):
                encoding = encodings[index]
                ids[row, : len(encoding.ids)] = encoding.ids
                mask[row, : len(encoding.ids)] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            (hidden,) = session.run([OUTPUT_NAME], {name: feeds[name] for name in self.input_names})
            yield rows, [encodings[i] for i in rows.tolist()], hidden, mask


def pool_spans(hidden: np.ndarray, encoding, spans: Sequence[tuple[int, int]], normalize: bool) -> np.ndarray:
    """Mean of the (non-special) token vectors of one encoded text whose first character falls in each span."""
    special = np.asarray(encoding.special_tokens_mask[: len(encoding.ids)], dtype=bool)
    offsets = np.asarray(encoding.offsets[: len(encoding.ids)], dtype=np.int64).reshape(-1, 2)[~special]
    tokens = hidden[: len(encoding.ids)][~special].astype(np.float64)
    pooled = np.full((len(spans), hidden.shape[-1]), np.nan, dtype=np.float32)
    if not len(tokens):
        return pooled
    sums = np.vstack([np.zeros((1, tokens.shape[1])), np.cumsum(tokens, axis=0)])
    bounds = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    first = np.searchsorted(offsets[:, 0], bounds[:, 0], side="left")
    last = np.searchsorted(offsets[:, 0], bounds[:, 1], side="left")
    covered = (last > first) & (bounds[:, 1] <= offsets[-1, 1])
    counts = (last - first)[covered, None]
    means = (sums[last[covered]] - sums[first[covered]]) / counts
    if normalize:
        means = means / np.clip(np.linalg.norm(means, axis=1, keepdims=True), 1e-12, None)
    pooled[covered] = means
    return pooled
