"""Table rows as lines a person (and a sentence splitter) can read.

A row becomes "Site: North cirque; Altitude: 2,410 m; Ice loss: 12 m". Every row names its columns, so a passage
cut from the middle of a long table still says what its numbers are, and a question that names a column ("the
ice loss at North cirque") shares words with the row that answers it. "cell | cell" rows lose both.
"""

from __future__ import annotations

from collections.abc import Sequence

CELL_SEPARATOR = "; "


def _clean(cell: str) -> str:
    return " ".join(cell.split())


def looks_like_header(rows: Sequence[Sequence[str]]) -> bool:
    """Without markup that says so: a first row with every cell filled, above at least one more row."""
    return len(rows) >= 2 and bool(rows[0]) and all(_clean(cell) for cell in rows[0])


def table_lines(rows: Sequence[Sequence[str]], *, header: bool | None = None) -> list[str]:
    """One line per non-empty row. `header` says whether the first row names the columns (None: guess)."""
    cleaned = [[_clean(cell) for cell in row] for row in rows]
    if header is None:
        header = looks_like_header(cleaned)
    if not header or len(cleaned) < 2:
        return [line for row in cleaned if (line := CELL_SEPARATOR.join(cell for cell in row if cell))]
    names, body = cleaned[0], cleaned[1:]
    lines = []
    for row in body:
        labelled = [f"{names[i]}: {cell}" if i < len(names) and names[i] else cell for i, cell in enumerate(row) if cell]
        if labelled:
            lines.append(CELL_SEPARATOR.join(labelled))
    return lines
