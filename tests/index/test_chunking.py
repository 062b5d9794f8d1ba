import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citeqa.index.text.chunking import ChunkerSettings, split_document
from citeqa.index.text.documents import DocumentError, make_document
from citeqa.index.text.spans import evidence_units, sentence_spans
from citeqa.index.writing.ingest import load_folder
from tests.conftest import SEEDS


def assert_exact(document, chunks) -> None:
    for chunk in chunks:
        assert document.text[chunk.start : chunk.end] == chunk.text


def test_every_seed_chunk_points_at_its_exact_text() -> None:
    [document] = load_folder(SEEDS).documents
    chunks = split_document(document, ChunkerSettings())
    assert len(chunks) > 1
    assert_exact(document, chunks)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert all(len(c.text) <= ChunkerSettings().chunk_size for c in chunks)


def test_the_headline_printed_twice_gets_two_distinct_spans() -> None:
    [document] = load_folder(SEEDS).documents
    headline = document.title
    # Small chunks: each copy of the headline becomes a chunk of its own.
    chunks = split_document(document, ChunkerSettings(chunk_size=len(headline) + 5, chunk_overlap=0))
    copies = [c for c in chunks if c.text == headline]
    assert len(copies) == 2
    assert copies[0].start == 0
    assert copies[1].start == document.text.index(headline, 1)
    assert_exact(document, chunks)


def test_overlapping_chunks_share_whole_sentences_and_cover_the_text() -> None:
    text = " ".join(f"Sentence number {i} says something about topic {i % 7}." for i in range(60))
    document = make_document("repeat.txt", text, "repeat.txt")
    chunks = split_document(document, ChunkerSettings(chunk_size=300, chunk_overlap=100))
    assert_exact(document, chunks)
    overlaps = [prev.end - nxt.start for prev, nxt in itertools.pairwise(chunks)]
    assert all(0 < overlap <= 100 for overlap in overlaps)
    starts = {s.start for s in sentence_spans(text)}
    assert all(c.start in starts for c in chunks)
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert covered >= {i for i, ch in enumerate(text) if not ch.isspace()}


def test_identical_repeated_paragraphs_each_get_their_own_offsets() -> None:
    paragraph = "The same paragraph appears again and again in this file."
    document = make_document("same.txt", "\n\n".join([paragraph] * 40), "same.txt")
    chunks = split_document(document, ChunkerSettings(chunk_size=120, chunk_overlap=0))
    assert_exact(document, chunks)
    assert len({c.start for c in chunks}) == len(chunks)
    assert chunks == sorted(chunks, key=lambda c: c.start)


def test_a_single_overlong_word_is_still_cut_exactly() -> None:
    document = make_document("long.txt", "start " + "x" * 500 + " end", "long.txt")
    chunks = split_document(document, ChunkerSettings(chunk_size=100, chunk_overlap=10))
    assert_exact(document, chunks)
    assert "".join(c.text for c in chunks).replace(" ", "").count("x") >= 500


@pytest.mark.parametrize(("size", "overlap"), [(10, 0), (100, 100), (100, -1)])
def test_bad_chunker_settings_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        ChunkerSettings(chunk_size=size, chunk_overlap=overlap)


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(list("ab .!?\n,;’")), min_size=1, max_size=600).filter(str.strip),
    size=st.integers(50, 200),
    overlap_share=st.floats(0, 0.9),
)
def test_offsets_are_exact_for_any_text(text: str, size: int, overlap_share: float) -> None:
    document = make_document("any.txt", text, "any.txt")
    chunks = split_document(document, ChunkerSettings(chunk_size=size, chunk_overlap=int(size * overlap_share)))
    assert chunks
    assert_exact(document, chunks)
    assert all(c.text.strip() == c.text for c in chunks)


# Text as hostile sources send it: CRLF and lone CRs, NUL, combining marks, right-to-left text and overrides,
# emoji with joiners, lone surrogates, no-break and zero-width spaces, and any other code point.
HOSTILE_PIECES = st.sampled_from(
    ["\r\n", "\r", "\n\n", "\x00", "e\u0301", "\u0301", "\u202e", "\u200f", "שלום עולם.", "مرحبا.", "👩\u200d👩\u200d👧",
     "🏳️\u200d🌈", "\ud800", "\udc00", "\u00a0", "\u200b", "\ufeff", ". ", "? ", "word", "Dr. ", "…", "\t"]
)  # fmt: skip
HOSTILE_TEXT = st.lists(st.one_of(HOSTILE_PIECES, st.characters(exclude_categories=())), max_size=300).map("".join)


@settings(max_examples=150, deadline=None)
@given(text=HOSTILE_TEXT, size=st.integers(50, 200))
def test_hostile_unicode_is_refused_with_a_reason_or_split_exactly(text: str, size: int) -> None:
    try:
        document = make_document("hostile.txt", text, "hostile.txt")
    except DocumentError as refused:
        assert str(refused)  # NUL bytes, lone surrogates or nothing but whitespace: a reason, never a crash
        return
    chunks = split_document(document, ChunkerSettings(chunk_size=size, chunk_overlap=size // 4))
    assert chunks
    assert_exact(document, chunks)
    covered = set().union(*(range(c.start, c.end) for c in chunks))
    assert all(i in covered for i, char in enumerate(text) if not char.isspace())  # no visible character is lost
    units = evidence_units(text)
    assert all(0 <= u.start < u.end <= len(text) and text[u.start : u.end].strip() for u in units)
    assert [u.start for u in units] == sorted(u.start for u in units)
