"""A cross-encoder trained here, as it ships: an int8 ONNX file in index/models with a JSON file beside it that
names it, its sha256, the tokenizer's sha256 and what it was trained on. Both the reader (index/ranking/reader.py)
and the claim checker (index/answering/claim_checker.py) are one of these.

Loading checks both hashes (a damaged or foreign file is refused), runs onnxruntime without torch and with its
telemetry off. `logits` reads each (first, second) pair alone, never in a batch: int8 dynamic quantisation scales
activations per tensor, so in a batch a pair's score would depend on the pairs read with it (by up to 0.44 logits
on the reader), and a cached score on which request read it first. Alone, a pair always gets the same score;
batched was only about 15% faster. Scores are cached per pair.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from citeqa.index.models.onnx_export import sha256_file

MODEL_FOLDER = Path(__file__).resolve().parent
MODEL_FORMAT = 1
CACHE_SIZE = 4096  # pairs whose scores are kept: a question asked again, or paged, reads nothing twice


def encode_pairs(tokenizer, first: str, texts: Sequence[str], max_length: int) -> dict[str, np.ndarray]:
    """The ONNX graph's inputs for (first, text) pairs: word pieces as BERT reads a pair ([CLS] first [SEP] text
    [SEP], type ids 0 then 1), truncated to max_length, padded to the longest pair. Training uses this too."""
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.no_padding()
    encodings = tokenizer.encode_batch([(first, text) for text in texts])
    width = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(encodings), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for row, encoding in enumerate(encodings):
        n = len(encoding.ids)
        ids[row, :n] = encoding.ids
        mask[row, :n] = 1
        types[row, :n] = encoding.type_ids
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def bundled_tokenizer_path() -> Path:
    """The tokenizer of the bundled embedding model: every cross-encoder here was initialised from its layers."""
    from citeqa.index.models.embedding import DEFAULT_MODEL, resolve_model_path

    return Path(resolve_model_path(DEFAULT_MODEL)) / "tokenizer.json"


class PairModel:
    """Scores (first, second) text pairs with one shipped cross-encoder: one logit per pair."""

    def __init__(self, folder: Path, info_file: str, threads: int | None = None) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        from citeqa.index.models.onnx_encoder import available_cores

        self.folder = Path(folder)
        self.info: dict[str, Any] = json.loads((self.folder / info_file).read_text(encoding="utf-8"))
        if self.info.get("format") != MODEL_FORMAT:
            raise ValueError(f"{self.folder / info_file}: model format {self.info.get('format')}, expected {MODEL_FORMAT}")
        model_path = self.folder / self.info["file"]
        self.sha256 = sha256_file(model_path)
        if self.sha256 != self.info["sha256"]:
            raise RuntimeError(f"{model_path} does not match the sha256 in {info_file}: the model file is damaged")
        tokenizer_path = bundled_tokenizer_path()
        if sha256_file(tokenizer_path) != self.info["tokenizer_sha256"]:
            raise RuntimeError(f"{tokenizer_path} is not the tokenizer {model_path.name} was trained with")
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.max_length = int(self.info["max_length"])

        onnxruntime.disable_telemetry_events()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or available_cores()
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self._cache: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()  # the tokenizer's settings and the cache are shared by request threads
        self.reads = 0  # pairs read by the model (not found in the cache) since it was loaded

    def logits(self, first: str, texts: Sequence[str]) -> np.ndarray:
        """One logit per (first, text) pair; pairs read before come from the cache."""
        scores = np.zeros(len(texts), dtype=np.float64)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, text in enumerate(texts):
                cached = self._cache.get((first, text))
                if cached is None:
                    missing.setdefault(text, []).append(i)
                else:
                    self._cache.move_to_end((first, text))
                    scores[i] = cached
            if not missing:
                return scores
            unread = list(missing)
            pairs = [encode_pairs(self.tokenizer, first, [text], self.max_length) for text in unread]
        read = np.array([float(self.session.run(None, inputs)[0].reshape(-1)[0]) for inputs in pairs])
        with self._lock:
            self.reads += len(unread)
            for text, value in zip(unread, read.tolist(), strict=True):
                scores[missing[text]] = value
                self._cache[(first, text)] = value
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return scores
