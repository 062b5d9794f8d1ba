"""The claim checker's labelled claims (eval/claim_set.py): the changes that make a true sentence unsupported, and a
word list that leaves the hand-written claims' opposites for measuring."""

import json
import re
from pathlib import Path

import numpy as np

from citeqa.eval.antonyms import OPPOSITES, ROWS, opposites
from citeqa.eval.claim_set import Passage, antonym, claim_set

EVAL = Path(__file__).resolve().parents[2] / "eval"
SEED_TEXT = (EVAL.parent / "seeds" / "000_ffb073c2a839212b.txt").read_text(encoding="utf-8")


def test_opposites_go_both_ways_and_rows_pair_their_forms() -> None:
    assert OPPOSITES["increased"] == "decreased" and OPPOSITES["decreased"] == "increased"
    assert OPPOSITES["refused"] == "accepted"
    for left, right in ROWS:
        assert len(left.split()) == len(right.split()), (left, right)
    # the first row holding a form decides its opposite
    assert opposites((("older", "younger"), ("newer", "older")))["older"] == "younger"


def test_antonym_turns_one_word_and_keeps_the_sentence_around_it() -> None:
    rng = np.random.default_rng(0)
    assert antonym("Expression increased in treated mice.", rng) == "Expression decreased in treated mice."
    assert antonym("Accepted by the board in 1990.", rng) == "Refused by the board in 1990."
    assert antonym("It caused an increase in cost.", rng) == "It caused a decrease in cost."
    assert antonym("A decrease was seen.", rng) == "An increase was seen."
    assert antonym("Nothing here turns around.", rng) is None


def test_the_hand_written_claims_opposites_are_not_in_the_training_list() -> None:
    """eval/claims.jsonl measures opposites the checker never saw changed: no word its unsupported claims bring in
    (a word the seed document does not hold) may be one the training list turns around."""
    seed_words = {w.lower() for w in re.findall(r"\w+", SEED_TEXT)}
    brought_in = set()
    for line in (EVAL / "claims.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if not row["supported"]:
            brought_in |= {w.lower() for w in re.findall(r"\w+", row["claim"])} - seed_words
    assert {"welcomed", "confirmed", "praised", "eager", "easing", "eastern"} <= brought_in
    assert not brought_in & set(OPPOSITES), sorted(brought_in & set(OPPOSITES))


def test_a_claim_set_holds_opposites_and_is_the_same_on_every_run() -> None:
    passages = [
        Passage(
            f"p{n}",
            "Trial",
            "Treatment increased survival in older patients with acute disease. "
            "The effect was strong in the first year of the study. "
            f"Patients in group {n} were followed for {n + 2} years by the clinic.",
        )
        for n in range(12)
    ]
    first, second = claim_set(passages, opposites=True), claim_set(passages, opposites=True)
    assert first == second
    turned = [c for c in first if c.kind == "antonym"]
    assert turned and all(not c.supported and c.claim != c.anchor for c in turned)
    for claim in turned:
        changed = set(claim.claim.split()) ^ set(claim.anchor.split())
        assert len(changed) == 2, claim  # one word out, its opposite in


def test_two_changes_give_each_sentence_two_unsupported_kinds_and_leave_one_change_as_it_was() -> None:
    passages = [
        Passage(
            f"p{n}",
            "Trial",
            f"Professor Alice Brown treated Robert Green in {1990 + n}, which was the first year of the study. "
            f"The clinic was not in London for the {n + 2} patients of group {n} that Maria Lopez followed.",
        )
        for n in range(6)
    ]
    one, two = claim_set(passages, per_passage=2, changes=1), claim_set(passages, per_passage=2, changes=2)
    assert one == claim_set(passages, per_passage=2)  # the held-out sets' draws
    for claims, changes in ((one, 1), (two, 2)):
        for anchor in {c.anchor for c in claims if c.kind == "quote"}:
            unsupported = [  # a wrong passage's claim is the sentence itself, with no anchor
                c for c in claims if not c.supported and (c.anchor == anchor or (c.kind == "other passage" and c.claim == anchor))
            ]
            assert len(unsupported) == changes, (anchor, unsupported)
            assert len({c.kind for c in unsupported}) == changes
    clauses = [c for c in two if c.kind == "clause"]
    assert clauses and all(any(q.kind == "quote" and q.anchor == c.anchor for q in two) for c in clauses)
