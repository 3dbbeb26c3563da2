"""`python -m fedzo ...` is the `fedzo` command."""
import sys

from fedzo.cli import main

sys.exit(main())
