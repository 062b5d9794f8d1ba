"""What runs on a cluster's workers: files parsed and split (a map step), embedded (one encoder per actor), and written
into whole segments (the sink's write tasks). Nothing here touches the collection.

Rows carry one file each, as pandas columns: `position` (its place in the job's list, so any row can be traced to
exactly one file), `doc_id`, `status` (split / prepared / unchanged / failed), `sha256`, `reason` (why it failed),
`unsupported` (failed as a kind of file citeqa does not read), `media_type` and `payload` (the pickled split or
prepared document: Ray Data moves it as bytes).
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from citeqa.index.models.encoder_bundle import EncoderBundle
from citeqa.index.parsing.dispatch import ParseLimits
from citeqa.index.storage.incoming import ShippedSegment, pack_segment
from citeqa.index.storage.manifest import IndexConfig
from citeqa.index.storage.segment_writer import PreparedDocument, write_segment
from citeqa.index.text.documents import DocumentError, UnsupportedFormatError
from citeqa.index.writing.builder import IndexSettings, Preparer, SplitDocument, split_documents
from citeqa.index.writing.ingest import document_from_bytes

COLUMNS = ["position", "doc_id", "status", "sha256", "reason", "unsupported", "media_type", "payload"]


def parse_and_split(batch: pd.DataFrame, limits: ParseLimits, settings: IndexSettings, committed: dict[str, str]) -> pd.DataFrame:
    """Parse each file's bytes and split the document; a document whose text hash is `committed[doc_id]` (the
    collection's when the job began) is marked unchanged and goes no further, so it is never embedded."""
    rows = []
    for item in batch.itertuples(index=False):
        row = {"position": item.position, "doc_id": item.doc_id, "sha256": "", "reason": "", "unsupported": False}
        row.update(media_type="", payload=b"")
        try:
            document, _ = document_from_bytes(item.raw, item.filename, item.doc_id, item.source, limits)
        except DocumentError as exc:
            rows.append({**row, "status": "failed", "reason": str(exc), "unsupported": isinstance(exc, UnsupportedFormatError)})
            continue
        row["sha256"], row["media_type"] = document.sha256, document.meta["media_type"]
        if committed.get(document.id) == document.sha256:
            rows.append({**row, "status": "unchanged"})
            continue
        split = split_documents([document], settings)[0]
        rows.append({**row, "status": "split", "payload": pickle.dumps(split, protocol=pickle.HIGHEST_PROTOCOL)})
    return pd.DataFrame(rows, columns=COLUMNS)


class EmbedActor:
    """One encoder per actor, unpacked from the driver's bundle (its exact ONNX file, never exported here)."""

    def __init__(self, bundle: list[Any], settings: IndexSettings, threads: int) -> None:
        import ray

        shipped: EncoderBundle = ray.get(bundle[0])  # wrapped in a list so Ray Data hands the reference over as is
        self._folder = tempfile.TemporaryDirectory(prefix="citeqa-encoder-")
        embedder = shipped.unpack(Path(self._folder.name), threads=threads)
        self.preparer = Preparer(embedder, settings)
        # What built this actor's vectors, in full: the committer compares it with the collection's manifest.
        self.config = asdict(settings.config_for(embedder))

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        todo = batch["status"] == "split"
        split: list[SplitDocument] = [pickle.loads(payload) for payload in batch.loc[todo, "payload"]]
        prepared = self.preparer.prepare_split(split)
        out = batch.copy()
        out.loc[todo, "payload"] = pd.Series(
            [pickle.dumps((p, self.config), protocol=pickle.HIGHEST_PROTOCOL) for p in prepared], index=out.index[todo]
        )
        out.loc[todo, "status"] = "prepared"
        return out


def write_segment_of(blocks: Iterable[pd.DataFrame], dimension: int) -> dict[str, Any]:
    """One write task: the prepared documents of its rows written as one segment (in folder order) and shipped as
    bytes, with what the other rows were (unchanged with their hash, failed with their reason) and each parsed
    file's media type."""
    frame = pd.concat(list(blocks), ignore_index=True) if blocks else pd.DataFrame(columns=COLUMNS)
    frame = frame.sort_values("position", kind="stable")
    prepared: list[PreparedDocument] = []
    configs = set()
    for payload in frame.loc[frame["status"] == "prepared", "payload"]:
        document, config = pickle.loads(payload)
        prepared.append(document)
        configs.add(repr(config))
        last_config = config
    segment: ShippedSegment | None = None
    if prepared:
        if len(configs) != 1:
            raise RuntimeError("the documents of one segment were embedded with different settings")
        with tempfile.TemporaryDirectory(prefix="citeqa-segment-") as scratch:
            info = write_segment(Path(scratch), prepared, dimension, durable=False)
            segment = pack_segment(Path(scratch) / info.name, info, IndexConfig(**last_config))
    other = frame[frame["status"].isin(["unchanged", "failed"])]
    return {
        "segment": segment,
        "positions": frame["position"].astype(int).tolist(),
        "unchanged": {r.doc_id: r.sha256 for r in other.itertuples() if r.status == "unchanged"},
        "failed": [(int(r.position), r.reason, bool(r.unsupported)) for r in other.itertuples() if r.status == "failed"],
        "media_types": {int(r.position): r.media_type for r in frame.itertuples() if r.status != "failed"},
    }
