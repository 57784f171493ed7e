"""The `treegrad` command line: Typer commands over the library, and every rich rendering."""

from .commands import app, main

__all__ = ["app", "main"]
