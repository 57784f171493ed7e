"""The `treegrad` command line: Typer commands over the library, one module per group, and every
rich rendering (render.py, views.py)."""

from .commands import app, main

__all__ = ["app", "main"]
