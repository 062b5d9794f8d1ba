"""Real documents for the parser tests, written by the real writer libraries (reportlab, python-docx, zipfile).

Every builder returns the file's bytes; the facts a test checks (which sentence is on which page, which words a
column holds) are module constants, so a test and the file it reads cannot drift apart.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence

from docx import Document as new_docx
from PIL import Image
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.pdfencrypt import StandardEncryption
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfgen.canvas import Canvas

FONT = "Helvetica"
FONT_SIZE = 10
LEADING = 13
PAGE_WIDTH, PAGE_HEIGHT = LETTER
LEFT_X, RIGHT_X, COLUMN_WIDTH = 54.0, 324.0, 234.0

LEFT_COLUMN = (
    "Glaciers in the northern valley retreated by forty metres during the survey period. "
    "Field teams measured the ice front every spring and recorded the meltwater discharge at three gauges. "
    "The records show that warm autumns matter more than snowy winters for the annual balance."
)
RIGHT_COLUMN = (
    "Sediment cores from the lake confirm the same pattern over two centuries. "
    "Pollen counts rise whenever the glacier shrinks, because birch and alder colonise the exposed moraine. "
    "Radiocarbon dates anchor the cores to the historical maps kept in the regional archive."
)
# Two lines that end the left column: the word "international" is split across the line break.
HYPHENATED_LINES = ("Cooperation with the inter-", "national monitoring network continues.")
HYPHENATED_WORD = "international"

PAGE_TWO_LEFT = (
    "Mountain hares change their coats twice a year and the timing follows day length rather than snow cover. "
    "In years with late snow the white coat makes the hares conspicuous to foxes and eagles."
)
PAGE_TWO_RIGHT = (
    "Camera traps placed along the ridge counted predators on every night of the study. "
    "Detections of foxes doubled in the weeks when brown ground met white hares."
)
PAGE_THREE_SENTENCE = "The calibration sentence is printed on page three and nowhere else."
CLOSING_SENTENCE = "The final page thanks the wardens of the national park for their patience."
# A table under the closing sentence, written row by row like the interleaved columns: its rows must stay rows.
PDF_TABLE = (
    ("Site", "Altitude", "Ice loss"),
    ("North cirque", "2,410 m", "12 m"),
    ("East valley", "1,980 m", "31 m"),
    ("South ridge", "2,105 m", "7 m"),
    ("West basin", "1,760 m", "19 m"),
)
PDF_TABLE_COLUMNS = (LEFT_X, 200.0, 330.0)
TITLE = "Ice, Hares and Sediment"


def _lines(text: str) -> list[str]:
    return simpleSplit(text, FONT, FONT_SIZE, COLUMN_WIDTH)


def _draw_lines(canvas: Canvas, x: float, lines: Sequence[str], top: float) -> None:
    for number, line in enumerate(lines):
        canvas.drawString(x, top - number * LEADING, line)


def _draw_rows(canvas: Canvas, left: Sequence[str], right: Sequence[str], top: float) -> None:
    """Both columns written row by row (left line, right line, ...): the content stream interleaves the columns,
    as some writers do, so only a layout-aware extractor recovers the reading order."""
    for number in range(max(len(left), len(right))):
        y = top - number * LEADING
        if number < len(left):
            canvas.drawString(LEFT_X, y, left[number])
        if number < len(right):
            canvas.drawString(RIGHT_X, y, right[number])


def _image_only_page(canvas: Canvas) -> None:
    picture = Image.new("RGB", (120, 80), (40, 90, 160))
    canvas.drawImage(ImageReader(picture), 150, 400, width=300, height=200)


def report_pdf(*, encrypt_with: str | None = None) -> bytes:
    """Five pages: two-column text (columns written one after the other, with a hyphenated line break), two-column
    text written row by row, a page with one known sentence, an image-only page, and a closing page with a table."""
    buffer = io.BytesIO()
    encryption = StandardEncryption(encrypt_with, ownerPassword=encrypt_with + "-owner") if encrypt_with else None
    canvas = Canvas(buffer, pagesize=LETTER, encrypt=encryption)
    canvas.setTitle(TITLE)
    canvas.setAuthor("Valley Survey")
    top = PAGE_HEIGHT - 90

    canvas.setFont("Helvetica-Bold", 16)
    canvas.drawString(LEFT_X, PAGE_HEIGHT - 60, TITLE)
    canvas.setFont(FONT, FONT_SIZE)
    left = [*_lines(LEFT_COLUMN), *HYPHENATED_LINES]
    _draw_lines(canvas, LEFT_X, left, top)
    _draw_lines(canvas, RIGHT_X, _lines(RIGHT_COLUMN), top)
    canvas.showPage()

    canvas.setFont(FONT, FONT_SIZE)
    _draw_rows(canvas, _lines(PAGE_TWO_LEFT), _lines(PAGE_TWO_RIGHT), top)
    canvas.showPage()

    canvas.setFont(FONT, FONT_SIZE)
    canvas.drawString(LEFT_X, top, PAGE_THREE_SENTENCE)
    canvas.showPage()

    _image_only_page(canvas)
    canvas.showPage()

    canvas.setFont(FONT, FONT_SIZE)
    canvas.drawString(LEFT_X, top, CLOSING_SENTENCE)
    for number, row in enumerate(PDF_TABLE):
        for x, cell in zip(PDF_TABLE_COLUMNS, row, strict=True):
            canvas.drawString(x, top - 40 - number * LEADING, cell)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def scanned_pdf(pages: int = 2) -> bytes:
    """Pages that carry only pictures, like a scan without OCR."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=LETTER)
    for _ in range(pages):
        _image_only_page(canvas)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def long_pdf(pages: int, lines_per_page: int = 45) -> bytes:
    """A long single-column report, for measuring extraction speed."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=LETTER)
    lines = _lines(" ".join([LEFT_COLUMN, RIGHT_COLUMN, PAGE_TWO_LEFT, PAGE_TWO_RIGHT] * 8))
    for page in range(pages):
        canvas.setFont(FONT, FONT_SIZE)
        canvas.drawString(LEFT_X, PAGE_HEIGHT - 50, f"Page {page + 1}")
        _draw_lines(canvas, LEFT_X, [lines[(page + n) % len(lines)] for n in range(lines_per_page)], PAGE_HEIGHT - 70)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


# The Word document: a heading path, a list and a table whose rows must read as sentences.
DOCX_TITLE = "Field Season Report"
DOCX_TABLE = (
    ("Site", "Altitude", "Ice loss"),
    ("North cirque", "2,410 m", "12 m"),
    ("East valley", "1,980 m", "31 m"),
)
DOCX_LIST = ("Check the gauges every morning.", "Photograph the ice front from the cairn.", "Log the weather at noon.")
DOCX_RESULTS_SENTENCE = "The east valley lost the most ice."


def report_docx() -> bytes:
    document = new_docx()
    document.core_properties.title = DOCX_TITLE
    document.core_properties.author = "Valley Survey"
    document.add_paragraph("Prepared for the regional archive.")
    document.add_heading("Methods", level=1)
    document.add_paragraph("Each team followed the same routine:")
    for item in DOCX_LIST:
        document.add_paragraph(item, style="List Bullet")
    document.add_heading("Results", level=1)
    document.add_paragraph(DOCX_RESULTS_SENTENCE)
    document.add_heading("Table 2", level=2)
    table = document.add_table(rows=len(DOCX_TABLE), cols=len(DOCX_TABLE[0]))
    for row, values in zip(table.rows, DOCX_TABLE, strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    document.add_paragraph("Altitudes are above sea level.")
    document.add_heading("Discussion", level=1)
    document.add_paragraph("Warm autumns explain most of the loss.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def docx_with_extra_member(name: str, size: int) -> bytes:
    """A valid Word document plus one member of `size` zero bytes: it compresses about a thousandfold, the shape
    of a zip bomb."""
    buffer = io.BytesIO(report_docx())
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED) as archive, archive.open(name, "w") as member:
        chunk = bytes(1024 * 1024)
        for _ in range(size // len(chunk)):
            member.write(chunk)
        member.write(bytes(size % len(chunk)))
    return buffer.getvalue()


def plain_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def windows_executable() -> bytes:
    """The first bytes of a PE file: the DOS header ("MZ"), its stub message and the "PE" signature."""
    header = bytearray(128)
    header[0:2] = b"MZ"
    header[0x3C:0x40] = (0x80).to_bytes(4, "little")  # offset of the PE header
    stub = b"This program cannot be run in DOS mode.\r\r\n$"
    header[0x4E : 0x4E + len(stub)] = stub
    return bytes(header) + b"PE\x00\x00" + bytes(256)


# The web page: an article wrapped in everything a site adds around it. Each BOILERPLATE string must vanish.
HTML_TITLE = "Glacier retreat in the northern valley | Valley News"
HTML_ARTICLE_SENTENCES = (
    "Glaciers in the northern valley retreated by forty metres during the survey period.",
    "Teams measured the ice front every spring.",
    "Warm autumns matter more than snowy winters.",
)
HTML_BOILERPLATE = (
    "SECRET-TRACKER",
    "INLINE-SCRIPT",
    "We use cookies",
    "Accept all",
    "Manage preferences",
    "Home",
    "World news",
    "Share on Facebook",
    "Sign up for our newsletter",
    "ten facts about ice",
    "All rights reserved",
    "font-family",
)


def article_html() -> bytes:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{HTML_TITLE}</title>
<meta name="author" content="A. Writer">
<style>body {{ font-family: sans-serif }}</style>
<script>var tracking = "SECRET-TRACKER";</script></head>
<body class="page has-sidebar">
<header class="site-header"><a href="/">Valley News</a>
  <nav><ul><li><a href="/">Home</a></li><li><a href="/world">World news</a></li></ul></nav></header>
<div id="CybotCookiebotDialog" role="dialog">We use cookies to improve your experience.
  <button>Accept all</button> <a href="/privacy">Manage preferences</a></div>
<main>
<article>
<h1>Glacier retreat in the northern valley</h1>
<p>{HTML_ARTICLE_SENTENCES[0]}</p>
<h2>Methods</h2>
<p>{HTML_ARTICLE_SENTENCES[1]}</p>
<ul><li>Gauges were read daily.</li><li>Photographs were taken weekly.</li></ul>
<h3>Table 2</h3>
<table><thead><tr><th>Site</th><th>Ice loss</th></tr></thead>
<tbody><tr><td>North cirque</td><td>12 m</td></tr><tr><td>East valley</td><td>31 m</td></tr></tbody></table>
<div class="share-bar">Share on Facebook</div>
<h2>Results</h2>
<p>{HTML_ARTICLE_SENTENCES[2]}<script>document.write("INLINE-SCRIPT")</script></p>
<div class="newsletter-signup">Sign up for our newsletter</div>
</article>
<aside class="related">Related: ten facts about ice</aside>
</main>
<footer>© Valley News. All rights reserved.</footer>
</body></html>
""".encode()


