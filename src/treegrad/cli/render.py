"""How the command line prints: the two consoles, escaping of what files and users wrote, tables that
turn into plain lines on a narrow terminal, JSON, and the one-line messages (warning, note, error).

Every rich import but the console's is made inside a function: `predict` and `--help` print no
table, and must not pay for importing the renderers.
"""

# No `from __future__ import annotations` in the cli: Typer reads the commands' annotations on
# every run, and evaluating them from strings cost about 0.1 s of each command's start-up.

import contextlib
import json
import math
import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from rich.table import Table

# Text from files is shown as written: no highlighting, and no emoji codes (a label `:x:`
# stays `:x:`).
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

# Below this many columns a table is cut into unreadable slivers: plain lines instead.
NARROW = 60


def escape(s: str) -> str:
    """Text from files and users, made safe to print: no rich markup, no terminal control characters."""
    from rich.markup import escape as markup_escape

    from ..errors import escaped

    return markup_escape(escaped(s))


def warn(text: str) -> None:
    """A warning on stderr: the command goes on."""
    err.print(f"[yellow]warning:[/] {escape(text)}")


def table(*args: Any, **kwargs: Any) -> "Table":
    """A rich Table (imported here: `predict` and `--help` print none)."""
    from rich.table import Table

    return Table(*args, **kwargs)


def print_table(t: "Table") -> None:
    """A table, or on a narrow terminal the same cells as plain lines (`label: value`)."""
    if out.width >= NARROW:
        out.print(t)
        return
    if t.title:
        out.print(t.title)
    cells = [list(c.cells) for c in t.columns]
    if t.show_header:
        out.print("  ".join(str(c.header) for c in t.columns).strip())
    for row in zip(*cells):
        out.print((": " if not t.show_header and len(row) == 2 else "  ").join(str(c) for c in row).strip())


def print_json(value: Any) -> None:
    """`value` as --json prints it. JSON has no NaN or infinity: an undefined metric (R² of a constant
    column) or an overflowing prediction is null, so that any JSON reader can read it."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    out.print_json(json.dumps(clean(value), allow_nan=False))


def metric(value: float, as_percent: bool = False) -> str:
    """A metric as printed; an undefined one (R² of a constant target) says so."""
    if math.isnan(value):
        return "undefined (the target is constant)"
    return f"{value:.2%}" if as_percent else f"{value:.6g}"


def num(v: Any, precision: int) -> str:
    """A value of a trace (a number, a list of them, or a label) as printed."""
    from ..core.printers import number

    if isinstance(v, list):
        return "[" + ", ".join(num(x, precision) for x in v) + "]"
    return number(v, precision) if isinstance(v, float) else escape(str(v))


# ----------------------------------------------------------------- what the error boundary prints


# Longer than this, one word of a message (a path or a value as the user typed it, quoted by
# the library) is cut: a message stays a paragraph, whatever it quotes.
LONGEST_WORD = 300


def cut_words(text: str) -> str:
    """`text` with each run of characters without a space longer than LONGEST_WORD cut, saying how long it was."""
    return re.sub(
        rf"\S{{{LONGEST_WORD + 1},}}",
        lambda m: f"{m.group()[: LONGEST_WORD // 2]}... ({len(m.group()):,} characters)",
        text,
    )


def user_error(e: BaseException) -> str:
    """A TreegradError as printed: its message is the whole story."""
    return f"[bold red]error:[/] {escape(cut_words(str(e)))}"


def internal_error(e: BaseException) -> str:
    """Any other exception as printed: a bug in treegrad, and how to report it."""
    return (
        f"[bold red]internal error[/] ({type(e).__name__}: {escape(cut_words(str(e)))}). This is a bug in treegrad, "
        "not in your input: run again with --debug to see the traceback, and report it."
    )


def interrupted(text: str) -> str:
    """The Ctrl-C message (`interrupted: ...`) as printed."""
    return f"[yellow]interrupted[/]{escape(text.removeprefix('interrupted'))}"


def say(fallback: str, markup: Callable[[Any], str], about: Any) -> None:
    """Print `markup(about)` on stderr; if even that fails (no memory left), write the plain fallback."""
    try:
        err.print(markup(about))
    except BaseException:
        try:
            sys.stderr.write(fallback + "\n")
        except BaseException:
            with contextlib.suppress(OSError):
                os.write(2, fallback.encode("ascii", "replace") + b"\n")
