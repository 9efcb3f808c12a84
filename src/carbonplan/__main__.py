"""`python -m carbonplan` runs the CLI."""

from carbonplan.cli import main

main()
