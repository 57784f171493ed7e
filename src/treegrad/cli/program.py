"""The Typer app and its one error boundary, the options several commands share, and the turning of
a library error into a usage error.

`TreegradGroup.invoke` is the one place where an error becomes a message: a `TreegradError` is
printed on stderr as one short paragraph and exits with code 1 (usage errors exit 2, Ctrl-C 130,
SIGTERM 143, a closed pipe 141 and nothing said, as `... | head` ends other tools); anything else is
an internal error. A traceback is shown only with `--debug` or
TREEGRAD_DEBUG=1.
"""

# No `from __future__ import annotations` in the cli: Typer reads the commands' annotations on
# every run, and evaluating them from strings cost about 0.1 s of each command's start-up.

import contextlib
import io
import os
import select
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

from ..data.parts import echoed, launched
from ..errors import TreegradError
from .render import escape, internal_error, interrupted, out, say, user_error

# The command line as run, recorded in the model files `train` writes; set only when treegrad
# runs as a program (commands.main), not when a test or a script invokes `app`.
command_line: list[str] | None = None


def _echoing_rank() -> bool:
    """True in a torchrun process other than rank 0: an error every process meets is rank 0's to say."""
    rank, processes = launched()
    return processes > 1 and rank > 0


def _debug(ctx: typer.Context) -> bool:
    return bool(ctx.params.get("debug")) or os.environ.get("TREEGRAD_DEBUG", "") not in ("", "0")


def interrupt_code() -> int:
    """130 for Ctrl-C, 143 for SIGTERM: the exit code of a command stopped by that signal."""
    from ..files import stopped_by

    return 128 + (stopped_by() or signal.SIGINT)


# The exit code of a command whose reader went away (`treegrad ... | head`): that of a Unix tool
# ended by SIGPIPE, as a shell reports it (128 + 13), so that scripts that let `head` cut other
# tools' output short let treegrad's be cut too.
CLOSED_PIPE = 141


def _stdout_closed() -> bool:
    """True when standard output is a pipe whose reader has gone (poll says so); True too where
    poll is not there to ask (Windows)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
    except AttributeError:
        return True
    except (OSError, ValueError, io.UnsupportedOperation):
        return False
    return any(events & select.POLLERR for _, events in poller.poll(0))


@contextlib.contextmanager
def _closed_pipe_quietly() -> Iterator[None]:
    """Standard output's reader has gone: end without a word, with CLOSED_PIPE, as other tools do.

    A write to the closed pipe raises BrokenPipeError, or, through rich (the help, tables), a
    SystemExit(1) raised while handling one. Standard output then points at /dev/null, so that
    Python's last flush has nowhere to fail."""
    try:
        yield
    except (BrokenPipeError, SystemExit) as e:
        if isinstance(e, SystemExit) and not isinstance(e.__context__, BrokenPipeError):
            raise
        if isinstance(e, BrokenPipeError) and not _stdout_closed():
            raise  # another pipe (a worker's): not the reader of our output going away
        # (rich, for its part, has looked: its SystemExit comes with stdout at /dev/null already.)
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(CLOSED_PIPE) from None


def stopped(written: list[Path], training: bool) -> str:
    """What a command stopped by Ctrl-C or SIGTERM says: the files it wrote in full, or that it wrote
    nothing (and, for `train`, the option that keeps the last epoch next time)."""
    if written:
        return f"interrupted: {', '.join(str(p) for p in written)} had already been written in full."
    advice = " (train with --checkpoint to keep the last epoch)" if training else ""
    return f"interrupted: nothing was written{advice}."


