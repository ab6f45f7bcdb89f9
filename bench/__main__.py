"""`python -m bench`: run every measurement and print the table (see bench/run.py)."""

from .run import main

raise SystemExit(main())
