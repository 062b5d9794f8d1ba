"""What kind of file this is: its content (magic bytes) checked against its extension.

The content decides. The extension only chooses between readings of the same content (a text file read as
Markdown or as plain text) and is refused when the content contradicts it: an executable renamed `.pdf` is not
parsed as a PDF, however it is named.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePath

from citeqa.index.text.documents import UnsupportedFormatError


class Format(StrEnum):
    PDF = "pdf"
    DOCX = "docx"
    HTML = "html"
    MARKDOWN = "markdown"
    TEXT = "text"
    PNG = "png"  # images are read by OCR (ocr.py)
    JPEG = "jpeg"
    TIFF = "tiff"


IMAGE_FORMATS = frozenset({Format.PNG, Format.JPEG, Format.TIFF})

MEDIA_TYPES: dict[Format, str] = {
    Format.PDF: "application/pdf",
    Format.DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    Format.HTML: "text/html",
    Format.MARKDOWN: "text/markdown",
    Format.TEXT: "text/plain",
    Format.PNG: "image/png",
    Format.JPEG: "image/jpeg",
    Format.TIFF: "image/tiff",
}

EXTENSIONS: dict[str, Format] = {
    ".pdf": Format.PDF,
    ".docx": Format.DOCX,
    ".html": Format.HTML,
    ".htm": Format.HTML,
    ".xhtml": Format.HTML,
    ".md": Format.MARKDOWN,
    ".markdown": Format.MARKDOWN,
    ".txt": Format.TEXT,
    ".text": Format.TEXT,
    ".png": Format.PNG,
    ".jpg": Format.JPEG,
    ".jpeg": Format.JPEG,
    ".tif": Format.TIFF,
    ".tiff": Format.TIFF,
}


class Content(StrEnum):
    """What the bytes themselves say, before the extension is consulted."""

    PDF = "a PDF"
    DOCX = "a Word document"
    ZIP = "a zip archive"
    EXECUTABLE = "an executable program"
    BINARY = "a binary file"
    HTML = "HTML"
    TEXT = "text"
    PNG = "a PNG image"
    JPEG = "a JPEG image"
    TIFF = "a TIFF image"


# Signatures of files that are certainly not documents citeqa reads, named so the refusal can say what they are.
_BINARY_SIGNATURES: tuple[tuple[bytes, Content, str], ...] = (
    (b"MZ", Content.EXECUTABLE, "a Windows executable"),
    (b"\x7fELF", Content.EXECUTABLE, "a Linux executable (ELF)"),
    (b"\xcf\xfa\xed\xfe", Content.EXECUTABLE, "a macOS executable (Mach-O)"),
    (b"\xce\xfa\xed\xfe", Content.EXECUTABLE, "a macOS executable (Mach-O)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", Content.BINARY, "a legacy Office file (.doc/.xls); save it as .docx"),
    (b"\x89PNG\r\n\x1a\n", Content.PNG, "a PNG image"),
    (b"\xff\xd8\xff", Content.JPEG, "a JPEG image"),
    (b"II*\x00", Content.TIFF, "a TIFF image"),
    (b"MM\x00*", Content.TIFF, "a TIFF image"),
    (b"GIF8", Content.BINARY, "a GIF image"),
    (b"\x1f\x8b", Content.BINARY, "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", Content.BINARY, "a 7-Zip archive"),
    (b"Rar!\x1a\x07", Content.BINARY, "a RAR archive"),
)
# A PDF's header may follow some junk; readers look for it in the first kilobyte.
_PDF_HEADER_WINDOW = 1024
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
# The WHATWG MIME sniffing rule: after optional whitespace, one of these tags followed by a space or ">".
_HTML_START = re.compile(
    rb"^\s*<(?:!doctype\s+html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p|!--)[\s>]",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Sniffed:
    """The content's kind and, for refusals, a human name for it."""

    content: Content
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or self.content.value


