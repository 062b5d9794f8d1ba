"""Images (PNG, JPEG, TIFF): every frame is a page, read by OCR (ocr.py), with a page table like a PDF's.

The header is checked before any pixel is decoded (images.py), the number of frames against the OCR page limit,
and Tesseract's presence before the first page, so a file that cannot be read fails at once with its reason.
"""

from __future__ import annotations

from citeqa.index.parsing.assemble import join_pages
from citeqa.index.parsing.formats import Format, media_type
from citeqa.index.parsing.images import load_frame, open_image
from citeqa.index.parsing.ocr import Deadline, check_ready, read_page
from citeqa.index.parsing.ocr_layout import OcrPage
from citeqa.index.parsing.parsed import PageProgress, ParsedDocument, ParseLimits
from citeqa.index.parsing.pdf import unwrap_lines
from citeqa.index.text.documents import DocumentError, title_of
from citeqa.index.text.normalize import normalize_text

_FORMATS = {"PNG": Format.PNG, "JPEG": Format.JPEG, "MPO": Format.JPEG, "TIFF": Format.TIFF}


def parse_image(raw: bytes, filename: str, limits: ParseLimits, on_page: PageProgress | None = None) -> ParsedDocument:
    image = open_image(raw, limits.max_image_pixels)
    fmt = _FORMATS.get(str(image.format))
    if fmt is None:
        raise DocumentError(f"unsupported image format {image.format}")
    frames = int(getattr(image, "n_frames", 1))
    settings = limits.ocr
    if frames > settings.max_pages:
        raise DocumentError(f"image has {frames:,} pages, over the OCR limit of {settings.max_pages:,} pages per file")
    check_ready(settings)
    deadline = Deadline(settings.seconds_per_file)
    texts: list[str] = []
    read: dict[int, OcrPage] = {}
    for frame in range(frames):
        text, words = read_page(load_frame(image, frame), settings, deadline, frame + 1, frames)
        texts.append(unwrap_lines(normalize_text(text)))  # as a PDF page's text is
        read[frame + 1] = words
        if on_page is not None:
            on_page(frame + 1, frames)
    text, pages = join_pages(texts, limits.max_text_chars)
    if not text:
        raise DocumentError("no text: OCR found no words in the image")
    metadata = {"pages": str(frames), "ocr": settings.language}
    return ParsedDocument(
        text=text,
        title=title_of(text, filename),
        media_type=media_type(fmt),
        metadata=metadata,
        pages=pages,
        ocr=read,
        ocr_language=settings.language,
    )
