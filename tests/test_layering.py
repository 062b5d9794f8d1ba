"""The house's floors: a module may import from its own floor or the floors below it, never from above.

Every `import` is read, including those inside functions and under TYPE_CHECKING: an import deferred to dodge a
cycle is still a dependency running the wrong way.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Bottom to top. A module belongs to the floor of the longest prefix that names it.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("citeqa", "citeqa.home", "citeqa.index.text", "citeqa.index.progress"),
    ("citeqa.index.parsing", "citeqa.index.models"),
    ("citeqa.index.storage",),
    ("citeqa.index.ranking",),
    ("citeqa.index.answering",),
    ("citeqa.index.writing",),
    # index/cluster/ (a Ray ingestion) drives an Engine's writer from outside: beside the engine, never below it.
    ("citeqa.index", "citeqa.index.engine", "citeqa.index.cluster"),
    ("citeqa.settings",),
    # console.py draws progress on a terminal for the commands (cli, eval's scripts); a server never draws.
    ("citeqa.console", "citeqa.service", "citeqa.eval"),
    ("citeqa.cli", "citeqa.__main__", "citeqa.bench", "citeqa.tests"),
)
# Rooms on one floor that must not know each other either.
SIBLINGS_APART = (
    ("citeqa.index.parsing", "citeqa.index.models"),
    ("citeqa.service", "citeqa.eval"),
    ("citeqa.service", "citeqa.console"),
)


def floor_of(module: str) -> tuple[int, str]:
    """(floor number, the prefix that placed it)."""
    best: tuple[int, str] | None = None
    for number, prefixes in enumerate(FLOORS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[1])):
                best = (number, prefix)
    if best is None:
        raise AssertionError(f"{module} is on no floor; add it to FLOORS")
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["citeqa", *parts])


def imports_of(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            # `from citeqa.index.storage import segment` imports the submodule: judge the submodule.
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name == "citeqa" or name.startswith("citeqa.")]


def package_files() -> list[Path]:
    skip = {".venv", ".git", "build", "dist", "seeds", "prompts", "docs"}
    return sorted(p for p in ROOT.rglob("*.py") if not skip & set(p.relative_to(ROOT).parts))


def resolve(name: str) -> str:
    """`citeqa.index.storage.segment.Segment` -> the longest prefix that is a module or package of the tree."""
    parts = name.split(".")
    while len(parts) > 1:
        relative = Path(*parts[1:])
        if (ROOT / relative).with_suffix(".py").is_file() or (ROOT / relative / "__init__.py").is_file():
            return ".".join(parts)
        parts.pop()
    return "citeqa"


def test_every_module_imports_only_its_own_floor_or_below() -> None:
    upward = []
    for path in package_files():
        module = module_name(path)
        own, own_prefix = floor_of(module)
        for line, name in imports_of(path, module):
            target = resolve(name)
            floor, prefix = floor_of(target)
            if floor > own:
                upward.append(f"{path.relative_to(ROOT)}:{line} ({own_prefix}, floor {own}) imports {target} (floor {floor})")
            if any({own_prefix, prefix} == set(pair) for pair in SIBLINGS_APART):
                upward.append(f"{path.relative_to(ROOT)}:{line} ({own_prefix}) imports its sibling {target}")
    assert not upward, "imports that run against the floors:\n" + "\n".join(sorted(set(upward)))


@pytest.mark.parametrize(
    ("module", "target", "allowed"),
    [
        ("citeqa.index.storage.segment", "citeqa.index.text.spans", True),
        ("citeqa.index.text.documents", "citeqa.index.writing.ingest", False),
        ("citeqa.index.models.embedding", "citeqa.settings", False),
        ("citeqa.service.app", "citeqa.index.engine", True),
    ],
)
def test_the_floor_rule_itself(module: str, target: str, allowed: bool) -> None:
    """The rule the test above applies, on cases whose answer is known."""
    assert (floor_of(target)[0] <= floor_of(module)[0]) is allowed
