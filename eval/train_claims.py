"""Train the claim checker (index/answering/claim_checker.py) on CPU and write index/models/claims.onnx and claims.json.

    python -m citeqa.eval.train_claims --squad ../shared/data/squad-dev-a --scifact ../shared/data/scifact

One command, deterministic (eval/train_reader.py's recipe: fixed seeds, torch's deterministic algorithms, a fixed
thread count; the data files' sha256 are recorded). The labelled claims come from eval/claim_set.py:

- trained on: SQuAD fold 1's articles (up to 4 sentences and 3 questions a paragraph) and SciFact abstracts
  1000-2999 (up to 3 sentences each), each claim paired with a window of its passage that holds what it was made
  from (a wrong passage's claim with the window sharing the most words with it);
- measured on what it never read: SQuAD fold 0's articles (other articles, other questions), SciFact abstracts
  0-299 (another domain) and eval/claims.jsonl (40 claims about the seed document written by hand, each cited to
  the chunk of the seed index that holds its anchor). A claim's score is its passage's best window, as served.

The calibration (a logistic model over the best window's logit) is fitted on fold 0's claims and measured
cross-fitted, as the reader's combination is: fitted on one half of fold 0's articles, measured on the other's.
Beside each figure stands today's similarity check (index/answering/claims.py at its default threshold, 0.4) on the
same claims, and that check's best threshold on each set (which flatters it: it is chosen on the set it is
measured on).

Needs torch and scikit-learn (`pip install -e ".[train]"`); the shipped checker runs without torch.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np

from citeqa.eval.claim_set import LabelledClaim, abstract_passages, claim_set, content_words, overlap, squad_passages
from citeqa.eval.reader_training_data import FOLDS, article_folds
from citeqa.eval.train_quote_selector import versions
from citeqa.eval.train_reader import SEED, add_recipe_arguments, bundled_tokenizer, export, recipe_record, train, write_info
from citeqa.index.answering.claim_checker import INFO_FILE, WINDOW_PIECES, ClaimChecker, PieceCounter, evidence_windows
from citeqa.index.answering.claims import ClaimSettings, SupportScorer
from citeqa.index.models.embedding import DEFAULT_MODEL
from citeqa.index.models.onnx_export import sha256_file
from citeqa.index.ranking.reader import reader_input

TRAIN_ABSTRACTS = (1000, 2000)  # (first, how many) of SciFact's corpus
HELD_OUT_ABSTRACTS = (0, 300)
HAND_WRITTEN = Path(__file__).resolve().parent / "claims.jsonl"
SEED_DOCUMENT = Path(__file__).resolve().parent.parent / "seeds" / "000_ffb073c2a839212b.txt"


def training_pairs(claims: list[LabelledClaim], count: PieceCounter) -> list[tuple[str, str, int]]:
    """(claim, title: window, label): a window holding the claim's anchor, chosen at random among those that do; a
    claim without one (a wrong passage's) gets the window sharing the most words with it."""
    rng = np.random.default_rng(SEED)
    pairs = []
    for claim in claims:
        windows = evidence_windows(claim.evidence, count)
        if not windows:
            continue
        holding = [w for w in windows if claim.anchor and claim.anchor in w]
        if holding:
            window = holding[int(rng.integers(len(holding)))]
        else:
            words = content_words(claim.claim)
            window = max(windows, key=lambda w: overlap(words, content_words(w)))
        pairs.append((claim.claim, reader_input(claim.title, window), int(claim.supported)))
    return pairs


def hand_written_claims() -> list[LabelledClaim]:
    """eval/claims.jsonl, each cited to the chunk of the seed document (as the default chunker cuts it) that holds
    its anchor."""
    from citeqa.index.text.chunking import ChunkerSettings, split_document
    from citeqa.index.text.documents import make_document

    document = make_document("seed", SEED_DOCUMENT.read_text(encoding="utf-8"), SEED_DOCUMENT.name)
    title = document.title
    chunks = [c.text for c in split_document(document, ChunkerSettings())]
    claims = []
    for line in HAND_WRITTEN.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        chunk = next(c for c in chunks if row["anchor"] in c)
        claims.append(LabelledClaim(row["claim"], title, chunk, row["supported"], row["kind"], -1, row["anchor"]))
    return claims


def similarity_scores(claims: list[LabelledClaim]) -> np.ndarray:
    """Today's support score (index/answering/claims.py) of each claim against its passage, with IDF over the
    set's passages."""
    from citeqa.eval.quote_training_data import ChunkIdf
    from citeqa.index.models.embedding import Embedder
    from citeqa.index.text.lexical import LexicalSettings, LexicalTokenizer
    from citeqa.settings import Settings

    tokenizer = LexicalTokenizer(LexicalSettings())
    passages = sorted({c.evidence for c in claims})
    idf = ChunkIdf(tokenizer.tokenize(passages))
    embedder = Embedder(DEFAULT_MODEL, models_dir=Settings().models_dir)
    vectors: dict[str, np.ndarray] = {}

    def embed(texts: list[str]) -> np.ndarray:  # each passage is cited by several claims: embed its units once
        missing = list(dict.fromkeys(t for t in texts if t not in vectors))
        if missing:
            vectors.update(zip(missing, embedder.embed(missing), strict=True))
        return np.stack([vectors[t] for t in texts])

    scorer = SupportScorer(embed, tokenizer.tokenize, idf.idf)
    return np.array([float(scorer.scores([c.claim], [c.evidence])[0, 0]) for c in claims])


def calibration(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, max_iter=1000).fit(logits.reshape(-1, 1), labels)
    return {"scale": float(model.coef_[0][0]), "offset": float(model.intercept_[0])}


def probabilities(logits: np.ndarray, fitted: dict[str, float]) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(fitted["scale"] * logits + fitted["offset"])))


