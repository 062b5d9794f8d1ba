"""Train the reader (index/ranking/reader.py) on CPU and write index/models/reader.onnx and reader.json.

    python -m citeqa.eval.train_reader --dataset ../shared/data/squad-dev-a

One command, deterministic (fixed seeds, torch's deterministic algorithms, a fixed thread count; the data files'
sha256 are recorded). It trains one model on the articles of fold 1 (eval/reader_training_data.py: sorted titles
alternate between the folds) and measures it on fold 0's, which it never read; that model ships, so the figures in
reader.json are the shipped model's on articles it never read. The trained model is kept in `--work`: a re-run that
finds it there only measures it again and rewrites reader.json. `--max-steps` stops early, to check that two runs
write the same bytes.

The model: the bundled all-MiniLM-L6-v2 cut to its first `--layers` transformer layers, mean pooling under the
attention mask, one linear output; trained with binary cross-entropy on (question, title: sentence) pairs. Exported
to ONNX and quantised to int8 weights (onnxruntime's dynamic quantisation); every figure is the int8 file's, read
pair by pair as the engine reads it.

The combination with the quote selector (Reader.combine: a logistic model over the selector's logit and the
reader's) is fitted on the held-out scores, and measured cross-fitted: the held-out articles split again by
article, fitted on one half's scores and measured on the other's. The shipped weights are fitted on both halves.

Needs torch and scikit-learn (`pip install -e ".[train]"`); the shipped reader runs without torch.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from citeqa.eval.bench import cpu_name
from citeqa.eval.quote_training_data import SquadSet
from citeqa.eval.reader_training_data import FOLDS, ReaderGroup, article_folds, reader_groups
from citeqa.eval.train_quote_selector import rounded, versions
from citeqa.index.models.embedding import DEFAULT_MODEL, resolve_model_path
from citeqa.index.models.onnx_export import sha256_file
from citeqa.index.models.pair_model import MODEL_FOLDER, MODEL_FORMAT, bundled_tokenizer_path, encode_pairs
from citeqa.index.ranking.reader import INFO_FILE, Reader, combined_logit, logit

SEED = 20261207
THREADS = 2  # part of the recipe: a reduction's order, and so the last bits of a run, depend on the thread count


def build_model(layers: int):
    import torch
    from transformers import AutoModel

    class CrossEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(resolve_model_path(DEFAULT_MODEL))
            self.encoder.encoder.layer = self.encoder.encoder.layer[:layers]
            self.encoder.config.num_hidden_layers = layers
            self.output = torch.nn.Linear(self.encoder.config.hidden_size, 1)

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return self.output(pooled).squeeze(-1)

    return CrossEncoder()


def batches(lengths: np.ndarray, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar-length pairs (less padding): shuffle, sort within pools of 50 batches, shuffle
    the batches."""
    order = rng.permutation(len(lengths))
    pool = size * 50
    result: list[np.ndarray] = []
    for begin in range(0, len(order), pool):
        chunk = order[begin : begin + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        result.extend(chunk[i : i + size] for i in range(0, len(chunk), size))
    return [result[i] for i in rng.permutation(len(result))]


def train(pairs: list[tuple[str, str, int]], args: argparse.Namespace, tokenizer, log_name: str):
    import torch

    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(THREADS)
    model = build_model(args.layers)
    model.train()
    rng = np.random.default_rng(SEED)
    lengths = np.array([len(q) + len(t) for q, t, _ in pairs])
    plan = [b for _ in range(args.epochs) for b in batches(lengths, args.batch_size, rng)][: args.max_steps]
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=0.01)
    warmup = max(1, len(plan) // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (len(plan) - step) / (len(plan) - warmup)))
    )
    loss_function = torch.nn.BCEWithLogitsLoss()
    started = time.perf_counter()
    running = 0.0
    for step, batch in enumerate(plan):
        questions = [pairs[i][0] for i in batch]
        texts = [pairs[i][1] for i in batch]
        labels = torch.tensor([float(pairs[i][2]) for i in batch])
        inputs = {k: torch.from_numpy(v) for k, v in encode_pairs_each(tokenizer, questions, texts, args.max_length).items()}
        loss = loss_function(model(**inputs), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
        if step % 100 == 0 or step == len(plan) - 1:
            elapsed = time.perf_counter() - started
            print(f"[{log_name}] step {step + 1}/{len(plan)} loss {running:.4f} {elapsed:.0f} s", flush=True)
    model.eval()
    return model, time.perf_counter() - started


def encode_pairs_each(tokenizer, questions: list[str], texts: list[str], max_length: int) -> dict[str, np.ndarray]:
    """encode_pairs for pairs whose questions differ (a training batch mixes questions)."""
    rows = [encode_pairs(tokenizer, q, [t], max_length) for q, t in zip(questions, texts, strict=True)]
    width = max(r["input_ids"].shape[1] for r in rows)
    return {
        key: np.vstack([np.pad(r[key], ((0, 0), (0, width - r[key].shape[1]))) for r in rows])
        for key in ("input_ids", "attention_mask", "token_type_ids")
    }


def export(model, folder: Path, tokenizer, args: argparse.Namespace, seconds: float, name: str = "reader") -> None:
    """The model as int8 ONNX in folder/<name>.onnx, with a provisional <name>.json (for the reader, combination: the
    reader alone) that keeps the training time, so a later run that reuses the model still reports it."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder.mkdir(parents=True, exist_ok=True)
    sample = {k: torch.from_numpy(v) for k, v in encode_pairs(tokenizer, "a question?", ["a title: a sentence."], 32).items()}
    float_path = folder / f"{name}-fp32.onnx"
    names = ["input_ids", "attention_mask", "token_type_ids"]
    torch.onnx.export(
        model,
        (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
        str(float_path),
        input_names=names,
        output_names=["logit"],
        dynamic_axes={name: {0: "pairs", 1: "pieces"} for name in names} | {"logit": {0: "pairs"}},
        opset_version=17,
        dynamo=False,
    )
    quantize_dynamic(str(float_path), str(folder / f"{name}.onnx"), weight_type=QuantType.QInt8)
    float_path.unlink()
    provisional = {"combination": {"selector": 0.0, "reader": 1.0, "intercept": 0.0}} if name == "reader" else {}
    write_info(folder, provisional | {"training_seconds": seconds}, args, name)


def write_info(folder: Path, extra: dict, args: argparse.Namespace, name: str = "reader") -> None:
    tokenizer_path = bundled_tokenizer_path()
    info = {
        "format": MODEL_FORMAT,
        "kind": name,
        "file": f"{name}.onnx",
        "sha256": sha256_file(folder / f"{name}.onnx"),
        "bytes": (folder / f"{name}.onnx").stat().st_size,
        "tokenizer_sha256": sha256_file(tokenizer_path),
        "max_length": args.max_length,
        "layers": args.layers,
    } | extra
    (folder / f"{name}.json").write_text(json.dumps(rounded(info), indent=1) + "\n", encoding="utf-8")


def pairs_of(groups: list[ReaderGroup]) -> list[tuple[str, str, int]]:
    return [(g.question, t, int(label)) for g in groups for t, label in zip(g.texts, g.labels.tolist(), strict=True)]


def held_out_scores(reader: Reader, groups: list[ReaderGroup]) -> list[np.ndarray]:
    return [reader.logits(g.question, g.texts) for g in groups]


def fit_combination(groups: list[ReaderGroup], scores: list[np.ndarray]) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression

    features = np.vstack([np.column_stack([logit(g.selector), s]) for g, s in zip(groups, scores, strict=True)])
    labels = np.concatenate([g.labels for g in groups])
    model = LogisticRegression(C=1.0, max_iter=1000).fit(features, labels)
    return {"selector": float(model.coef_[0][0]), "reader": float(model.coef_[0][1]), "intercept": float(model.intercept_[0])}


def figures(groups: list[ReaderGroup], scores: list[np.ndarray], combination: dict[str, float]) -> dict[str, float]:
    """Top-1 accuracy among the answering paragraph's units (selector, reader, combined), and how often the best
    unit of the answering paragraph outscores the best of its closest wrong one (which paragraph answers)."""
    gold = [(g, s) for g, s in zip(groups, scores, strict=True) if g.kind == "gold"]
    distractor = {g.question: (g, s) for g, s in zip(groups, scores, strict=True) if g.kind == "distractor"}

    def top1(score_of) -> float:
        return float(np.mean([g.labels[int(np.argmax(score_of(g, s)))] for g, s in gold]))

    def paragraph(score_of) -> float:
        pairs = [(score_of(g, s).max(), score_of(*distractor[g.question]).max()) for g, s in gold if g.question in distractor]
        return float(np.mean([a > b for a, b in pairs]))

    selector = lambda g, s: logit(g.selector)  # noqa: E731
    reader = lambda g, s: s  # noqa: E731
    both = lambda g, s: combined_logit(combination, g.selector, s)  # noqa: E731
    return {
        "questions": len(gold),
        "quote_top1_selector": top1(selector),
        "quote_top1_reader": top1(reader),
        "quote_top1_combined": top1(both),
        "paragraph_selector": paragraph(selector),
        "paragraph_reader": paragraph(reader),
        "paragraph_combined": paragraph(both),
    }


def add_recipe_arguments(parser: argparse.ArgumentParser, work: str, max_length: int) -> None:
    """The arguments every cross-encoder trained here takes: where it is kept and written, and its recipe."""
    parser.add_argument("--work", type=Path, default=Path(work), help="where the trained model is kept")
    parser.add_argument("--output", type=Path, default=MODEL_FOLDER)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=max_length)
    parser.add_argument("--max-steps", type=int, help="stop after this many batches (to check that two runs agree)")


def recipe_record(args: argparse.Namespace, seconds: float) -> dict:
    """What a model's info file records of the recipe that trained it (the arguments of `add_recipe_arguments`)."""
    return {
        "seed": SEED,
        "threads": THREADS,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "initialised_from": f"{DEFAULT_MODEL}, first {args.layers} layers",
        "seconds": seconds,  # on the CPU below, with THREADS threads
        "cpu": cpu_name(),
    }


def bundled_tokenizer():
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(bundled_tokenizer_path()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="a SQuAD-style BEIR dataset (queries carry answers)")
    parser.add_argument("--cache", type=Path, help="embedding cache folder (default: the data home's eval-cache)")
    add_recipe_arguments(parser, "build/reader", 128)
    args = parser.parse_args()

    squad = SquadSet.load(args.dataset, args.cache)
    groups = reader_groups(squad.corpus, squad.questions, squad.vectors)
    tokenizer = bundled_tokenizer()
    print(f"{len(groups)} candidate sets, {sum(len(g.texts) for g in groups)} pairs", flush=True)

    # One model, trained on the articles of every fold but the first and measured on the first's: it ships. (A
    # model per fold and one on every article would triple the two-core training time; the shipped model is then
    # the one its figures describe.)
    folder = args.work / "held-out-fold-0"
    trained_on = [g for g in groups if g.fold != 0]
    if not (folder / "reader.onnx").is_file():
        model, seconds = train(pairs_of(trained_on), args, tokenizer, "reader")
        export(model, folder, tokenizer, args, seconds)
    seconds = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))["training_seconds"]
    tested = [g for g in groups if g.fold == 0]
    scores = held_out_scores(Reader(folder), tested)
    # The combination is cross-fitted over the held-out articles (split again, by article): fitted on one half's
    # scores, measured on the other's; the shipped weights are fitted on both halves.
    halves = article_folds([g.title for g in tested])
    per_half = {}
    for half in range(FOLDS):
        fit_on = [(g, s) for g, s in zip(tested, scores, strict=True) if halves[g.title] != half]
        measure = [(g, s) for g, s in zip(tested, scores, strict=True) if halves[g.title] == half]
        combination = fit_combination([g for g, _ in fit_on], [s for _, s in fit_on])
        per_half[f"half-{half}"] = figures([g for g, _ in measure], [s for _, s in measure], combination)
        print(f"half {half}: {json.dumps(per_half[f'half-{half}'])}", flush=True)
    combination = fit_combination(tested, scores)
    per_half["all"] = figures(tested, scores, combination)
    print(f"combination: {combination}\nall held-out: {json.dumps(per_half['all'])}", flush=True)
    data_files = ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv")
    extra = {
        "combination": combination,
        "training": {
            "dataset": args.dataset.name,
            "sha256": {name: sha256_file(args.dataset / name) for name in data_files},
            "candidate_sets": {kind: sum(g.kind == kind for g in trained_on) for kind in ("gold", "distractor")},
            "questions": len({g.question for g in trained_on}),
            "pairs": sum(len(g.texts) for g in trained_on),
            "positives": int(sum(int(g.labels.sum()) for g in trained_on)),
            **recipe_record(args, seconds),
            "versions": versions() | {"onnxruntime": _version("onnxruntime"), "transformers": _version("transformers")},
        },
        "trained_on_articles": sorted({g.title for g in groups if g.fold != 0}),
        "held_out": {
            "articles": sorted({g.title for g in tested}),
            "method": "the shipped model on articles it never read; the combination cross-fitted over them (fitted "
            "on half of the articles' scores, measured on the other half's); 'all' uses the shipped weights",
            **per_half,
        },
    }
    args.output.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(folder / "reader.onnx", args.output / "reader.onnx")
    write_info(args.output, extra, args)
    print(f"wrote {args.output}")


def _version(name: str) -> str:
    from importlib import metadata

    return metadata.version(name)


if __name__ == "__main__":
    main()
