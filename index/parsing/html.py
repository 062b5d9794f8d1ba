"""HTML: the page's main content as text, parsed by selectolax (the Lexbor HTML5 parser).

Main content: the page's <main> (or role="main"), else its single <article>, else <body>. Inside it, whatever a
reader does not read as the document is dropped: scripts, styles, forms, navigation, asides, footers, a site
header, hidden elements, and blocks whose class or id names them as boilerplate (cookie and consent banners,
newsletter boxes, share bars, breadcrumbs, related links, comments). Headings open sections; list items become
lines; table rows become labelled lines (see tables.py). The title is the page's <title>, else its first <h1>.
docs/formats.md compares this with trafilatura and resiliparse on the same pages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser, LexborNode

from citeqa.index.parsing.assemble import Block, TextAssembler
from citeqa.index.parsing.decoding import decode_html
from citeqa.index.parsing.formats import Format, media_type
from citeqa.index.parsing.parsed import ParsedDocument, ParseLimits
from citeqa.index.parsing.tables import table_lines
from citeqa.index.text.documents import DocumentError, clean_title, title_of

# Never text a reader reads as the document.
_SKIPPED_TAGS = frozenset(
    {
        "head", "script", "style", "noscript", "template", "svg", "math", "canvas", "iframe", "object", "embed",
        "form", "button", "input", "select", "textarea", "option", "dialog", "nav", "aside", "footer", "menu",
    }
)  # fmt: skip
_SKIPPED_ROLES = frozenset(
    {"navigation", "banner", "contentinfo", "complementary", "search", "dialog", "alertdialog", "menu", "menubar"}
)
# Words in a class or id that name boilerplate, matched as whole words of the name, camelCase split
# ("cookie-banner" and "CookieBanner" have "cookie"; "cookbook" has none); consent-manager names that run words
# together ("CybotCookiebotDialog", "onetrust-consent-sdk") are caught by _BOILERPLATE_STEMS anywhere in the name.
# Neither applies to an element holding the page's <h1>, so that a wrapper such as <div class="page has-sidebar">
# around the article is kept.
_BOILERPLATE_WORDS = frozenset(
    {
        "banner", "popup", "modal", "newsletter", "subscribe", "advert", "advertisement", "ads", "sponsored",
        "promo", "share", "sharing", "social", "breadcrumb", "breadcrumbs", "sidebar", "navbar", "menu", "related",
        "comments", "skip", "toolbar", "masthead", "header", "footer",
    }
)  # fmt: skip
_BOILERPLATE_STEMS = ("cookie", "consent", "gdpr")
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "blockquote", "body", "center", "dd", "details", "div", "dl", "dt", "fieldset",
        "figcaption", "figure", "header", "hgroup", "hr", "legend", "li", "main", "ol", "p", "pre", "section",
        "summary", "ul", "caption",
    }
)  # fmt: skip
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_NAME_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


def _attribute(node: LexborNode, name: str) -> str:
    return (node.attributes.get(name) or "").strip().lower()


def _is_hidden(attributes: dict[str, str | None]) -> bool:
    return (
        "hidden" in attributes
        or (attributes.get("aria-hidden") or "").strip().lower() == "true"
        or bool(_HIDDEN_STYLE.search(attributes.get("style") or ""))
    )


def _names_boilerplate(attributes: dict[str, str | None]) -> bool:
    names = f"{attributes.get('class') or ''} {attributes.get('id') or ''}"
    lowered = names.lower()
    if any(stem in lowered for stem in _BOILERPLATE_STEMS):
        return True
    return not _BOILERPLATE_WORDS.isdisjoint(word.lower() for word in _NAME_WORD.findall(names))


def _skipped(node: LexborNode, in_article: bool) -> bool:
    tag = node.tag
    if tag in _SKIPPED_TAGS or (tag == "header" and not in_article):
        return True
    attributes = node.attributes  # built on each access: read once
    if not attributes:
        return False
    if (attributes.get("role") or "").strip().lower() in _SKIPPED_ROLES or _is_hidden(attributes):
        return True
    return _names_boilerplate(attributes) and node.css_first("h1") is None


def main_content(tree: LexborHTMLParser) -> LexborNode | None:
    """<main>, else the only <article>, else <body>."""
    mains = tree.css("main, [role=main]")
    if mains:
        return mains[0]
    articles = tree.css("article")
    if len(articles) == 1:
        return articles[0]
    return tree.body


def _cell_text(cell: LexborNode) -> str:
    return _WHITESPACE.sub(" ", cell.text(separator=" "))


def _table_blocks(table: LexborNode) -> list[Block]:
    rows: list[list[str]] = []
    header: bool | None = None
    for index, row in enumerate(table.css("tr")):
        cells = [cell for cell in row.iter() if cell.tag in ("td", "th")]
        if index == 0 and cells:
            # Markup that says so settles it; without <th> the first row is guessed at.
            in_thead = row.parent is not None and row.parent.tag == "thead"
            header = True if in_thead or all(cell.tag == "th" for cell in cells) else None
        rows.append([_cell_text(cell) for cell in cells])
    return [Block(line, joins_previous=number > 0) for number, line in enumerate(table_lines(rows, header=header))]


@dataclass
class _Walker:
    """Turns the content tree into blocks. Iterative, so that a page nested ten thousand levels deep cannot
    exhaust Python's stack."""

    blocks: list[Block] = field(default_factory=list)
    inline: list[str] = field(default_factory=list)
    marker: str = ""  # "- " or "3. " for the list item being filled
    joins: bool = False
    preformatted: int = 0

    def flush(self) -> None:
        text = "".join(self.inline)
        self.inline.clear()
        if text.strip():
            self.blocks.append(Block(self.marker + text, joins_previous=self.joins))
            self.marker, self.joins = "", False

    def text(self, value: str) -> None:
        self.inline.append(value if self.preformatted else _WHITESPACE.sub(" ", value))

    def walk(self, root: LexborNode) -> list[Block]:
        # Each entry: (node, entering, in_article); leaving a node matters for block boundaries and <pre>.
        stack: list[tuple[LexborNode, bool, bool]] = [(root, True, root.tag in ("article", "main"))]
        list_counters: list[list[int]] = []  # per open list: [is ordered, next number, items so far]
        while stack:
            node, entering, in_article = stack.pop()
            tag = node.tag
            if not entering:
                if tag in _BLOCK_TAGS:
                    self.flush()
                if tag == "pre":
                    self.preformatted -= 1
                if tag in ("ul", "ol") and list_counters:
                    list_counters.pop()
                if tag == "li":
                    self.marker, self.joins = "", False  # an empty item's marker must not reach the next block
                continue
            if tag == "-text":
                self.text(node.text_content or "")
                continue
            if tag == "-comment" or (node is not root and _skipped(node, in_article)):
                continue
            if tag == "br":
                self.inline.append("\n")
                continue
            if tag in _HEADINGS:
                self.flush()
                self.blocks.append(Block(_cell_text(node), heading_level=_HEADINGS[tag]))
                continue
            if tag == "table":
                self.flush()
                self.blocks.extend(_table_blocks(node))
                continue
            if tag in _BLOCK_TAGS:
                self.flush()
            if tag in ("ul", "ol"):
                start = (node.attributes.get("start") or "").strip()
                number = int(start) if start.isascii() and start.isdigit() and len(start) <= 9 else 1
                list_counters.append([tag == "ol", number, 0])
            elif tag == "li" and list_counters:
                counter = list_counters[-1]
                self.marker = f"{counter[1]}. " if counter[0] else "- "
                self.joins = counter[2] > 0 or len(list_counters) > 1
                counter[1] += 1
                counter[2] += 1
            elif tag == "pre":
                self.preformatted += 1
            stack.append((node, False, in_article))
            children = list(node.iter(include_text=True))
            inside = in_article or tag in ("article", "main")
            stack.extend((child, True, inside) for child in reversed(children))
        self.flush()
        return self.blocks


