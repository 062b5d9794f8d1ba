"""citeqa: ask questions of a set of documents and get answers whose citations point at the exact characters.

The repository root is the `citeqa` package: `citeqa.index` (documents to index to search), `citeqa.service`
(HTTP), `citeqa.eval` (measurement), with `citeqa.cli` above them and `citeqa.settings` beside them.
"""

import os
from importlib.metadata import PackageNotFoundError, version

# torch and faiss each bring an OpenMP runtime; with their default busy-waiting, idle threads of one spin against
# the other's on a small machine (docs/tuning.md, "Figures behind the code's constants"). Set before either loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# numpy's OpenBLAS would start a second pool of threads per process beside the encoder's: a query's matrix products
# are small, and a server's concurrent requests already fill the cores, so one thread each serves more requests
# (docs/tuning.md, "Figures behind the code's constants").
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

try:
    __version__ = version("citeqa")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0.0.0"