class TreegradGroup(TyperGroup):
    """Runs a command and turns every error into one message and an exit code.

    Everything the handlers need is worked out before the command runs, so that the error
    path cannot fail itself (a MemoryError leaves no room to look anything up).
    """

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        """The group's own options read (`treegrad --help` prints there), a closed pipe ending it quietly."""
        with _closed_pipe_quietly():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        from .. import files

        debug = _debug(ctx)
        with files.command() as session, _closed_pipe_quietly():
            try:
                result = super().invoke(ctx)
                sys.stdout.flush()  # here, where a closed pipe is handled, not at the interpreter's exit
                return result
            except TreegradError as e:
                if debug:
                    raise
                if echoed(e):
                    # Under torchrun every process met this error and rank 0 reports it. This one
                    # ends quietly with 0, so that torchrun waits for rank 0 to say it and exit 1
                    # (a failed process would make torchrun stop rank 0 before it could).
                    raise typer.Exit(0) from None
                say("error: (the message could not be shown)", user_error, e)
                raise typer.Exit(1) from None
            except KeyboardInterrupt:
                code = interrupt_code()
                text = stopped(session.wrote(), ctx.invoked_subcommand == "train")
                say(text, interrupted, text)
                raise typer.Exit(code) from None
            except (typer.TyperException, typer.Exit, typer.Abort) as e:
                if isinstance(e, typer.TyperException) and getattr(e, "exit_code", None) == 2 and _echoing_rank():
                    # A usage error is every torchrun process's (the same command line): rank 0
                    # says it; this one ends quietly so that torchrun waits for rank 0 to.
                    raise typer.Exit(0) from None
                raise  # usage errors and exits: Typer renders them (exit code 2 for usage)
            except Exception as e:
                if debug or isinstance(e, BrokenPipeError) and _stdout_closed():
                    raise  # a closed pipe is _closed_pipe_quietly's
                say(
                    "internal error (out of memory or worse). This is a bug in treegrad: "
                    "run again with --debug to see the traceback, and report it.",
                    internal_error,
                    e,
                )
                raise typer.Exit(1) from None


app = typer.Typer(
    cls=TreegradGroup,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    help="Train small neural networks described in YAML/JSON spec files, and see them as formulas.",
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        out.print(f"treegrad {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks (also TREEGRAD_DEBUG=1).")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """treegrad: a model is a graph of elementary nodes; training is the chain rule run backwards."""


# ----------------------------------------------------------------- what several commands share


def file_name(text: str) -> Path:
    """An --out value: a file name (Path would silently drop the slash of `new.json/`)."""
    if not text or text.endswith(("/", os.sep)):
        raise typer.BadParameter(f"'{escape(text)}' names a folder, not a file; give a file name such as model.json")
    return Path(text)


ModelFile = Annotated[
    Path, typer.Argument(help="A model file written by `treegrad train`.", metavar="MODEL.json", show_default=False)
]
ModelOrSpec = Annotated[
    Path, typer.Argument(help="A model file, or a spec (used with its initial parameters).", metavar="MODEL|SPEC")
]
Precision = Annotated[int, typer.Option("--precision", "-p", min=1, max=17, help="Significant digits of numbers.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Force = Annotated[
    bool,
    typer.Option(
        "--force", help="Replace the output file even if it is not this command's own earlier output (files.py)."
    ),
]


@contextlib.contextmanager
def usage_errors(setting_option: str = "--set") -> Iterator[None]:
    """The library's usage errors as the usage errors they are (exit 2, placed at the option): an
    OptionError at its option, a SettingError (a bad KEY=VALUE) at `setting_option`. Under
    torchrun, rank 0 alone says it (TreegradGroup.invoke)."""
    from ..errors import OptionError, SettingError

    try:
        yield
    except (OptionError, SettingError) as e:
        if echoed(e):
            raise typer.Exit(0) from None
        option = e.option if isinstance(e, OptionError) else setting_option
        raise typer.BadParameter(str(e).removeprefix(f"{option}: "), param_hint=f"'{option}'") from None


def described(helps: dict[str, Callable[[], str]]) -> type[TyperCommand]:
    """A command class whose options named in `helps` get their help text when the help is shown:
    text that comes from the library's tables (choices, the settings' descriptions), which a run
    of the command, or --help of another, does not import."""

    class Described(TyperCommand):
        def format_help(self, ctx: typer.Context, formatter: Any) -> None:  # type: ignore[override]
            for param in self.params:
                if isinstance(param, TyperOption) and param.name in helps:
                    param.help = escape(helps[param.name]())
            super().format_help(ctx, formatter)

    return Described


def parsed(parse: Callable[..., Any], *rest: Any) -> Callable[[str | None], Any]:
    """A Typer callback from a parser that raises ValueError with a message."""

    def callback(value: str | None) -> Any:
        if value is None:
            return None
        try:
            return parse(value, *rest)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from None

    return callback
