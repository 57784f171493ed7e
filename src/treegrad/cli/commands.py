"""The whole command line: every group of commands registered on the app, in the order `--help`
lists them, and `main`, the console script's entry point."""

# No `from __future__ import annotations` in the cli: Typer reads the commands' annotations on
# every run, and evaluating them from strings cost about 0.1 s of each command's start-up.

import os
import sys
from typing import Any

from ..data.parts import launched
from . import program
from .program import app

# Each group registers its commands on `app` as it is imported: this order is the order of --help.
# isort: off
from . import training, using, showing, specs, benchmark  # noqa: F401
# isort: on


def main() -> None:
    """Console-script entry point."""
    program.command_line = ["treegrad", *sys.argv[1:]]
    if launched()[1] == 1:
        try:
            app(prog_name="treegrad")
        finally:
            # This command's alone: a caller that goes on in this process (a test) runs others.
            program.command_line = None
        return
    # Under torchrun, torch (gloo with DDP, 2.13) sometimes aborts a process while Python shuts
    # down after the process group is gone ("terminate called without an active exception"),
    # and torchrun then reports a finished run as failed. Everything is written and closed by
    # now: flush what is printed and leave without the interpreter's shutdown.
    try:
        app(prog_name="treegrad")
        code: Any = 0
    except SystemExit as e:
        code = e.code
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


if __name__ == "__main__":
    main()
