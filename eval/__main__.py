import sys

from citeqa.eval.runner import main

sys.exit(main())
