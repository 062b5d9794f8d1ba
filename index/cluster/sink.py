"""The Ray Data sink that writes whole segments: each write task gathers at least `segment_documents` rows, writes
them as one segment on its worker and ships it back as bytes; the driver keeps what every task returned."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ray.data import Datasink
from ray.data.block import Block, BlockAccessor
from ray.data.datasource.datasink import WriteResult

from citeqa.index.cluster.stages import write_segment_of


class SegmentSink(Datasink[dict[str, Any]]):
    def __init__(self, dimension: int, segment_documents: int) -> None:
        self.dimension = dimension
        self.segment_documents = segment_documents  # large segments, not one per block
        self.returns: list[dict[str, Any]] = []

    @property
    def min_rows_per_write(self) -> int:
        return self.segment_documents

    def write(self, blocks: Iterable[Block], ctx: Any) -> dict[str, Any]:
        return write_segment_of([BlockAccessor.for_block(block).to_pandas() for block in blocks], self.dimension)

    def on_write_complete(self, write_result: WriteResult[dict[str, Any]]) -> None:
        # Called once, in the driver, with the return of every write task that succeeded (a retried task's once).
        self.returns = list(write_result.write_returns)
