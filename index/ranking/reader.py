"""The reader: a small cross-encoder, trained here (eval/train_reader.py), that reads a question together with one
sentence and scores how likely the sentence holds the answer.

Unlike the quote selector's features (cosines of vectors made apart, shared words), it reads both texts at once, so
it can see that "unwilling" asks about "reluctance" or that "which newspaper" wants a newspaper's name. It is
expensive (a transformer pass per sentence), so the engine runs it only on the sentences of the first few passages
(`EngineSettings.reader_depth`), and combines its logit with the selector's (`combine`): the two miss different
questions.

The model ships in index/models: an int8 ONNX file run by onnxruntime (no torch), its sha256 checked when
loaded, and reader.json with what it was trained on, its figures and the combination's weights. The tokenizer is
the bundled embedding model's (the reader was initialised from its first layers), checked by sha256 too.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from citeqa.index.models.onnx_export import sha256_file

MODEL_FOLDER = Path(__file__).resolve().parent.parent / "models"
INFO_FILE = "reader.json"
MODEL_FORMAT = 1
CACHE_SIZE = 4096  # (question, sentence) scores kept: a question asked again, or paged, reads nothing twice


def reader_input(title: str, text: str) -> str:
    """The second text the reader sees: the passage's title, then the sentence (a sentence alone often lacks its
    subject: "It was founded in 1851")."""
    return f"{title}: {text}" if title else text


def logit(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(probabilities, 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


def combined_logit(weights: Mapping[str, float], selector_probabilities: np.ndarray, reader_logits: np.ndarray) -> np.ndarray:
    """The combination's log-odds that a sentence holds the answer: weights["selector"] x the selector's logit +
    weights["reader"] x the reader's + weights["intercept"] (the one formula training fits and the engine applies)."""
    return weights["selector"] * logit(selector_probabilities) + weights["reader"] * reader_logits + weights["intercept"]


def encode_pairs(tokenizer, question: str, texts: Sequence[str], max_length: int) -> dict[str, np.ndarray]:
    """The ONNX graph's inputs for (question, text) pairs: word pieces as BERT reads a pair ([CLS] question [SEP]
    text [SEP], type ids 0 then 1), truncated to max_length, padded to the longest pair. Training uses this too."""
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.no_padding()
    encodings = tokenizer.encode_batch([(question, text) for text in texts])
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


class Reader:
    """Scores (question, sentence) pairs: logits, higher meaning more likely to hold the answer."""

    def __init__(self, folder: Path = MODEL_FOLDER, threads: int | None = None) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        from citeqa.index.models.embedding import DEFAULT_MODEL, resolve_model_path
        from citeqa.index.models.onnx_encoder import available_cores

        self.folder = Path(folder)
        self.info = json.loads((self.folder / INFO_FILE).read_text(encoding="utf-8"))
        if self.info.get("format") != MODEL_FORMAT:
            raise ValueError(f"{self.folder / INFO_FILE}: reader model format {self.info.get('format')}, expected {MODEL_FORMAT}")
        model_path = self.folder / self.info["file"]
        self.sha256 = sha256_file(model_path)
        if self.sha256 != self.info["sha256"]:
            raise RuntimeError(f"{model_path} does not match the sha256 in {INFO_FILE}: the reader model is damaged")
        tokenizer_path = Path(resolve_model_path(DEFAULT_MODEL)) / "tokenizer.json"
        if sha256_file(tokenizer_path) != self.info["tokenizer_sha256"]:
            raise RuntimeError(f"{tokenizer_path} is not the tokenizer the reader was trained with")
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.max_length = int(self.info["max_length"])
        self.weights = {key: float(self.info["combination"][key]) for key in ("selector", "reader", "intercept")}

        onnxruntime.disable_telemetry_events()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or available_cores()
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self._cache: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()  # the tokenizer's settings and the cache are shared by request threads

    def logits(self, question: str, texts: Sequence[str]) -> np.ndarray:
        """One logit per text (already through `reader_input`); texts read before with this question come from the cache."""
        scores = np.zeros(len(texts), dtype=np.float64)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, text in enumerate(texts):
                cached = self._cache.get((question, text))
                if cached is None:
                    missing.setdefault(text, []).append(i)
                else:
                    self._cache.move_to_end((question, text))
                    scores[i] = cached
            if not missing:
                return scores
            unread = list(missing)
            pairs = [encode_pairs(self.tokenizer, question, [text], self.max_length) for text in unread]
        # One pair per run, never a batch: int8 dynamic quantisation scales activations per tensor, so in a batch a
        # sentence's score would depend on the sentences read with it (by up to 0.44 logits), and a cached score on
        # which request read it first. Alone, a pair always gets the same score; batched was only 15% faster.
        read = np.array([float(self.session.run(None, inputs)[0].reshape(-1)[0]) for inputs in pairs])
        with self._lock:
            for text, value in zip(unread, read.tolist(), strict=True):
                scores[missing[text]] = value
                self._cache[(question, text)] = value
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return scores

    def combine(self, selector_probabilities: np.ndarray, reader_logits: np.ndarray) -> np.ndarray:
        """P(the sentence holds the answer) from both signals: a logistic model over the selector's logit and the
        reader's, fitted on held-out folds (eval/train_reader.py)."""
        return 1.0 / (1.0 + np.exp(-combined_logit(self.weights, selector_probabilities, reader_logits)))
