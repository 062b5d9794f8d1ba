"""Recently read documents, kept per segment reader so a query's quotes do not read the same text from SQLite again."""

from __future__ import annotations

import threading
from collections import OrderedDict

from citeqa.index.text.documents import Document

# Text of recently read documents kept per segment reader. A query quotes from about 20 chunks, and under load
# concurrent queries touch many documents; counting characters rather than documents bounds memory whatever the
# documents' sizes (a squad-dev-a or SciFact collection fits whole; a few long PDFs do not).
DOCUMENT_CACHE_CHARACTERS = 8_000_000


class DocumentCache:
    """Least-recently-used documents by local number, bounded by their total text length; safe across threads."""

    def __init__(self, characters: int) -> None:
        self.characters = characters
        self._held = 0
        self._documents: OrderedDict[int, Document] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, local: int) -> Document | None:
        with self._lock:
            document = self._documents.get(local)
            if document is not None:
                self._documents.move_to_end(local)
            return document

    def put(self, local: int, document: Document) -> None:
        with self._lock:
            if local in self._documents:
                return
            self._documents[local] = document
            self._held += len(document.text)
            while self._held > self.characters and len(self._documents) > 1:
                _, dropped = self._documents.popitem(last=False)
                self._held -= len(dropped.text)
