"""``python -m harness.cli``: the entry point (worker processes start this way)."""

import sys
import warnings

from harness.cli.main import main

if __name__ == "__main__":
    warnings.simplefilter("default")
    sys.exit(main())
