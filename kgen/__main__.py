"""`python -m kgen ...`: see kgen/cli.py."""
import sys

from .cli import main

sys.exit(main())