MARKDOWN_DOCUMENT = """---
title: Ice Survey Notes
author: Valley Survey
tags: [glaciers, hares]
---
# Overview

The survey ran for **three** seasons and *every* gauge was read
by hand, as the [protocol](https://example.org/protocol) asks.

Second paragraph of the overview.

## Sites

| Site | Ice loss |
|------|---------:|
| North cirque | 12 m |
| East valley | 31 m |

1. Read the gauges.
2. Photograph the ice.
"""

LATIN_TEXT = "Le garçon a mangé une pâtisserie à côté de la fenêtre.\nOù est l'hôtel ? Très bien, merci."


# -- documents rendered from text: the file gold set and the mixed folder -------------------------------------------

BODY_WIDTH = PAGE_WIDTH - 2 * LEFT_X


def paged_pdf(title: str, pages: Sequence[str]) -> bytes:
    """One PDF page per entry of `pages`; paragraphs (split by blank lines) wrapped to the page width."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=LETTER)
    canvas.setTitle(title)
    for text in pages:
        canvas.setFont(FONT, FONT_SIZE)
        y = PAGE_HEIGHT - 72
        for paragraph in text.split("\n\n"):
            for line in simpleSplit(" ".join(paragraph.split()), FONT, FONT_SIZE, BODY_WIDTH):
                canvas.drawString(LEFT_X, y, line)
                y -= LEADING
            y -= LEADING  # a blank line between paragraphs
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def rotated_pdf(rotation: int, lines: Sequence[str]) -> bytes:
    """One page whose /Rotate is `rotation`, its lines drawn turned the other way, so that they read level on the
    page as a viewer shows it (the way a landscape scan is often stored)."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=LETTER)
    canvas.setPageRotation(rotation)
    canvas.saveState()
    canvas.translate(PAGE_WIDTH / 2, PAGE_HEIGHT / 2)
    canvas.rotate(rotation)
    canvas.setFont(FONT, FONT_SIZE)
    for number, line in enumerate(lines):
        canvas.drawString(-BODY_WIDTH / 3, -number * LEADING, line)
    canvas.restoreState()
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def sectioned_docx(title: str, sections: Sequence[dict]) -> bytes:
    """A Word document of headings (`level`) and their paragraphs."""
    document = new_docx()
    document.core_properties.title = title
    for section in sections:
        document.add_heading(section["heading"], level=section["level"])
        for paragraph in section["paragraphs"]:
            document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def png_image() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def gif_image() -> bytes:
    """A kind of picture citeqa does not read (OCR takes PNG, JPEG and TIFF)."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, "GIF")
    return buffer.getvalue()


HARE_PAGES = (
    "Hare watch\n\nVolunteers counted mountain hares on the eastern slope every morning of the winter.",
    "The count peaked in February, when forty-two hares were seen in a single morning.",
    "Snow buntings shared the slope with the hares and were counted as well.",
)
METHODS_SECTIONS = (
    {"heading": "Equipment", "level": 1, "paragraphs": ["Every team carried a theodolite, two radios and a thermos."]},
    {"heading": "Safety", "level": 1, "paragraphs": ["Nobody crossed the glacier alone after four in the afternoon."]},
)
BULLETIN_HTML = b"""<!DOCTYPE html><html><head><title>Hut bulletin</title></head><body><main>
<h1>Hut bulletin</h1><p>The upper hut opens on the first of June and closes when the pass is snowed in.</p>
<h2>Supplies</h2><p>Firewood is flown in by helicopter twice a season.</p></main></body></html>"""
PLAN_MARKDOWN = "# Field plan\n\n## Week one\n\nSet up the weather station beside the lake outlet.\n"
README_TEXT = "Readme for the survey archive.\n\nThe archive keeps every field book scanned since 1998.\n"


def mixed_folder_files() -> tuple[dict[str, bytes], dict[str, str]]:
    """Ten good files of every supported kind and five bad ones, by relative path; and, for each bad one, words its
    refusal must contain. Built once per call: reportlab stamps the time into every PDF it writes."""
    good = {
        "survey.pdf": report_pdf(),
        "hares.pdf": paged_pdf("Hare watch", HARE_PAGES),
        "field.docx": report_docx(),
        "methods.docx": sectioned_docx("Field methods", METHODS_SECTIONS),
        "article.html": article_html(),
        "notes/bulletin.html": BULLETIN_HTML,
        "ice.md": MARKDOWN_DOCUMENT.encode(),
        "notes/plan.md": PLAN_MARKDOWN.encode(),
        "latin.txt": LATIN_TEXT.encode("cp1252"),
        "readme.txt": README_TEXT.encode(),
    }
    bad = {
        "scanned.pdf": scanned_pdf(),
        "locked.pdf": report_pdf(encrypt_with="secret"),
        "setup.pdf": windows_executable(),
        "archive.docx": plain_zip({"notes.txt": b"not a word document"}),
        "picture.png": png_image(),
    }
    reasons = {
        "scanned.pdf": "OCR found no words",  # its pages are pictures without text
        "locked.pdf": "encrypted",
        "setup.pdf": "Windows executable",
        "archive.docx": "zip archive",
        "picture.png": "OCR found no words",  # a red square
    }
    return good | bad, reasons
