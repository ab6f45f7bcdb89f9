"""`python -m probe_engine`."""

from .cli import main

main()
