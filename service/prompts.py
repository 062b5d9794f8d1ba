"""Prompt templates are data: text files in prompts/, loaded by name and filled with str.format."""

from __future__ import annotations

from functools import cache

from citeqa.home import bundled

PROMPTS_DIR = bundled("prompts")


@cache
def load_prompt(name: str) -> str:
    path = PROMPTS_DIR / f"{name}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"no prompt template named '{name}' in {PROMPTS_DIR}")
    return path.read_text(encoding="utf-8").strip()


def render(name: str, **fields: str) -> str:
    return load_prompt(name).format(**fields)
