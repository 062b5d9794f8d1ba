"""The embedding model exported to ONNX on this machine from the bundled weights, once, and cached.

First use exports the model's transformer to ONNX with `torch.onnx.export` (from the model folder's own weights,
nothing is downloaded), quantises a copy's weights to int8 with onnxruntime's dynamic quantisation, and keeps both
under `<models_dir>/onnx-<first 16 hex of the source model's fingerprint>/` with `export.json` recording each
file's sha256. The export runs in a child process, so the process that encodes (a server, onnx_encoder.py) never
imports torch or sentence-transformers; later uses only load the cached file and check its sha256.

    python -m citeqa.index.models.onnx_export export --model PATH --fingerprint HEX --out FOLDER   (what the child runs)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Set before onnxruntime is first imported (lazily, here and in onnx_encoder.py, which imports this module first).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

ONNX_VARIANTS = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}
INFO_FILE = "export.json"
log = logging.getLogger("citeqa.onnx")
EXPORT_OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "last_hidden_state"


class EncoderUnsupportedError(ValueError):
    """The model folder is not one this encoder reproduces exactly (mean pooling over a transformer)."""


@dataclass(frozen=True)
class ModelLayout:
    """What sentence-transformers' config files say about the model, as far as encoding depends on it."""

    max_seq_length: int
    dimension: int
    normalize: bool


def read_layout(model_path: Path) -> ModelLayout:
    """Check the folder is Transformer → Pooling(mean) [→ Normalize] and read its length limit and dimension."""
    try:
        modules = json.loads((model_path / "modules.json").read_text(encoding="utf-8"))
        types = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling_path = model_path / next(m["path"] for m in modules if m["type"].endswith("Pooling")) / "config.json"
        pooling = json.loads(pooling_path.read_text(encoding="utf-8"))
        bert = json.loads((model_path / "sentence_bert_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        message = f"{model_path} is not a sentence-transformers model folder the ONNX encoder reads ({exc})"
        raise EncoderUnsupportedError(message) from exc
    if types[:2] != ["Transformer", "Pooling"] or not set(types[2:]) <= {"Normalize"}:
        raise EncoderUnsupportedError(f"the ONNX encoder supports Transformer → Pooling [→ Normalize] models, not {types}")
    modes = [key for key, on in pooling.items() if key.startswith("pooling_mode_") and on]
    if modes != ["pooling_mode_mean_tokens"]:
        raise EncoderUnsupportedError(f"the ONNX encoder supports mean pooling only, not {modes}")
    if not (model_path / "tokenizer.json").is_file():
        raise EncoderUnsupportedError(f"{model_path} has no tokenizer.json (a fast tokenizer) for the ONNX encoder")
    return ModelLayout(int(bert["max_seq_length"]), int(pooling["word_embedding_dimension"]), "Normalize" in types)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_folder(models_dir: Path, source_fingerprint: str) -> Path:
    return models_dir / f"onnx-{source_fingerprint[:16]}"


# -- export (runs in a child process: the only place torch is imported) ---------------------------------------


def export(model_path: Path, out: Path, source_fingerprint: str) -> dict:
    """Write model.onnx (fp32) and model.int8.onnx into `out`, then export.json (last) with their hashes."""
    import warnings

    import onnxruntime
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    layout = read_layout(model_path)
    # Eager attention exports as plain MatMul/Softmax, which dynamic quantisation and ORT's fusions both know.
    model = AutoModel.from_pretrained(str(model_path), attn_implementation="eager").eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

    sample = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.int64)
    args = (sample, (sample > 0).to(torch.int64), torch.zeros_like(sample))
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUT_NAMES, OUTPUT_NAME)}
    fp32 = out / ONNX_VARIANTS["onnx"]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation notes about the TorchScript-based exporter
        torch.onnx.export(
            LastHiddenState(model),
            args,
            str(fp32),
            dynamo=False,
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
            opset_version=EXPORT_OPSET,
            do_constant_folding=True,
        )
    int8 = out / ONNX_VARIANTS["onnx-int8"]
    # Per-channel scales: one scale per output column keeps the int8 vectors far closer to the fp32 ones than a
    # single scale per weight matrix (or reduce_range) does (docs/tuning.md, "Quote selector and ONNX export").
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
    info = {
        "source_model": str(model_path),
        "source_fingerprint": source_fingerprint,
        "max_seq_length": layout.max_seq_length,
        "dimension": layout.dimension,
        "opset": EXPORT_OPSET,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "files": {variant: {"file": name, "sha256": sha256_file(out / name)} for variant, name in ONNX_VARIANTS.items()},
    }
    (out / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True), encoding="utf-8")
    return info


def ensure_exported(model_path: Path, source_fingerprint: str, models_dir: Path) -> Path:
    """The cache folder for this source model, exported first (in a child process) when it is not there yet.

    The export is written to a staging folder and renamed into place, so a folder with export.json is complete;
    when two processes export at once, the first rename wins and the other's copy is dropped.
    """
    folder = cache_folder(models_dir, source_fingerprint)
    if (folder / INFO_FILE).is_file():
        return folder
    models_dir.mkdir(parents=True, exist_ok=True)
    log.warning("exporting %s to ONNX (fp32 and int8) into %s, once", model_path, folder)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=models_dir))
    try:
        command = [sys.executable, "-m", "citeqa.index.models.onnx_export", "export"]
        command += ["--model", str(model_path), "--fingerprint", source_fingerprint, "--out", str(staging)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not (staging / INFO_FILE).is_file():
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            raise RuntimeError(f"exporting {model_path} to ONNX failed (exit {done.returncode}):\n{tail}")
        staging.chmod(0o755)  # mkdtemp made it private
        if folder.exists() and not (folder / INFO_FILE).is_file():
            shutil.rmtree(folder)  # an incomplete folder left by something other than this function
        try:
            os.rename(staging, folder)
        except OSError:
            if not (folder / INFO_FILE).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m citeqa.index.models.onnx_export", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("export", help="export a model folder to ONNX (fp32 and int8) into an empty folder")
    run.add_argument("--model", type=Path, required=True)
    run.add_argument("--fingerprint", required=True, help="the source model's fingerprint, recorded in export.json")
    run.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    info = export(args.model, args.out, args.fingerprint)
    print(json.dumps(info["files"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
