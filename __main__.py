"""`python -m citeqa` is the `citeqa` command."""

import sys

from citeqa.cli import main

sys.exit(main())
