"""Writes docs/configuration.md, the reference of every setting, from the Settings class itself.

    python -m citeqa.eval.config_doc            # rewrite docs/configuration.md
    python -m citeqa.eval.config_doc --check    # exit 1 when the committed file is out of date

It lives with the project's other maintenance commands (eval/ may read settings; the service never needs this),
and tests/test_configuration_doc.py fails when a setting is missing from the file or the file is stale.
"""

from __future__ import annotations

import argparse
import enum
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

from annotated_types import Ge, Gt, Le, Lt
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from citeqa.settings import ENV_PREFIX, Settings

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"  # the repository is the package
MIB = 1024 * 1024

HEADER = """# Configuration

Generated from `settings.py` by `python -m citeqa.eval.config_doc`: edit the settings' descriptions there and run it
again (a test fails when this file and the settings disagree).

Every setting is an environment variable (or a line in a `.env` file in the working directory), read by one
pydantic-settings class, `citeqa.settings.Settings`. A value that is not valid stops any `citeqa` command before it
touches anything, naming the setting. Settings that shape what an index holds (model, encoder, chunking, title use,
chunk and sentence vectors, BM25) are recorded in its manifest; changing one needs `citeqa index --rebuild`.
"""


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def type_name(annotation: Any) -> str:
    """The type as a reader sets it: `int`, `path or unset`, `one of: hybrid, dense, lexical`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        inner = " or ".join(type_name(arg) for arg in members)
        return f"{inner} or unset" if len(members) < len(typing.get_args(annotation)) else inner
    if origin is Literal:
        return "one of: " + ", ".join(str(value) for value in typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of: " + ", ".join(str(member.value) for member in annotation)
    if annotation is SecretStr:
        return "secret text"
    if annotation is Path:
        return "path"
    return {int: "int", float: "float", bool: "bool", str: "text"}.get(annotation, str(annotation))


def bounds(field: FieldInfo) -> str:
    """The allowed range, from the field's constraints: `>= 1`, `0 to 1`, `> 0`."""
    low = high = ""
    for constraint in field.metadata:
        if isinstance(constraint, Ge):
            low = f">= {constraint.ge}"
        elif isinstance(constraint, Gt):
            low = f"> {constraint.gt}"
        elif isinstance(constraint, Le):
            high = f"<= {constraint.le}"
        elif isinstance(constraint, Lt):
            high = f"< {constraint.lt}"
    if low.startswith(">=") and high.startswith("<="):
        return f"{low[3:]} to {high[3:]}"
    return ", ".join(part for part in (low, high) if part)


def default_text(name: str, field: FieldInfo) -> str:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if "shown_default" in extra:  # worked out at start-up (a path in the data home): said in words
        return str(extra["shown_default"])
    if field.default_factory is not None:
        raise ValueError(f"setting {name}: a default made at start-up needs shown_default(...) to be documented")
    value = Settings.default(name)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if value == "":
        return '"" (empty)'
    if isinstance(value, int) and name.endswith("_bytes") and value >= MIB and value % MIB == 0:
        return f"{value} ({value // MIB} MiB)"
    return str(value)


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    rows = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if not field.description:
            raise ValueError(f"setting {name} has no description: give it Field(description=...) in settings.py")
        kind = type_name(field.annotation)
        allowed = bounds(field)
        kind = f"{kind}, {allowed}" if allowed else kind
        rows.append(f"| `{env_name(name)}` | {cell(kind)} | {cell(default_text(name, field))} | {cell(field.description)} |")
    return HEADER + "\n" + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/configuration.md is out of date")
    parser.add_argument("--out", type=Path, default=DOC_PATH, help="where to write (default: docs/configuration.md)")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run python -m citeqa.eval.config_doc", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(Settings.model_fields)} settings)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
