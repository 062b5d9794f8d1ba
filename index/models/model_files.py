"""The learned models shipped in index/models/ as JSON (the quote selector's, the head ranking's): reading one and
refusing one that does not fit the code that will run it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import cast


def read_model(file_name: str, path: Path | None = None) -> dict[str, object]:
    """The model shipped in the package under `file_name`, or the JSON file at `path`."""
    if path is None:
        text = resources.files("citeqa.index.models").joinpath(file_name).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return json.loads(text)


def check_model(model: Mapping[str, object], kind: str, model_format: int, feature_names: Sequence[str]) -> None:
    """Raise ValueError unless the model has the format and the feature columns the code computes: a model fitted
    on other columns would score silently wrong."""
    if model.get("format") != model_format:
        raise ValueError(f"{kind} model format {model.get('format')!r}, expected {model_format}")
    names = tuple(cast(Iterable[str], model["feature_names"]))  # the JSON's list, compared with the code's below
    if names != tuple(feature_names):
        raise ValueError(f"{kind} model features {names} differ from the code's {tuple(feature_names)}; retrain it")