def _metadata(tree: LexborHTMLParser) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for meta in tree.css("meta[content]"):
        name = _attribute(meta, "name") or _attribute(meta, "property")
        if name in ("description", "author", "keywords", "og:title", "og:site_name", "article:published_time"):
            value = " ".join((meta.attributes.get("content") or "").split())
            if value:
                metadata[name] = value
    html = tree.css_first("html")
    if html is not None and _attribute(html, "lang"):
        metadata["language"] = _attribute(html, "lang")
    return metadata


def _title(tree: LexborHTMLParser) -> str | None:
    for selector in ("title", "h1"):
        node = tree.css_first(selector)
        if node is not None and (title := clean_title(node.text(separator=" "))):
            return title
    return None


def _blocks(tree: LexborHTMLParser) -> Iterator[Block]:
    root = main_content(tree)
    if root is None:
        return iter(())
    return iter(_Walker().walk(root))


# Removed from the whole tree before anything reads it, so that no text() call (a title, a table cell) sees code.
_CODE_TAGS = ["script", "style", "noscript", "template", "svg", "math"]


def parse_html(raw: bytes, filename: str, limits: ParseLimits) -> ParsedDocument:
    decoded = decode_html(raw)
    tree = LexborHTMLParser(decoded.text)
    tree.strip_tags(_CODE_TAGS)
    assembler = TextAssembler(limits.max_text_chars)
    for block in _blocks(tree):
        assembler.add(block)
    text, sections = assembler.finish()
    if not text:
        raise DocumentError("no readable text in the page (after removing navigation, scripts and banners)")
    metadata = _metadata(tree) | {"encoding": decoded.encoding}
    title = _title(tree) or title_of(text, filename)
    return ParsedDocument(text=text, title=title, media_type=media_type(Format.HTML), metadata=metadata, sections=sections)
