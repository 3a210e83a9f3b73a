"""`python -m valgusml.train ...`: the training app (same as `valgusml train ...`)."""

import sys

from valgusml.training.train import main

if __name__ == "__main__":
    sys.exit(main())