def accuracy_figures(claims: list[LabelledClaim], model_p: np.ndarray, similarity: np.ndarray) -> dict:
    """Accuracy at P >= 0.5 (the checker) and at support >= 0.4 (today's check) and at the check's best threshold,
    overall and by kind, with the checker's Brier score and expected calibration error (10 bins)."""
    labels = np.array([c.supported for c in claims])
    threshold = ClaimSettings().min_support
    best = max(np.unique(similarity), key=lambda t: float(np.mean((similarity >= t) == labels)))
    by_kind: dict[str, list[int]] = defaultdict(list)
    for i, claim in enumerate(claims):
        by_kind[claim.kind].append(i)

    def rates(rows: list[int]) -> dict[str, float]:
        picked = np.array(rows)
        return {
            "claims": len(rows),
            "checker": float(np.mean((model_p[picked] >= 0.5) == labels[picked])),
            "similarity": float(np.mean((similarity[picked] >= threshold) == labels[picked])),
        }

    bins = np.minimum((model_p * 10).astype(int), 9)
    filled = [b for b in range(10) if (bins == b).any()]
    ece = sum(abs(model_p[bins == b].mean() - labels[bins == b].mean()) * np.mean(bins == b) for b in filled)
    return rates(list(range(len(claims)))) | {
        "similarity_best_threshold": float(best),
        "similarity_at_best": float(np.mean((similarity >= best) == labels)),
        "brier": float(np.mean((model_p - labels) ** 2)),
        "calibration_error": float(ece),
        "by_kind": {kind: rates(rows) for kind, rows in sorted(by_kind.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, required=True, help="a SQuAD-style BEIR dataset (queries carry answers)")
    parser.add_argument("--scifact", type=Path, required=True, help="the SciFact BEIR dataset (its corpus is read)")
    parser.add_argument(
        "--opposites", action="store_true", help="add claims turned around with an opposite word (tried, not shipped)"
    )
    parser.add_argument(
        "--changes", type=int, default=2, help="unsupported claims made of each training sentence (held-out sets: 1)"
    )
    add_recipe_arguments(parser, "build/claims", 192)
    args = parser.parse_args()
    tokenizer = bundled_tokenizer()
    count = PieceCounter()
    squad = squad_passages(args.squad)
    recipe = {"opposites": args.opposites, "changes": args.changes}
    trained_on = [c for c in claim_set(squad, per_passage=4, questions=3, **recipe) if c.fold != 0]
    squad_articles = sorted({c.title for c in trained_on})
    trained_on += claim_set(abstract_passages(args.scifact, *TRAIN_ABSTRACTS), per_passage=3, **recipe)
    pairs = training_pairs(trained_on, count)
    print(f"{len(pairs)} training pairs, {sum(p[2] for p in pairs)} supported", flush=True)

    folder = args.work / "model"
    if not (folder / "claims.onnx").is_file():
        model, seconds = train(pairs, args, tokenizer, "claims")
        export(model, folder, tokenizer, args, seconds, name="claims")
    seconds = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))["training_seconds"]
    info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    info["calibration"] = {"scale": 1.0, "offset": 0.0}  # the raw logit, until fitted below
    (folder / INFO_FILE).write_text(json.dumps(info), encoding="utf-8")
    checker = ClaimChecker(folder)

    held_out = {
        "squad": [c for c in claim_set(squad, opposites=args.opposites) if c.fold == 0],
        "scifact": claim_set(abstract_passages(args.scifact, *HELD_OUT_ABSTRACTS), opposites=args.opposites),
        "seed": hand_written_claims(),
    }
    logits = {
        name: np.array([checker.logit(c.claim, checker.windows(c.title, c.evidence)) for c in claims])
        for name, claims in held_out.items()
    }
    similarity = {name: similarity_scores(claims) for name, claims in held_out.items()}
    squad_claims, squad_labels = held_out["squad"], np.array([c.supported for c in held_out["squad"]])
    halves = article_folds([c.title for c in squad_claims])
    cross_fitted = np.zeros(len(squad_claims))
    for half in range(FOLDS):
        fit = np.array([halves[c.title] != half for c in squad_claims])
        cross_fitted[~fit] = probabilities(logits["squad"][~fit], calibration(logits["squad"][fit], squad_labels[fit]))
    shipped = calibration(logits["squad"], squad_labels)
    figures = {"squad": accuracy_figures(squad_claims, cross_fitted, similarity["squad"])}
    for name in ("scifact", "seed"):
        figures[name] = accuracy_figures(held_out[name], probabilities(logits[name], shipped), similarity[name])
    for name, found in figures.items():
        print(f"{name}: {json.dumps({k: v for k, v in found.items() if k != 'by_kind'})}", flush=True)
        for kind, rates in found["by_kind"].items():
            print(f"    {kind}: {json.dumps(rates)}", flush=True)

    data = {
        "squad": {name: sha256_file(args.squad / name) for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv")},
        "scifact": {"corpus.jsonl": sha256_file(args.scifact / "corpus.jsonl")},
        "hand_written": {"claims.jsonl": sha256_file(HAND_WRITTEN)},
    }
    extra = {
        "calibration": shipped,
        "window_pieces": WINDOW_PIECES,
        "training": {
            "data": data,
            "claims": len(trained_on),
            "pairs": len(pairs),
            "supported": int(sum(p[2] for p in pairs)),
            "squad_articles": squad_articles,
            "scifact_abstracts": list(TRAIN_ABSTRACTS),
            **recipe,
            **recipe_record(args, seconds),
            "versions": versions(),
        },
        "held_out": {
            "method": "squad: fold 0's articles, calibration cross-fitted over two halves of them; scifact: abstracts "
            f"{HELD_OUT_ABSTRACTS[0]}-{sum(HELD_OUT_ABSTRACTS) - 1}; seed: eval/claims.jsonl; accuracy at P >= 0.5, "
            "against today's similarity check at its threshold",
            **figures,
        },
    }
    args.output.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(folder / "claims.onnx", args.output / "claims.onnx")
    write_info(args.output, extra, args, name="claims")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
