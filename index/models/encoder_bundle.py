"""The encoder a process runs, packed as bytes so another process (a Ray worker, maybe on another machine) runs the
very same ONNX file.

A worker must never export the model again: an export on another machine (another torch, another onnx) could
give another file, and the collection's manifest names the sha256 of the file that built it. So the bundle holds
the driver's exported file itself, its export record, and the few small files of the model folder the ONNX encoder
reads (the pipeline layout and the tokenizer); not the weights, which only an export needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from citeqa.index.models.embedding import Embedder
from citeqa.index.models.onnx_export import INFO_FILE, cache_folder


class EncoderBundleError(ValueError):
    """The encoder cannot be packed (torch has no file to ship) or the bundle does not unpack to it."""


@dataclass(frozen=True)
class EncoderBundle:
    model_name: str  # as the manifest records it (`bundled:all-MiniLM-L6-v2`), not the worker's temporary folder
    fingerprint: str  # of the driver's model folder, weights included (the worker's copy has no weights)
    encoder: str  # onnx or onnx-int8
    encoder_id: str  # what the driver's manifest records: the variant and the sha256 of its file
    batch_size: int
    model_files: dict[str, bytes]  # path inside the model folder -> bytes
    export_files: dict[str, bytes]  # export.json and the variant's ONNX file

    def unpack(self, folder: Path, threads: int | None = None) -> Embedder:
        """Write the bundle under `folder` and load an encoder from it; refuses (EncoderBundleError) one whose
        ONNX file is not the driver's."""
        model = folder / "model"
        export = cache_folder(folder / "models", self.fingerprint)
        for base, files in ((model, self.model_files), (export, self.export_files)):
            for name, data in files.items():
                path = base / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        # An actor uses the CPUs its scheduler gave it and no more: every core would take the other actors' share.
        embedder = Embedder(
            str(model),
            self.batch_size,
            encoder=self.encoder,
            models_dir=folder / "models",
            threads=threads,
            bulk_on_every_core=False,
        )
        # The copy has no weights, so its own fingerprint would differ; the export folder is found by the driver's.
        embedder.__dict__["fingerprint"] = self.fingerprint
        embedder.model_name = self.model_name
        embedder.load()
        if embedder.encoder_id != self.encoder_id:
            raise EncoderBundleError(f"the shipped encoder unpacked as {embedder.encoder_id}, not {self.encoder_id}")
        return embedder


def bundle_encoder(embedder: Embedder) -> EncoderBundle:
    """Pack a loaded ONNX `embedder` (its export must be on this machine, as loading makes sure)."""
    if embedder.encoder == "torch":
        raise EncoderBundleError("a cluster ingestion ships the ONNX file workers run: use CITEQA_ENCODER=onnx or onnx-int8")
    if embedder.models_dir is None:
        raise EncoderBundleError("the ONNX encoder needs models_dir")
    embedder.load()
    root = Path(embedder.model_path)
    modules = json.loads((root / "modules.json").read_text(encoding="utf-8"))
    names = ["modules.json", "sentence_bert_config.json", "tokenizer.json"]
    names += [f"{m['path']}/config.json" for m in modules if m["type"].endswith("Pooling")]
    export = cache_folder(embedder.models_dir, embedder.fingerprint)
    info = json.loads((export / INFO_FILE).read_text(encoding="utf-8"))
    onnx_file = info["files"][embedder.encoder]["file"]
    return EncoderBundle(
        model_name=embedder.model_name,
        fingerprint=embedder.fingerprint,
        encoder=embedder.encoder,
        encoder_id=embedder.encoder_id,
        batch_size=embedder.batch_size,
        model_files={name: (root / name).read_bytes() for name in names},
        export_files={name: (export / name).read_bytes() for name in (INFO_FILE, onnx_file)},
    )
