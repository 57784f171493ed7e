"""`python -m treegrad` runs the command line."""

from .cli import main

main()
