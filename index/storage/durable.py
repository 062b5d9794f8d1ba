"""Making written files survive a power cut: fsync of files, of folders, of a folder's whole tree.

A rename is atomic, but it is only durable once the folder holding the new name is synced, and the bytes behind
the name only once the file itself is. A commit that names a segment or an original file must come after both,
or a power cut could leave a catalog naming a folder that is empty or missing after the reboot. Writers call these
only when the collection's `durable` flag is on (`CITEQA_DURABLE_WRITES`, on by default).
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_file(path: Path) -> None:
    """Flush one file's data and size to the disk (a read-only descriptor is enough on Linux)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (names created, renamed or removed in it)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_tree(folder: Path) -> None:
    """Every regular file under `folder`, then every folder bottom-up (its own entry included)."""
    for root, _, files in os.walk(folder, topdown=False):
        for name in files:
            path = Path(root) / name
            if path.is_file() and not path.is_symlink():
                fsync_file(path)
        fsync_dir(Path(root))
