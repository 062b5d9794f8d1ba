"""Opening a zip container (DOCX) without letting it expand past a limit: a zip bomb is refused while it is
still small.

Two checks. The sizes the archive declares for its members are added up first, which costs nothing. Then every
member is read through, in small chunks that are counted and discarded, and reading stops as soon as the count
passes the limit: declared sizes are written by whoever made the file, so they are checked against what the
decompressor actually produces. Only an archive that passes both is handed to the document library, which then
unpacks exactly what was counted.
"""

from __future__ import annotations

import io
import zipfile
import zlib

from citeqa.index.parsing.parsed import MIB
from citeqa.index.text.documents import DocumentError

# A Word document has a few dozen parts, a few thousand with many pictures; the central directory of a file with
# hundreds of thousands of members costs memory before a single byte is unpacked.
MAX_MEMBERS = 10_000
READ_CHUNK = 64 * 1024


class UnpackLimitExceeded(DocumentError):
    """Reading stopped at the limit; `bytes_read` says how far it got."""

    def __init__(self, reason: str, bytes_read: int) -> None:
        super().__init__(reason)
        self.bytes_read = bytes_read


def _mib(size: int) -> str:
    return f"{size / MIB:,.1f} MiB"


def open_archive(raw: bytes) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        raise DocumentError(f"damaged zip container: {exc}") from exc
    if len(archive.infolist()) > MAX_MEMBERS:
        archive.close()
        raise DocumentError(f"zip container has more than {MAX_MEMBERS:,} members")
    return archive


def check_declared_sizes(archive: zipfile.ZipFile, limit: int) -> int:
    declared = sum(info.file_size for info in archive.infolist())
    if declared > limit:
        raise DocumentError(f"zip container declares {_mib(declared)} uncompressed, over the limit of {_mib(limit)}")
    return declared


def read_capped(archive: zipfile.ZipFile, limit: int) -> int:
    """Unpack every member, keeping nothing, and refuse as soon as more than `limit` bytes come out.
    Returns the number of bytes unpacked."""
    total = 0
    try:
        for info in archive.infolist():
            with archive.open(info) as member:
                while chunk := member.read(READ_CHUNK):
                    total += len(chunk)
                    if total > limit:
                        raise UnpackLimitExceeded(
                            f"zip container unpacks to more than the limit of {_mib(limit)} (stopped at {_mib(total)})", total
                        )
    except DocumentError:
        raise  # it is a ValueError too, and must not be mistaken for damage below
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, ValueError, OSError) as exc:
        # RuntimeError: an encrypted member; NotImplementedError: a compression method Python lacks.
        raise DocumentError(f"damaged zip container: {exc}") from exc
    return total


def check_archive(raw: bytes, limit: int) -> None:
    """Refuse `raw` unless it is a readable zip that unpacks to at most `limit` bytes."""
    with open_archive(raw) as archive:
        check_declared_sizes(archive, limit)
        read_capped(archive, limit)
