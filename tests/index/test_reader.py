"""The shipped reader: checked when loaded, run without torch, the same score whatever it is batched with, and read
only by the first passages of a ranking."""

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from citeqa.index.engine import Engine
from citeqa.index.models.pair_model import MODEL_FOLDER
from citeqa.index.ranking.reader import INFO_FILE, Reader, reader_input

TITLE = "Russia Rejects European Peacekeeper Deployment in Ukraine"


@pytest.fixture(scope="module")
def reader() -> Reader:
    return Reader()


def copy_model(folder: Path) -> Path:
    info = json.loads((MODEL_FOLDER / INFO_FILE).read_text(encoding="utf-8"))
    for name in (info["file"], INFO_FILE):
        shutil.copyfile(MODEL_FOLDER / name, folder / name)
    return folder / info["file"]


def test_the_reader_loads_and_scores_without_torch() -> None:
    code = (
        "import sys\nfrom citeqa.index.ranking.reader import Reader\n"
        "print(Reader().logits('Who spoke?', ['Peskov spoke to ABC News.']).shape)\n"
        "assert 'torch' not in sys.modules, 'the reader imported torch'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(1,)"


def test_a_damaged_model_file_is_refused(tmp_path: Path) -> None:
    model = copy_model(tmp_path)
    Reader(tmp_path)  # the copy loads
    damaged = bytearray(model.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    model.write_bytes(bytes(damaged))
    with pytest.raises(RuntimeError, match="sha256"):
        Reader(tmp_path)


def test_a_model_of_another_format_is_refused(tmp_path: Path) -> None:
    copy_model(tmp_path)
    info = json.loads((tmp_path / INFO_FILE).read_text(encoding="utf-8"))
    (tmp_path / INFO_FILE).write_text(json.dumps(info | {"format": 99}), encoding="utf-8")
    with pytest.raises(ValueError, match="format 99"):
        Reader(tmp_path)


def test_a_score_does_not_depend_on_what_it_is_batched_with(tmp_path: Path) -> None:
    """A sentence's score is a function of the question and the sentence alone: not of the sentences read with it
    (int8 activations are scaled per tensor, so a batch would change it), nor of what the cache held."""
    copy_model(tmp_path)
    question = "Why did Britain's plan to send peacekeepers fail?"
    texts = [
        reader_input(TITLE, "The controversy has also drawn attention to the United Kingdom’s role in the matter."),
        reader_input(TITLE, "However, these plans have reportedly encountered significant obstacles."),
        reader_input(
            TITLE,
            "The failure of Starmer’s proposal has been attributed to a combination of logistical challenges, political "
            "hesitancy among some European allies, and the persistent reluctance of Ukraine to accept foreign troops.",
        ),
    ]
    together = Reader(tmp_path).logits(question, texts)
    alone = np.array([Reader(tmp_path).logits(question, [text])[0] for text in texts])  # fresh readers: no cache
    np.testing.assert_allclose(together, alone, atol=1e-6)
    assert np.all(np.isfinite(together))
    # Asked again, the same scores (from the cache), also for a text repeated within one call.
    again = Reader(tmp_path)
    np.testing.assert_allclose(
        again.logits(question, [texts[0], texts[0], *texts]), [together[0], together[0], *together], atol=1e-6
    )


def test_combining_rises_with_either_signal(reader: Reader) -> None:
    selector = np.array([0.2, 0.2, 0.6])
    logits = np.array([-1.0, 2.0, -1.0])
    combined = reader.combine(selector, logits)
    assert np.all((combined > 0) & (combined < 1))
    assert combined[1] > combined[0] and combined[2] > combined[0]


def test_the_reader_reads_only_the_first_passages(seed_engine: Engine) -> None:
    """With reader_depth 2, the first two results may change their quotes and order; every later one is exactly what
    the ranking without the reader gives."""
    without = seed_engine.variant(replace(seed_engine.settings, reader_depth=0))
    with_reader = seed_engine.variant(replace(seed_engine.settings, reader_depth=2))
    assert without.reader is None and with_reader.reader is not None
    changed = 0
    for question in ("Why did Britain's plan fail?", "What did Shoygu allege?", "Which news outlet interviewed Peskov?"):
        plain, read = without.search(question, 8), with_reader.search(question, 8)
        assert {p.hit.row for p in read[:2]} == {p.hit.row for p in plain[:2]}
        assert [(p.hit.row, p.quote.start) for p in read[2:]] == [(p.hit.row, p.quote.start) for p in plain[2:]]
        changed += [(p.hit.row, p.quote.start) for p in read[:2]] != [(p.hit.row, p.quote.start) for p in plain[:2]]
        # The first two quotes carry the combined probability, not the selector's alone: the reader was read.
        selector_only = {(p.hit.row, p.quote.start): p.quote.probability for p in plain}
        assert all(p.quote.probability != selector_only.get((p.hit.row, p.quote.start)) for p in read[:2]), (
            "the reader's scores were not used"
        )
        for passage in read:
            assert passage.document.text[passage.quote.start : passage.quote.end] == passage.quote.text
    print(f"the reader changed the first two results of {changed} of 3 questions")


def test_only_the_selectors_likeliest_sentences_are_read(tmp_path: Path) -> None:
    """With `sentences` = 2, the reader reads the selector's two likeliest sentences of each passage and no other; a
    sentence left unread never outranks one that was read, and the read ones get what reading them all gives."""
    copy_model(tmp_path)
    question = "Why did Britain's plan to send peacekeepers fail?"
    sentences = [
        "The controversy has also drawn attention to the United Kingdom’s role in the matter.",
        "However, these plans have reportedly encountered significant obstacles.",
        "The failure of Starmer’s proposal has been attributed to the persistent reluctance of Ukraine to accept foreign troops.",
        "Peskov spoke to ABC News.",
        "Shoygu alleged that Britain and France were preparing a deployment.",
    ]
    texts = [reader_input(TITLE, s) for s in sentences]
    selector = np.array([0.30, 0.10, 0.20, 0.05, 0.40])  # runs: the first three, the last two
    sizes = [3, 2]
    everything = Reader(tmp_path).probabilities(question, texts, selector, sizes)
    limited_reader = Reader(tmp_path, sentences=2)
    limited = limited_reader.probabilities(question, texts, selector, sizes)
    assert limited_reader.model.reads == 4  # 2 of the first passage's 3, both of the second's
    read = [0, 2, 3, 4]
    np.testing.assert_allclose(limited[read], everything[read], atol=1e-9)
    assert limited[1] <= min(limited[0], limited[2])  # unread: below every read sentence of its passage
    assert Reader(tmp_path, sentences=0).probabilities(question, texts, selector, sizes).tolist() == everything.tolist()
