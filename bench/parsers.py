"""Measures the PDF and HTML extractors citeqa could use, on the same files, and prints the figures behind
docs/formats.md.

    python -m bench.parsers            # from the repository root

Candidates that are not installed are skipped: pypdf, trafilatura and resiliparse are not citeqa dependencies;
install them beside it (`pip install pypdf trafilatura resiliparse`) to compare. Real pages come from the Rust
book (mdBook HTML) and PDFs from /usr/share/doc when this machine has them.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import re
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from statistics import median

from citeqa.index.parsing.dispatch import parse_document
from citeqa.index.parsing.parsed import ParseLimits
from citeqa.index.text.normalize import normalize_text
from tests import files

RUST_BOOK = Path.home() / ".rustup/toolchains/stable-x86_64-unknown-linux-gnu/share/doc/rust/html/book"
REAL_PDFS = [Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf"), Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf")]
WORD = re.compile(r"\w+(?:[-’']\w+)*")


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def words(text: str) -> list[str]:
    return WORD.findall(normalize_text(text))


def best_of(runs: int, call: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


# --- PDF ---------------------------------------------------------------------------------------------------------


def pdfium_pages(raw: bytes) -> list[str]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(raw)
    pages = [pdf[i].get_textpage().get_text_range().replace("\ufffe", "-\n") for i in range(len(pdf))]
    pdf.close()
    return pages


def citeqa_pages(raw: bytes) -> list[str]:
    parsed = parse_document(raw, "x.pdf", ParseLimits())
    assert parsed.pages is not None  # a PDF always has pages
    bounds = [*parsed.pages, len(parsed.text)]
    return [parsed.text[bounds[i] : bounds[i + 1]] for i in range(len(parsed.pages))]


def pypdf_pages(raw: bytes, mode: str = "plain") -> list[str]:
    import pypdf

    return [page.extract_text(extraction_mode=mode) for page in pypdf.PdfReader(io.BytesIO(raw)).pages]


def pdf_candidates() -> dict[str, Callable[[bytes], list[str]]]:
    candidates: dict[str, Callable[[bytes], list[str]]] = {
        "pypdfium2 (stream order)": pdfium_pages,
        "citeqa (pypdfium2 + column order)": citeqa_pages,
    }
    if has("pypdf"):
        candidates["pypdf"] = pypdf_pages
        candidates["pypdf layout mode"] = lambda raw: pypdf_pages(raw, "layout")
    return candidates


def order_score(expected: str, got: str) -> float:
    """Share of the expected consecutive word pairs that come out consecutive: 1.0 is the reading order."""
    want = words(expected)
    have = set(itertools.pairwise(words(got)))
    pairs = list(itertools.pairwise(want))
    return sum(pair in have for pair in pairs) / len(pairs)


def recall(expected: str, got: str) -> float:
    want, have = Counter(words(expected)), Counter(words(got))
    return sum(min(count, have[word]) for word, count in want.items()) / sum(want.values())


def bench_pdf() -> None:
    report = files.report_pdf()
    hyphenated = "Cooperation with the international monitoring network continues."
    page_one = " ".join([files.TITLE, files.LEFT_COLUMN, hyphenated, files.RIGHT_COLUMN])
    page_two = files.PAGE_TWO_LEFT + " " + files.PAGE_TWO_RIGHT
    long = files.long_pdf(200)
    print(f"\n## PDF (fixture: {len(report):,} bytes, 5 pages; speed: 200 pages, {len(long) / 1e6:.1f} MB)\n")
    print(
        "| extractor | words p.1-2 | order p.1 (columns in stream order) | order p.2 (columns interleaved) "
        "| 'international' rejoined | 200 pages, s |"
    )
    print("|---|---|---|---|---|---|")
    for name, extract in pdf_candidates().items():
        pages = extract(report)
        seconds = best_of(3, partial(extract, long))
        print(
            f"| {name} | {recall(page_one + ' ' + page_two, pages[0] + ' ' + pages[1]):.3f} | "
            f"{order_score(page_one, pages[0]):.3f} | {order_score(page_two, pages[1]):.3f} | "
            f"{'yes' if 'international' in normalize_text(pages[0]) else 'no'} | {seconds:.2f} |"
        )
    real = [path for path in REAL_PDFS if path.exists()]
    if real and has("pypdf"):
        print("\nReal pdfTeX documents: words found by each, and the share of the other library's words it also found.\n")
        print(
            "| file | pages | pypdfium2 words | pypdf words | pypdf's words in pypdfium2 | pypdfium2's words in pypdf "
            "| pypdfium2 s | pypdf s |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for path in real:
            raw = path.read_bytes()
            a, b = " ".join(citeqa_pages(raw)), " ".join(pypdf_pages(raw))
            ta = best_of(3, partial(citeqa_pages, raw))
            tb = best_of(3, partial(pypdf_pages, raw))
            print(
                f"| {path.name} | {len(citeqa_pages(raw))} | {len(words(a)):,} | {len(words(b)):,} | {recall(b, a):.3f} | "
                f"{recall(a, b):.3f} | {ta:.2f} | {tb:.2f} |"
            )


# --- HTML --------------------------------------------------------------------------------------------------------

DIV_SOUP_SENTENCES = (
    "The council approved the new flood barrier on Tuesday evening.",
    "Construction will begin in March and last eighteen months.",
    "Residents near the river will receive sandbags until then.",
)
DIV_SOUP_BOILERPLATE = ("Top stories", "Cookie settings", "Advertisement", "Most read", "Contact us", "Log in")


def div_soup_html() -> str:
    """A page without semantic tags: every region is a <div> known only by its class or id."""
    paragraphs = "".join(f"<div class='para'>{sentence}</div>" for sentence in DIV_SOUP_SENTENCES)
    return f"""<html><head><title>Flood barrier approved</title></head><body>
