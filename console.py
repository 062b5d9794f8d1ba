"""Progress on the command line: a bar per stage on a terminal, plain lines otherwise (logs, pipes, CI).

Everything goes to stderr, so stdout keeps only the summary a script may read (and, under `citeqa mcp`, only the
protocol).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import TextIO

from tqdm import tqdm

from citeqa.index.progress import Progress, Stage

UNITS = {Stage.PARSING: "file", Stage.SPLITTING: "doc", Stage.EMBEDDING: "text", Stage.COMMITTING: "commit"}
NOUNS = {Stage.PARSING: "files", Stage.SPLITTING: "documents", Stage.EMBEDDING: "texts", Stage.COMMITTING: "commit"}


class TerminalProgress(Progress):
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()
        self.bars: dict[Stage, tqdm] = {}
        self.started: dict[Stage, float] = {}

    def begin(self, stage: Stage, total: int) -> None:
        self.started[stage] = time.perf_counter()
        if self.interactive:
            self.bars[stage] = tqdm(total=total, desc=f"{stage.value:>10}", unit=UNITS.get(stage, "it"), file=self.stream)
        else:
            print(f"{stage.value}: {total} {NOUNS.get(stage, 'items')}", file=self.stream, flush=True)

    def advance(self, stage: Stage, amount: int = 1) -> None:
        bar = self.bars.get(stage)
        if bar is not None:
            bar.update(amount)

    def end(self, stage: Stage) -> None:
        bar = self.bars.pop(stage, None)
        if bar is not None:
            bar.close()
        else:
            seconds = time.perf_counter() - self.started.get(stage, time.perf_counter())
            print(f"{stage.value}: done in {seconds:.1f}s", file=self.stream, flush=True)

    def files(self, doc_ids: Iterable[str], stage: Stage, reason: str | None = None) -> None:
        pass  # the summary lists every file's outcome once the work is done
