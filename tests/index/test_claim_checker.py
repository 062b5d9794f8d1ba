"""The shipped claim checker (index/answering/claim_checker.py): windows that cover the passage, checked when loaded,
run without torch, and on hand-written claims about the seed document right where the similarity check is not."""

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from citeqa.eval.claim_set import LabelledClaim
from citeqa.eval.train_claims import hand_written_claims, similarity_scores
from citeqa.index.answering.claim_checker import (
    INFO_FILE,
    WINDOW_PIECES,
    ClaimChecker,
    PieceCounter,
    evidence_windows,
    window_spans,
)
from citeqa.index.answering.claims import ClaimSettings, SupportScores, check_claims
from citeqa.index.models.pair_model import MODEL_FOLDER
from citeqa.index.text.chunking import ChunkerSettings, split_document
from citeqa.index.text.documents import make_document
from citeqa.index.text.spans import sentence_spans

SEED_TEXT = (Path(__file__).resolve().parents[2] / "seeds" / "000_ffb073c2a839212b.txt").read_text(encoding="utf-8")
# Accuracy of the shipped checker on eval/claims.jsonl (measured when it was trained: see docs/reader.md); the
# floor sits one claim below it.
HAND_WRITTEN_FLOOR = 0.75


@pytest.fixture(scope="module")
def checker() -> ClaimChecker:
    return ClaimChecker()


@pytest.fixture(scope="module")
def claims() -> list[LabelledClaim]:
    return hand_written_claims()


def test_windows_cover_every_sentence_in_order_within_the_budget() -> None:
    count = PieceCounter()
    spans = window_spans(SEED_TEXT, count, budget=64)
    windows = evidence_windows(SEED_TEXT, count, budget=64)
    assert windows == [SEED_TEXT[s.start : s.end] for s in spans] and len(windows) > 1
    sentences = sentence_spans(SEED_TEXT)
    for sentence in sentences:  # every sentence is whole in some window
        assert any(w.start <= sentence.start and sentence.end <= w.end for w in spans)
    for span, pieces in zip(spans, count(windows), strict=True):
        inside = [s for s in sentences if span.start <= s.start and s.end <= span.end]
        assert inside[0].start == span.start and inside[-1].end == span.end, "a window is whole sentences"
        assert pieces <= 64 or len(inside) == 1, "only a sentence longer than the budget makes a longer window"
    assert any(len([s for s in sentences if w.start <= s.start and s.end <= w.end]) > 1 for w in spans)
    for earlier, later in itertools.pairwise(spans):
        assert earlier.start < later.start and earlier.end < later.end, "in order, none inside the one before it"
    assert evidence_windows("", count) == []
    assert evidence_windows("one short passage without a full stop", count) == ["one short passage without a full stop"]
    assert max(count(evidence_windows(SEED_TEXT, count))) <= WINDOW_PIECES


def test_word_pieces_are_counted_for_each_text_alone() -> None:
    count = PieceCounter()
    texts = ["Peskov spoke.", "Shoygu alleged that the West's intentions are obscured by the rhetoric of peacekeeping."]
    assert count(texts) == [count([texts[0]])[0], count([texts[1]])[0]]
    assert count(texts)[0] < count(texts)[1]


