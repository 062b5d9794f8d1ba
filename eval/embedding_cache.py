"""An on-disk cache of text embeddings for evaluation runs, keyed by model fingerprint and text.

Index settings that change chunking still leave most texts (every sentence, many chunks) the same,
so a sweep over chunk sizes embeds each distinct text once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from citeqa.index.engine import EngineSettings
from citeqa.index.models.embedding import DEFAULT_BATCH_SIZE, Embedder


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class CachedEmbedder(Embedder):
    """An Embedder that looks texts up in `folder/<model fingerprint>.npz` before embedding them."""

    def __init__(self, folder: Path, model: str, batch_size: int = DEFAULT_BATCH_SIZE, **embedder_options) -> None:
        super().__init__(model, batch_size, **embedder_options)
        self.folder = folder
        self._vectors: dict[str, np.ndarray] = {}
        self._loaded = False
        self._dirty = False

    @classmethod
    def for_settings(cls, folder: Path, settings: EngineSettings) -> CachedEmbedder:
        """The cached counterpart of `settings.embedder()`: same model, encoder, batch size and ONNX folder."""
        return cls(folder, settings.model, settings.batch_size, encoder=settings.encoder, models_dir=settings.models_dir)

    @property
    def path(self) -> Path:
        if self.encoder == "torch":
            return self.folder / f"embeddings-{self.fingerprint[:16]}.npz"
        # Another backend's vectors differ slightly: they are kept apart, keyed by the ONNX file's hash too.
        encoder = hashlib.sha256(self.encoder_id.encode()).hexdigest()[:12]
        return self.folder / f"embeddings-{self.fingerprint[:16]}-{self.encoder}-{encoder}.npz"

    def _load_cache(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self.path.is_file():
            with np.load(self.path) as stored:
                self._vectors = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))

    def embed(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        self._load_cache()
        keys = [_key(t) for t in texts]
        missing = sorted({k: i for i, k in enumerate(keys) if k not in self._vectors}.items(), key=lambda item: item[1])
        if missing:
            fresh = super().embed([texts[i] for _, i in missing], show_progress=show_progress)
            for (key, _), vector in zip(missing, fresh, strict=True):
                self._vectors[key] = vector
            self._dirty = len(missing) > 1 or self._dirty  # single query vectors are not worth a rewrite
        if not texts:
            return super().embed([])
        return np.vstack([self._vectors[k] for k in keys]).astype(np.float32)

    def save(self) -> None:
        if not self._dirty:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        keys = list(self._vectors)
        staging = self.path.with_suffix(".tmp.npz")
        np.savez(staging, keys=np.array(keys), vectors=np.vstack([self._vectors[k] for k in keys]))
        staging.replace(self.path)
        self._dirty = False
