"""The wheel holds every package of the tree: pyproject's package list is written by hand (the repository root is
the package `citeqa`, which setuptools' discovery cannot map), so a new sub-package must be added to it."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP = {".venv", ".git", "build", "dist", "tests", "bench"}


def test_every_package_folder_is_in_the_wheel() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    folders = {
        ".".join(["citeqa", *init.parent.relative_to(ROOT).parts])
        for init in ROOT.rglob("__init__.py")
        if not SKIP & set(init.relative_to(ROOT).parts)
    }
    assert folders - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
