"""Bytes -> str for the text formats (plain text, Markdown, HTML): which encoding, or why the bytes are not text.

The order: a byte order mark (UTF-8, UTF-16, UTF-32) is trusted; otherwise NUL bytes mean binary; strict UTF-8 is
tried next; then Windows-1252 (the superset of Latin-1 that legacy Western files really use) when it reads at
least as cleanly as charset-normalizer's best guess; then that guess. UTF-16 without a byte order mark is not
guessed at: its NUL bytes make it binary.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from charset_normalizer import from_bytes

from citeqa.index.text.documents import DocumentError

_BOMS: tuple[tuple[bytes, str], ...] = (
    # UTF-32 first: its little-endian mark begins with UTF-16's.
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Without a byte order mark these would be guesses over NUL-free bytes, which is how binary files look to them.
_NEVER_GUESSED = ["utf_16", "utf_16_be", "utf_16_le", "utf_32", "utf_32_be", "utf_32_le"]
# How much less clean (charset-normalizer's "chaos" ratio) Windows-1252 may read than the best guess and still win.
_WESTERN_TOLERANCE = 0.01
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str


def _by_bom(raw: bytes) -> Decoded | None:
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return Decoded(raw.decode(encoding), encoding.removesuffix("-sig"))
            except UnicodeDecodeError as exc:
                raise DocumentError(f"starts with a {encoding} byte order mark but is not valid {encoding}") from exc
    return None


def decode_text(raw: bytes) -> Decoded:
    """Decode a text file. Raises DocumentError for binary content or bytes that no common encoding reads."""
    decoded = _by_bom(raw)
    if decoded is not None:
        return decoded
    if b"\x00" in raw:
        raise DocumentError("binary content (NUL bytes), not text")
    try:
        return Decoded(raw.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    western = from_bytes(raw, cp_isolation=["cp1252"]).best()
    general = from_bytes(raw, cp_exclusion=_NEVER_GUESSED).best()
    if western is not None and (general is None or western.chaos <= general.chaos + _WESTERN_TOLERANCE):
        return Decoded(str(western), "cp1252")
    if general is not None:
        return Decoded(str(general), general.encoding)
    raise DocumentError("not text in any encoding citeqa recognises (binary content?)")


def declared_html_charset(raw: bytes) -> str | None:
    """The encoding a <meta charset> in the first kilobytes declares, if Python knows it."""
    match = _META_CHARSET.search(raw[:4096])
    if match is None:
        return None
    try:
        return codecs.lookup(match.group(1).decode("ascii")).name
    except (LookupError, UnicodeDecodeError):
        return None


def decode_html(raw: bytes) -> Decoded:
    """A byte order mark, then the page's own <meta charset> declaration, then the plain-text rules."""
    decoded = _by_bom(raw)
    if decoded is not None:
        return decoded
    declared = declared_html_charset(raw)
    if declared is not None and b"\x00" not in raw:
        try:
            return Decoded(raw.decode(declared), declared)
        except UnicodeDecodeError:
            pass  # a wrong declaration is common enough: fall back to detection
    return decode_text(raw)
