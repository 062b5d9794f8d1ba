"""Where citeqa keeps its data, and where its bundled files are.

Indexes and original files live in the data home, never inside the installed package: `CITEQA_HOME`, or the
per-user data folder (`$XDG_DATA_HOME/citeqa`, by default `~/.local/share/citeqa`). A per-user default means
`citeqa serve`, `citeqa index` and `citeqa ask` see the same collection from whatever folder they are run.
The seed documents and prompt templates ship inside the package and are found with importlib.resources.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


def default_home() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "citeqa"


def bundled(name: str) -> Path:
    """A folder shipped in the package: 'seeds' (the default corpus) or 'prompts' (templates)."""
    return Path(str(resources.files("citeqa").joinpath(name)))
