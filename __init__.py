"""citeqa: ask questions of a set of documents and get answers whose citations point at the exact characters.

The repository root is the `citeqa` package: `citeqa.index` (documents to index to search), `citeqa.service`
(HTTP), `citeqa.eval` (measurement), with `citeqa.cli` above them and `citeqa.settings` beside them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("citeqa")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0.0.0"
