"""The embedding model run by ONNX Runtime: exported on this machine from the bundled weights, cached, torch-free.

First use exports the model's transformer to ONNX with `torch.onnx.export` (from the model folder's own weights,
nothing is downloaded), quantises a copy's weights to int8 with onnxruntime's dynamic quantisation, and keeps both
under `<models_dir>/onnx-<first 16 hex of the source model's fingerprint>/` with `export.json` recording each
file's sha256. The export runs in a child process, so the process that encodes (a server) never imports torch or
sentence-transformers; later uses only load the cached file and check its sha256.

Encoding does what sentence-transformers does for a Transformer → Pooling(mean) → Normalize model: the model
folder's fast tokenizer (`tokenizer.json`) with truncation to `max_seq_length` word pieces, the transformer,
the mean of the token vectors under the attention mask, then L2 normalisation.

    python -m citeqa.index.models.onnx_encoder export --model PATH --fingerprint HEX --out FOLDER   (what the child runs)
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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Set before onnxruntime is imported (it is imported lazily, below).
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
    # Per-channel scales: one scale per output column keeps the cosine to the fp32 vectors near 0.994 on SQuAD
    # texts; a single scale per weight matrix dropped it to 0.957 (and reduce_range to 0.85).
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
        command = [sys.executable, "-m", "citeqa.index.models.onnx_encoder", "export"]
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


# -- encoding -------------------------------------------------------------------------------------------------


def mean_pool(hidden: np.ndarray, mask: np.ndarray, normalize: bool = True) -> np.ndarray:
    """sentence-transformers' mean pooling (sum of masked token vectors / max(token count, 1e-9)), then
    torch.nn.functional.normalize's L2 normalisation (norm clamped at 1e-12)."""
    weights = mask[:, :, None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    if normalize:
        pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    return pooled.astype(np.float32, copy=False)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class OnnxEncoder:
    """Texts in, float32 sentence vectors out, with onnxruntime on the CPU.

    `variant` is "onnx" (fp32, the exported graph) or "onnx-int8" (weights quantised to int8). `sha256` is the
    hash of the ONNX file being run; an index records it, so vectors from another file are never mixed in.
    """

    def __init__(
        self,
        model_path: str | Path,
        source_fingerprint: str,
        variant: str = "onnx-int8",
        models_dir: Path | None = None,
        threads: int | None = None,
    ) -> None:
        if variant not in ONNX_VARIANTS:
            raise ValueError(f"unknown ONNX variant {variant!r}: choose one of {sorted(ONNX_VARIANTS)}")
        if models_dir is None:
            raise ValueError("models_dir is required: where exported models are cached")
        import onnxruntime
        from tokenizers import Tokenizer

        self.model_path = Path(model_path)
        self.variant = variant
        self.layout = read_layout(self.model_path)
        self.folder = ensure_exported(self.model_path, source_fingerprint, Path(models_dir))
        info = json.loads((self.folder / INFO_FILE).read_text(encoding="utf-8"))
        entry = info["files"][variant]
        self.path = self.folder / entry["file"]
        self.sha256 = sha256_file(self.path)
        if self.sha256 != entry["sha256"]:
            raise RuntimeError(
                f"{self.path} does not match the sha256 recorded when it was exported; delete {self.folder} to export it again"
            )

        self.tokenizer = Tokenizer.from_file(str(self.model_path / "tokenizer.json"))
        self.tokenizer.no_padding()  # batches are padded here, to their own longest text
        self.tokenizer.enable_truncation(max_length=self.layout.max_seq_length)

        onnxruntime.disable_telemetry_events()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or available_cores()
        options.inter_op_num_threads = 1
        # Workers sleep between runs instead of spinning: on two cores shared with the HTTP server (and anyone
        # else) spinning burned the CPU a query needed; measured here it cut neither p50 nor bulk time.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    @property
    def dimension(self) -> int:
        return self.layout.dimension

    @property
    def max_tokens(self) -> int:
        return self.layout.max_seq_length

    def encode(self, texts: Sequence[str], batch_size: int, show_progress: bool = False) -> np.ndarray:
        """Vectors in the order of `texts`; batches are formed from texts of similar length (less padding)."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for rows, _, hidden, mask in self._batches(texts, batch_size, show_progress):
            vectors[rows] = mean_pool(hidden, mask, self.layout.normalize)
        return vectors

    def encode_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], batch_size: int
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Each text's vector and, from the same forward pass, a vector for each of its character spans `spans[i]`.

        A span's vector is the mean of the token vectors whose first character lies inside the span (the text's own
        context shapes them), normalised like a text's. A span the encoded text does not cover to its end (the text
        was truncated) or that holds no token gets a row of NaN: the caller encodes it on its own.
        """
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        span_vectors = [np.full((len(s), self.dimension), np.nan, dtype=np.float32) for s in spans]
        for rows, encodings, hidden, mask in self._batches(texts, batch_size, False):
            vectors[rows] = mean_pool(hidden, mask, self.layout.normalize)
            for row, index, encoding in zip(range(len(rows)), rows.tolist(), encodings, strict=True):
                if len(spans[index]):
                    span_vectors[index] = pool_spans(hidden[row], encoding, spans[index], self.layout.normalize)
        return vectors, span_vectors

    def _batches(self, texts: Sequence[str], batch_size: int, show_progress: bool):
        """(text indices, their encodings, last hidden states, attention mask) per batch of texts of similar length."""
        if not texts:
            return
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=True)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        order = np.argsort(-lengths, kind="stable")
        starts = range(0, len(texts), batch_size)
        if show_progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="Batches", unit="batch")
        for start in starts:
            rows = order[start : start + batch_size]
            width = int(lengths[rows].max())
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for row, index in enumerate(rows):
                encoding = encodings[index]
                ids[row, : len(encoding.ids)] = encoding.ids
                mask[row, : len(encoding.ids)] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            (hidden,) = self.session.run([OUTPUT_NAME], {name: feeds[name] for name in self.input_names})
            yield rows, [encodings[i] for i in rows.tolist()], hidden, mask


def pool_spans(hidden: np.ndarray, encoding, spans: Sequence[tuple[int, int]], normalize: bool) -> np.ndarray:
    """Mean of the (non-special) token vectors of one encoded text whose first character falls in each span."""
    special = np.asarray(encoding.special_tokens_mask[: len(encoding.ids)], dtype=bool)
    offsets = np.asarray(encoding.offsets[: len(encoding.ids)], dtype=np.int64).reshape(-1, 2)[~special]
    tokens = hidden[: len(encoding.ids)][~special].astype(np.float64)
    pooled = np.full((len(spans), hidden.shape[-1]), np.nan, dtype=np.float32)
    if not len(tokens):
        return pooled
    sums = np.vstack([np.zeros((1, tokens.shape[1])), np.cumsum(tokens, axis=0)])
    bounds = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    first = np.searchsorted(offsets[:, 0], bounds[:, 0], side="left")
    last = np.searchsorted(offsets[:, 0], bounds[:, 1], side="left")
    covered = (last > first) & (bounds[:, 1] <= offsets[-1, 1])
    counts = (last - first)[covered, None]
    means = (sums[last[covered]] - sums[first[covered]]) / counts
    if normalize:
        means = means / np.clip(np.linalg.norm(means, axis=1, keepdims=True), 1e-12, None)
    pooled[covered] = means
    return pooled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m citeqa.index.models.onnx_encoder", description=__doc__.splitlines()[0])
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