def test_the_checker_loads_and_scores_without_torch() -> None:
    code = (
        "import sys\nfrom citeqa.index.answering.claim_checker import ClaimChecker\n"
        "checker = ClaimChecker()\n"
        "p = checker.scorer(['A title']).scores(['Peskov spoke to ABC News.'], ['Peskov spoke to ABC News on Monday.'])\n"
        "print(p.shape, bool(0 < p[0, 0] < 1))\n"
        "assert 'torch' not in sys.modules, 'the claim checker imported torch'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(1, 1) True"


def test_a_damaged_model_file_is_refused(tmp_path: Path) -> None:
    info = json.loads((MODEL_FOLDER / INFO_FILE).read_text(encoding="utf-8"))
    for name in (info["file"], INFO_FILE):
        shutil.copyfile(MODEL_FOLDER / name, tmp_path / name)
    ClaimChecker(tmp_path)  # the copy loads
    model = tmp_path / info["file"]
    damaged = bytearray(model.read_bytes())
    damaged[len(damaged) // 3] ^= 0xFF
    model.write_bytes(bytes(damaged))
    with pytest.raises(RuntimeError, match="sha256"):
        ClaimChecker(tmp_path)


def probabilities(checker: ClaimChecker, claims: list[LabelledClaim]) -> np.ndarray:
    return checker.probability(np.array([checker.logit(c.claim, checker.windows(c.title, c.evidence)) for c in claims]))


def test_hand_written_claims_are_judged_right(checker: ClaimChecker, claims: list[LabelledClaim]) -> None:
    labels = np.array([c.supported for c in claims])
    assert labels.sum() and (~labels).sum(), "the set has both kinds"
    found = probabilities(checker, claims)
    assert np.all((found > 0) & (found < 1))
    accuracy = float(np.mean((found >= ClaimSettings().min_probability) == labels))
    similarity = similarity_scores(claims)
    today = float(np.mean((similarity >= ClaimSettings().min_support) == labels))
    assert accuracy >= HAND_WRITTEN_FLOOR, f"accuracy {accuracy:.3f} on eval/claims.jsonl"
    assert accuracy > today, f"the checker ({accuracy:.3f}) is no better than the similarity check ({today:.3f})"


def test_a_changed_number_or_date_lowers_the_probability(checker: ClaimChecker, claims: list[LabelledClaim]) -> None:
    """Each claim with a changed number or date scores below the claim it was changed from (same anchor)."""
    by_anchor = {c.anchor: c for c in claims if c.supported}
    changed = [c for c in claims if c.kind in ("number", "date")]
    assert len(changed) >= 3
    for claim in changed:
        right = by_anchor[claim.anchor]
        assert probabilities(checker, [claim])[0] < probabilities(checker, [right])[0], claim.claim


class CountedReads:
    """The checker's scorer, counting the cells it reads; with `everything`, asked for every cell at once, as
    check_claims asked before it read only what it needs."""

    def __init__(self, scorer: SupportScores, everything: bool = False) -> None:
        self.scorer, self.everything = scorer, everything
        self.cells = 0

    def scores(self, sentences: list[str], evidence: list[str], wanted: np.ndarray | None = None) -> np.ndarray:
        found = self.scorer.scores(sentences, evidence, None if self.everything else wanted)
        self.cells += int((~np.isnan(found)).sum())
        return found


def test_a_claim_check_reads_other_passages_only_for_a_sentence_its_citations_do_not_support(
    checker: ClaimChecker,
) -> None:
    chunks = [c.text for c in split_document(make_document("seed", SEED_TEXT, "seed.txt"), ChunkerSettings())][:5]
    shoygu = next(n for n, text in enumerate(chunks, 1) if "Shoygu" in text and "occupation" in text)
    other = next(n for n in range(1, len(chunks) + 1) if n != shoygu)
    answer = (
        f"Shoygu suggested that the mission bears the hallmark of a planned occupation of western Ukraine [{shoygu}]. "
        f"Shoygu suggested that the mission bears the hallmark of a planned occupation of western Ukraine [{other}]. "
        "The ferry to the island leaves at seven from pier four."
    )
    settings = ClaimSettings()
    lazy = CountedReads(checker.scorer(["Seed"] * len(chunks)))
    full = CountedReads(checker.scorer(["Seed"] * len(chunks)), everything=True)
    checked, expected = check_claims(answer, chunks, lazy, settings), check_claims(answer, chunks, full, settings)
    assert checked == expected  # the same answer, markers, claims and support
    assert [c.supported for c in checked.claims] == [True, True, False]
    assert checked.removed_markers == 1  # the wrong citation went, and the sentence was re-cited to its passage
    # first sentence: its one citation; second: its citation, then every passage; third: every passage
    assert lazy.cells == 1 + len(chunks) + len(chunks) < full.cells == 3 * len(chunks)
