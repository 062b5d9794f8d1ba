"""Markdown, read as Markdown (CommonMark plus tables and strikethrough, by markdown-it-py).

The text is what a reader of the rendered page sees: emphasis marks, link targets and HTML tags are dropped,
headings become sections, list items become lines ("- item", "2. item"), table rows become labelled lines (see
tables.py), code keeps its lines. YAML front matter becomes metadata and gives the title.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import date

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token
from selectolax.lexbor import LexborHTMLParser

from citeqa.index.parsing.assemble import Block, TextAssembler
from citeqa.index.parsing.decoding import decode_text
from citeqa.index.parsing.formats import Format, media_type
from citeqa.index.parsing.parsed import ParsedDocument, ParseLimits
from citeqa.index.parsing.tables import table_lines
from citeqa.index.text.documents import DocumentError, clean_title, title_of

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
# Front matter is a few lines; a bigger block is more likely a document that opens with a horizontal rule.
_FRONT_MATTER_MAX_CHARS = 64 * 1024
_Scalar = str | int | float | bool | date


def split_front_matter(source: str) -> tuple[dict[str, str], str]:
    """(metadata, the rest of the document). Only scalar values and lists of scalars are kept: nested structures
    have no one-line form, and YAML aliases could expand them without bound."""
    match = _FRONT_MATTER.match(source)
    if match is None or match.end() > _FRONT_MATTER_MAX_CHARS:
        return {}, source
    try:
        loaded = yaml.safe_load(match.group(1) or "")
    except yaml.YAMLError:
        return {}, source  # not front matter after all: a rule, some text, a rule
    if not isinstance(loaded, dict):
        return {}, source
    metadata: dict[str, str] = {}
    for key, value in loaded.items():
        if isinstance(value, _Scalar):
            metadata[str(key)] = str(value)
        elif isinstance(value, list) and all(isinstance(item, _Scalar) for item in value):
            metadata[str(key)] = ", ".join(str(item) for item in value)
    return metadata, source[match.end() :]


def _html_text(html: str) -> str:
    body = LexborHTMLParser(html).body
    return body.text(separator=" ") if body is not None else ""


def inline_text(token: Token) -> str:
    """What a reader sees of an inline token: text, code, image alt text; no markup."""
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")  # a line break inside a paragraph renders as a space
        elif child.type == "hardbreak":
            parts.append("\n")
        elif child.type == "image":
            parts.append(child.content)  # the alt text
    return "".join(parts)


class _ListState:
    def __init__(self, ordered: bool, start: int) -> None:
        self.ordered = ordered
        self.next_number = start
        self.items = 0


def _blocks(tokens: Sequence[Token]) -> Iterator[Block]:
    lists: list[_ListState] = []
    pending_marker: str | None = None  # the marker of a list item whose first paragraph has not come yet
    joins = False
    rows: list[list[str]] = []
    header_rows = 0
    index = 0
    while index < len(tokens):
        token = tokens[index]
        kind = token.type
        if kind == "heading_open":
            yield Block(inline_text(tokens[index + 1]), heading_level=int(token.tag[1:]))
            index += 2
        elif kind in ("bullet_list_open", "ordered_list_open"):
            start = int(token.attrGet("start") or 1) if kind == "ordered_list_open" else 1
            lists.append(_ListState(kind == "ordered_list_open", start))
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif kind == "list_item_open" and lists:
            state = lists[-1]
            pending_marker = f"{state.next_number}. " if state.ordered else "- "
            state.next_number += 1
            # Items follow each other line by line; so does a nested list after its parent item.
            joins = state.items > 0 or len(lists) > 1
            state.items += 1
        elif kind == "list_item_close":
            pending_marker = None  # an empty item: its marker must not land on the next paragraph
        elif kind == "inline" and tokens[index - 1].type == "paragraph_open":
            text = inline_text(token)
            if pending_marker is not None:
                yield Block(pending_marker + text, joins_previous=joins)
                pending_marker = None
            else:
                yield Block(text)
        elif kind in ("fence", "code_block"):
            yield Block(token.content)
        elif kind == "html_block":
            yield Block(_html_text(token.content))
        elif kind == "table_open":
            rows, header_rows = [], 0
        elif kind == "tr_open":
            rows.append([])
        elif kind in ("th_open", "td_open"):
            cell = tokens[index + 1] if index + 1 < len(tokens) and tokens[index + 1].type == "inline" else None
            rows[-1].append(inline_text(cell) if cell is not None else "")
            header_rows += kind == "th_open" and len(rows) == 1
        elif kind == "table_close":
            for number, line in enumerate(table_lines(rows, header=header_rows > 0)):
                yield Block(line, joins_previous=number > 0)
        index += 1


_MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def parse_markdown(raw: bytes, filename: str, limits: ParseLimits) -> ParsedDocument:
    decoded = decode_text(raw)
    source = decoded.text.replace("\r\n", "\n").replace("\r", "\n")
    metadata, body = split_front_matter(source)
    assembler = TextAssembler(limits.max_text_chars)
    try:
        tokens = _MARKDOWN.parse(body)
    except RecursionError as exc:  # pathological nesting; markdown-it caps most of it but not every path
        raise DocumentError("Markdown nested too deeply to read") from exc
    for block in _blocks(tokens):
        assembler.add(block)
    text, sections = assembler.finish()
    if not text:
        raise DocumentError("empty document (no text)")
    metadata["encoding"] = decoded.encoding
    title = clean_title(metadata.get("title")) or clean_title(assembler.first_heading) or title_of(text, filename)
    return ParsedDocument(text=text, title=title, media_type=media_type(Format.MARKDOWN), metadata=metadata, sections=sections)
