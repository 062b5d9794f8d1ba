"""Plain text: decoded (see decoding.py), normalised as one piece. No pages, no sections."""

from __future__ import annotations

from citeqa.index.parsing.assemble import join_pages
from citeqa.index.parsing.decoding import decode_text
from citeqa.index.parsing.formats import Format, media_type
from citeqa.index.parsing.parsed import ParsedDocument, ParseLimits
from citeqa.index.text.documents import DocumentError, title_of


def parse_text(raw: bytes, filename: str, limits: ParseLimits) -> ParsedDocument:
    decoded = decode_text(raw)
    text, _ = join_pages([decoded.text], limits.max_text_chars)
    if not text:
        raise DocumentError("empty document (no text)")
    return ParsedDocument(
        text=text,
        title=title_of(text, filename),
        media_type=media_type(Format.TEXT),
        metadata={"encoding": decoded.encoding},
    )
