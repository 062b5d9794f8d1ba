"""How a document is cut into chunks, with exact character offsets.

langchain's RecursiveCharacterTextSplitter chooses the cut points (paragraph, line, sentence, word),
configured so its chunks tile the text exactly: no overlap, separators kept, whitespace not stripped.
Offsets then follow from running lengths, never from searching for the chunk text (which goes wrong
when text repeats, as a headline printed twice does). Overlap is added afterwards as span arithmetic:
each chunk reaches back over the previous chunk's last whole sentences, up to `overlap` characters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter

from citeqa.index.text.documents import Document
from citeqa.index.text.spans import Span, sentence_spans, trim

# Coarsest first; the sentence pattern keeps terminal punctuation with its sentence.
SEPARATORS = ["\n\n", "\n", r"(?<=[.!?…])\s+", r"(?<=[;:,])\s+", r"\s+", ""]


@dataclass(frozen=True, kw_only=True)
class ChunkerSettings:
    """Sizes in characters; a chunk, overlap included, is at most `chunk_size` long (a single word
    longer than that is the only exception). all-MiniLM-L6-v2 reads 256 word pieces and English
    prose averages ~4.5 characters a word piece, so the default stays inside the window."""

    chunk_size: int = 800
    chunk_overlap: int = 200

    def __post_init__(self) -> None:
        if self.chunk_size < 50:
            raise ValueError("chunk_size must be at least 50 characters")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ValueError("chunk_overlap must be >= 0 and smaller than chunk_size")

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str

    @property
    def chunk_id(self) -> str:
        return f"{self.doc_id}#{self.ordinal}"


def _tiling_spans(text: str, chunk_size: int) -> list[Span]:
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=0,
        separators=SEPARATORS,
        is_separator_regex=True,
        keep_separator="end",
        strip_whitespace=False,
    )
    spans: list[Span] = []
    cursor = 0
    for piece in splitter.split_text(text):
        spans.append(Span(cursor, cursor + len(piece)))
        cursor += len(piece)
    if cursor != len(text) or any(text[s:e] != p for (s, e), p in zip(spans, splitter.split_text(text), strict=True)):
        # Guard the one assumption the offsets rest on; it holds for the settings above.
        raise AssertionError("text splitter pieces do not tile the text")
    return spans


def _reach_back(text: str, previous: Span, start: int, overlap: int) -> int:
    """The earliest sentence start inside `previous` within `overlap` characters before `start`."""
    if overlap == 0:
        return start
    for sentence in sentence_spans(text, previous.start, start):
        if start - sentence.start <= overlap:
            return sentence.start
    return start


def split_document(document: Document, settings: ChunkerSettings) -> list[Chunk]:
    text = document.text
    tiles = [
        t for t in (trim(text, s) for s in _tiling_spans(text, settings.chunk_size - settings.chunk_overlap)) if t.end > t.start
    ]
    chunks: list[Chunk] = []
    for ordinal, tile in enumerate(tiles):
        start = tile.start
        if ordinal > 0:
            start = _reach_back(text, tiles[ordinal - 1], tile.start, settings.chunk_overlap)
        chunks.append(Chunk(document.id, ordinal, start, tile.end, text[start : tile.end]))
    return chunks
