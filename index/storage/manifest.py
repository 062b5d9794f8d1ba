"""What built an index, and the check that refuses an index built with other settings."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FORMAT_VERSION = 3  # 3: a collection of immutable segments and a SQLite catalog (2: one folder per version)
REBUILD_HINT = "rebuild it with `citeqa index --rebuild` (or delete the index folder)"


class IndexMismatchError(RuntimeError):
    """The index on disk was built with settings other than the ones in force."""


class IndexMissingError(RuntimeError):
    """There is no index where one was expected."""


@dataclass(frozen=True)
class IndexConfig:
    """Everything that changes what the index contains; two indexes agree only if these agree."""

    model_name: str
    model_fingerprint: str
    dimension: int
    chunker: dict[str, object]
    lexical: dict[str, Any]  # LexicalSettings' fields by name, as JSON
    format_version: int = FORMAT_VERSION
    # The backend that computed the vectors: "torch", or "onnx…:sha256:<hash of the ONNX file>" (Embedder.encoder_id).
    # Manifests written before backends existed have none, and were all built with torch.
    encoder: str = "torch"

    def differences(self, other: IndexConfig) -> list[str]:
        mine, theirs = asdict(self), asdict(other)
        return [f"{key}: index has {theirs[key]!r}, settings want {mine[key]!r}" for key in mine if mine[key] != theirs[key]]


@dataclass
class Manifest:
    """Written once, when a collection is created; each document's content hash lives in the catalog."""

    config: IndexConfig
    built_at: str = ""

    def write(self, path: Path) -> None:
        payload = {
            "format_version": self.config.format_version,
            "model": {
                "name": self.config.model_name,
                "fingerprint": self.config.model_fingerprint,
                "dimension": self.config.dimension,
                "encoder": self.config.encoder,
            },
            "chunker": self.config.chunker,
            "lexical": self.config.lexical,
            "built_at": self.built_at,
        }
        path.write_text(json.dumps(payload, indent=2, sort_keys=True), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            config = IndexConfig(
                model_name=payload["model"]["name"],
                model_fingerprint=payload["model"]["fingerprint"],
                dimension=int(payload["model"]["dimension"]),
                chunker=payload["chunker"],
                lexical=payload["lexical"],
                format_version=int(payload["format_version"]),
                encoder=str(payload["model"].get("encoder", "torch")),
            )
            return cls(config, payload.get("built_at", ""))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexMismatchError(f"the index manifest {path} is unreadable ({exc}); {REBUILD_HINT}") from exc

    def require_compatible(self, expected: IndexConfig) -> None:
        differences = expected.differences(self.config)
        if differences:
            hint = REBUILD_HINT
            if self.config.encoder != expected.encoder:
                # An index built before the default became ONNX: it can be kept by asking for the encoder that built it.
                built_by = self.config.encoder.split(":", 1)[0]
                hint += f", or search it with the encoder that built it (CITEQA_ENCODER={built_by})"
            raise IndexMismatchError("the index was built with other settings (" + "; ".join(differences) + f"); {hint}")