<div id="top"><div class="menu"><a href="/">Top stories</a> <a href="/login">Log in</a></div></div>
<div class="cc-window cc-banner">Cookie settings: we use cookies.</div>
<div id="wrap"><div id="content"><div class="headline">Flood barrier approved</div>{paragraphs}</div>
<div id="sidebar"><div class="ad">Advertisement</div><div class="most-read">Most read: <a href="#">x</a></div></div></div>
<div class="bottom"><a href="/contact">Contact us</a></div></body></html>"""


BLOG_SENTENCES = (
    "Sourdough needs a lively starter, fed twice a day for a week.",
    "Bake the loaf in a covered pot so the crust stays thin.",
    "A long cold proof in the fridge deepens the flavour.",
)
BLOG_BOILERPLATE = ("Great recipe, thanks!", "You might also like", "Follow us", "Posted in Baking", "Subscribe")


def blog_html() -> str:
    items = "".join(f"<p>{sentence}</p>" for sentence in BLOG_SENTENCES)
    return f"""<!doctype html><html><head><title>Sourdough at home</title></head><body>
<header><h2 class="site-title">Crumb Blog</h2><nav><a href="/">Recipes</a></nav></header>
<div class="container"><article class="post"><h1>Sourdough at home</h1>{items}
<footer class="post-meta">Posted in Baking</footer></article>
<section id="comments" class="comments"><h3>2 comments</h3><p>Great recipe, thanks!</p></section>
<section class="related-posts"><h3>You might also like</h3><ul><li>Rye bread</li></ul></section></div>
<div class="social-follow">Follow us</div><form><input placeholder="Subscribe"></form></body></html>"""


def citeqa_html(html: str) -> str:
    return parse_document(html.encode(), "x.html").text


def html_candidates() -> dict[str, Callable[[str], str]]:
    from selectolax.lexbor import LexborHTMLParser

    def whole_body(html: str) -> str:
        tree = LexborHTMLParser(html)
        tree.strip_tags(["script", "style", "noscript"])
        return tree.body.text(separator=" ") if tree.body else ""

    candidates: dict[str, Callable[[str], str]] = {
        "citeqa (selectolax + rules)": citeqa_html,
        "selectolax, whole body": whole_body,
    }
    if has("trafilatura"):
        import trafilatura

        candidates["trafilatura"] = lambda html: trafilatura.extract(html, include_tables=True) or ""
        candidates["trafilatura, favor_recall"] = lambda html: (
            trafilatura.extract(html, include_tables=True, favor_recall=True) or ""
        )
    if has("resiliparse"):
        from resiliparse.extract.html2text import extract_plain_text

        candidates["resiliparse main_content"] = lambda html: extract_plain_text(html, main_content=True)
    return candidates


def flat(text: str) -> str:
    return " ".join(text.split())


def rust_book_pages(limit: int = 40) -> list[tuple[str, str]]:
    """(html, text of its <main>) for chapter pages of the Rust book; <main> is where mdBook puts the chapter."""
    from selectolax.lexbor import LexborHTMLParser

    pages = []
    for path in sorted(RUST_BOOK.glob("ch*.html"))[:limit]:
        html = path.read_text(encoding="utf-8")
        tree = LexborHTMLParser(html)
        tree.strip_tags(["script", "style", "noscript"])
        main = tree.css_first("main")
        if main is not None:
            pages.append((html, main.text(separator=" ")))
    return pages


def bench_html() -> None:
    fixtures = [
        ("news article (semantic tags)", files.article_html().decode(), files.HTML_ARTICLE_SENTENCES, files.HTML_BOILERPLATE),
        ("div soup (no semantic tags)", div_soup_html(), DIV_SOUP_SENTENCES, DIV_SOUP_BOILERPLATE),
        ("blog post with comments", blog_html(), BLOG_SENTENCES, BLOG_BOILERPLATE),
    ]
    filler = "<p>Ice core sample notes. </p>" * 60_000
    big = files.article_html().decode().replace("<h2>Results</h2>", "<h2>Results</h2>" + filler)
    book = rust_book_pages() if RUST_BOOK.exists() else []
    print(f"\n## HTML (speed: one {len(big) / 1e6:.1f} MB page; real: {len(book)} Rust book chapters)\n")
    sentences_total = sum(len(fixture[2]) for fixture in fixtures)
    boilerplate_total = sum(len(fixture[3]) for fixture in fixtures)
    print(
        f"| extractor | article sentences kept (of {sentences_total}) | boilerplate strings leaked (of {boilerplate_total}) "
        "| big page, s | book: chapter words kept | book: words not in chapter | book, s |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, extract in html_candidates().items():
        kept = leaked = 0
        for _, html, sentences, boilerplate in fixtures:
            text = flat(extract(html))
            kept += sum(sentence in text for sentence in sentences)
            leaked += sum(marker in text for marker in boilerplate)
        seconds = best_of(3, partial(extract, big))
        book_cells = "| - | - | - |"
        if book:
            start = time.perf_counter()
            outputs = [extract(html) for html, _ in book]
            elapsed = time.perf_counter() - start
            kept_share = median(recall(main, out) for (_, main), out in zip(book, outputs, strict=True))
            extra = median(1 - recall(out, main) for (_, main), out in zip(book, outputs, strict=True))
            book_cells = f"| {kept_share:.3f} | {extra:.3f} | {elapsed:.2f} |"
        print(f"| {name} | {kept} | {leaked} | {seconds:.2f} {book_cells}")


if __name__ == "__main__":
    bench_pdf()
    bench_html()
