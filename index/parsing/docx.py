"""Word (.docx), read by python-docx after zipguard.py has checked the container.

The body is read in order. Headings (the built-in "Heading N" styles, or any paragraph or style with an outline
level) open sections; the "Title" style counts as a top-level heading. List paragraphs become "- item" lines.
Tables become one labelled line per row (see tables.py). Text boxes, headers, footers, footnotes and comments
are not read.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import docx
from docx.oxml.ns import qn
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.styles.style import BaseStyle
from docx.table import Table
from docx.text.paragraph import Paragraph

from citeqa.index.parsing.assemble import Block, TextAssembler
from citeqa.index.parsing.formats import Format, media_type
from citeqa.index.parsing.parsed import ParsedDocument, ParseLimits
from citeqa.index.parsing.tables import table_lines
from citeqa.index.parsing.zipguard import check_archive
from citeqa.index.text.documents import DocumentError, clean_title, title_of

_HEADING_STYLE = re.compile(r"^heading\s*([1-9])$", re.IGNORECASE)
_BODY_TEXT_OUTLINE_LEVEL = 9  # Word's outline level for ordinary paragraphs
_STYLE_CHAIN_LIMIT = 16  # a style's based-on chain; a cycle in a damaged file must not loop forever


def _outline_level(properties: BaseOxmlElement | None) -> int | None:
    """The heading level (1-9) an element's <w:pPr><w:outlineLvl> gives, if any."""
    if properties is None:
        return None
    element = properties.find(qn("w:outlineLvl"))
    if element is None:
        return None
    try:
        value = int(element.get(qn("w:val")))
    except (TypeError, ValueError):
        return None
    return value + 1 if 0 <= value < _BODY_TEXT_OUTLINE_LEVEL else None


def _styles(paragraph: Paragraph) -> Iterator[BaseStyle]:
    style = paragraph.style
    for _ in range(_STYLE_CHAIN_LIMIT):
        if style is None:
            return
        yield style
        style = style.base_style


def heading_level(paragraph: Paragraph) -> int:
    """0 for body text, else the heading's level."""
    direct = _outline_level(paragraph._p.pPr)
    if direct is not None:
        return direct
    for style in _styles(paragraph):
        name = (style.name or "").strip()
        if name.lower() == "title":
            return 1
        match = _HEADING_STYLE.match(name)
        if match:
            return int(match.group(1))
        level = _outline_level(style.element.pPr)
        if level is not None:
            return level
    return 0


def is_list_item(paragraph: Paragraph) -> bool:
    properties = paragraph._p.pPr
    if properties is not None and properties.numPr is not None:
        return True
    for style in _styles(paragraph):
        if (style.name or "").lower().startswith("list") or (
            style.element.pPr is not None and style.element.pPr.numPr is not None
        ):
            return True
    return False


def _table_rows(table: Table) -> list[list[str]]:
    rows: list[list[str]] = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if cell._tc is previous:  # a merged cell is returned once per grid column it spans
                continue
            previous = cell._tc
            cells.append(" ".join(paragraph.text for paragraph in cell.paragraphs))
        rows.append(cells)
    return rows


def _blocks(document: docx.document.Document) -> Iterator[Block]:
    in_list = False
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            for number, line in enumerate(table_lines(_table_rows(item))):
                yield Block(line, joins_previous=number > 0)
            in_list = False
            continue
        level = heading_level(item)
        if level:
            yield Block(item.text, heading_level=level)
            in_list = False
        elif is_list_item(item):
            yield Block("- " + item.text, joins_previous=in_list)
            in_list = True
        else:
            yield Block(item.text)
            in_list = False


def _metadata(document: docx.document.Document) -> dict[str, str]:
    core = document.core_properties
    values = {
        "title": core.title,
        "author": core.author,
        "subject": core.subject,
        "keywords": core.keywords,
        "language": core.language,
        "category": core.category,
        "created": core.created.isoformat() if core.created else None,
        "modified": core.modified.isoformat() if core.modified else None,
    }
    return {key: " ".join(value.split()) for key, value in values.items() if value and value.strip()}


def parse_docx(raw: bytes, filename: str, limits: ParseLimits) -> ParsedDocument:
    check_archive(raw, limits.max_unpacked_bytes)
    assembler = TextAssembler(limits.max_text_chars)
    try:
        document = docx.Document(io.BytesIO(raw))
        for block in _blocks(document):
            assembler.add(block)
        metadata = _metadata(document)
    except DocumentError:
        raise
    except Exception as exc:
        # python-docx raises whatever its XML and package layers raise on a damaged file (KeyError for a missing
        # part, lxml syntax errors, ValueError ...); each means the same thing to the person who sent it.
        raise DocumentError(f"damaged Word document: {type(exc).__name__}: {exc}") from exc
    text, sections = assembler.finish()
    if not text:
        raise DocumentError("empty document (no text)")
    title = clean_title(metadata.get("title")) or clean_title(assembler.first_heading) or title_of(text, filename)
    return ParsedDocument(text=text, title=title, media_type=media_type(Format.DOCX), metadata=metadata, sections=sections)
