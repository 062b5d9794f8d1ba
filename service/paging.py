"""Document listings in pages: the page size limits and the cursor that says where the next page starts.

A cursor is the last id of the page before, as URL-safe base64 of its UTF-8 (no padding), so an id with any
characters travels in a query string as it is. Clients treat it as opaque. The next page holds the documents
whose ids sort after it (keyset paging, index/storage/catalog.py): a document that stays put appears exactly
once across the pages, whatever is added or removed between two requests.
"""

from __future__ import annotations

import base64
import binascii
import re

from citeqa.index.text.documents import MAX_ID_CHARS

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

_CURSOR_CHARS = re.compile(r"[A-Za-z0-9_-]+")


class CursorError(ValueError):
    """A cursor that no listing handed out."""


def encode_cursor(doc_id: str) -> str:
    return base64.urlsafe_b64encode(doc_id.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The id a cursor names; CursorError, with the reason, for anything `encode_cursor` cannot have made."""
    malformed = "malformed cursor: pass the next_cursor of the previous page as it was sent"
    if not _CURSOR_CHARS.fullmatch(cursor) or len(cursor) % 4 == 1 or len(cursor) > 4 * MAX_ID_CHARS * 4 // 3 + 4:
        raise CursorError(malformed)
    try:
        doc_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise CursorError(malformed) from None
    if not doc_id or len(doc_id) > MAX_ID_CHARS or encode_cursor(doc_id) != cursor:
        raise CursorError(malformed)
    return doc_id
