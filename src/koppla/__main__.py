"""`python -m koppla` runs the CLI."""

from koppla.cli import main

main()