def sniff(raw: bytes, *, pdf_expected: bool = False) -> Sniffed:
    """What `raw` is. A PDF header after leading junk only counts when the name says PDF: in a text file the
    characters "%PDF-" are just text."""
    if raw.lstrip().startswith(b"%PDF-") or (pdf_expected and b"%PDF-" in raw[:_PDF_HEADER_WINDOW]):
        return Sniffed(Content.PDF)
    if raw.startswith(_ZIP_SIGNATURES):
        return _sniff_zip(raw)
    for signature, content, name in _BINARY_SIGNATURES:
        if raw.startswith(signature):
            return Sniffed(content, name)
    if _HTML_START.match(raw.removeprefix(b"\xef\xbb\xbf")[:1024]):
        return Sniffed(Content.HTML)
    return Sniffed(Content.TEXT)


def _sniff_zip(raw: bytes) -> Sniffed:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, EOFError):
        return Sniffed(Content.ZIP, "a damaged zip archive")
    if "word/document.xml" in names:
        return Sniffed(Content.DOCX)
    if "xl/workbook.xml" in names:
        return Sniffed(Content.ZIP, "an Excel workbook (.xlsx)")
    if "ppt/presentation.xml" in names:
        return Sniffed(Content.ZIP, "a PowerPoint presentation (.pptx)")
    return Sniffed(Content.ZIP)


# Which content each declared format accepts. Text formats accept HTML-looking text and vice versa: a Markdown file
# may open with an HTML comment, and an HTML fragment may open with plain words.
_ACCEPTS: dict[Format, frozenset[Content]] = {
    Format.PDF: frozenset({Content.PDF}),
    Format.DOCX: frozenset({Content.DOCX}),
    Format.HTML: frozenset({Content.HTML, Content.TEXT}),
    Format.MARKDOWN: frozenset({Content.TEXT, Content.HTML}),
    Format.TEXT: frozenset({Content.TEXT, Content.HTML}),
    Format.PNG: frozenset({Content.PNG}),
    Format.JPEG: frozenset({Content.JPEG}),
    Format.TIFF: frozenset({Content.TIFF}),
}
_BY_CONTENT: dict[Content, Format] = {
    Content.PDF: Format.PDF,
    Content.DOCX: Format.DOCX,
    Content.HTML: Format.HTML,
    Content.TEXT: Format.TEXT,
    Content.PNG: Format.PNG,
    Content.JPEG: Format.JPEG,
    Content.TIFF: Format.TIFF,
}


# Extensions that name something other than a document. A file so named whose bytes look like text (a truncated
# picture, a renamed stub) is refused rather than read as text; a real PDF or Word file is still read, as with
# any other unknown extension.
NOT_DOCUMENT_EXTENSIONS = frozenset(
    (  # noqa: SIM905 (a word list reads better than sixty quoted strings)
        ".gif .webp .bmp .ico .heic .svg .mp3 .wav .ogg .flac .m4a .mp4 .mov .avi .mkv .webm "
        ".zip .gz .tgz .bz2 .xz .7z .rar .tar .exe .dll .so .dylib .o .a .class .jar .pyc .whl .deb .rpm .iso .dmg "
        ".ttf .otf .woff .woff2 .sqlite .db .npy .npz .doc .xls .xlsx .ppt .pptx .odt .ods .odp .rtf .epub"
    ).split()
)


def supported_extensions() -> str:
    return ", ".join(EXTENSIONS)


def detect_format(raw: bytes, filename: str) -> Format:
    """The format to parse `raw` as. Raises UnsupportedFormatError (a DocumentError) when the content is not a
    supported document or contradicts the extension. A file with no extension, or one citeqa does not know, is read
    as its content says."""
    suffix = PurePath(filename).suffix.lower()
    declared = EXTENSIONS.get(suffix)
    sniffed = sniff(raw, pdf_expected=declared is Format.PDF)
    if declared is None:
        detected = _BY_CONTENT.get(sniffed.content)
        if detected in (Format.TEXT, Format.HTML) and suffix in NOT_DOCUMENT_EXTENSIONS:
            raise UnsupportedFormatError(f"unsupported type '{suffix}' (supported: {supported_extensions()})")
        if detected is None:
            raise UnsupportedFormatError(f"unsupported file: the content is {sniffed.name} (supported: {supported_extensions()})")
        return detected
    if sniffed.content not in _ACCEPTS[declared]:
        raise UnsupportedFormatError(f"the content is {sniffed.name}, not what the extension {suffix} says; refused")
    return declared


def media_type(fmt: Format) -> str:
    return MEDIA_TYPES[fmt]
