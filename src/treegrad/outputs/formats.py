"""The output formats, one table: every form a model is shown in (`treegrad show --format`) or
exported to (`treegrad export --format`), one row each, saying how it is made, the file it writes
(its kind, known by the mark files.py looks for, and its usual suffix), the optional package it
needs, and how `show` prints it. Both commands, their --format help and their messages read this
table, so a new format is its maker (a function of the model, and of --precision where it rounds
numbers, in an outputs/ module) and one row here; `tests/test_formats.py` takes every row through
both commands.

A maker is named "module:function" of this folder and imported when first used, so that reading
the table (for --help) loads none of them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .. import files
from ..errors import OptionError, TreegradError

if TYPE_CHECKING:
    from ..run.modelfile import Opened

# How `show` prints a format: the text `export` writes ("file"), the printers' formula of that
# name, cut at the length limit and open to --simplify ("formula"), or the node graph the command
# line draws ("tree").
Shown = Literal["file", "formula", "tree"]
Command = Literal["show", "export"]


@dataclass(frozen=True)
class Format:
    """One output format: how a model is made into it, and where it is offered."""

    name: str
    about: str  # a few words for --format's help and messages ("an ONNX model"); "": the name says it
    make: str = ""  # "module:function" in outputs/: function(model[, precision]) -> str | bytes; "": none
    rounds: bool = False  # its numbers are rounded to --precision (passed to the maker), else exact
    kind: files.Kind | None = None  # the file `export -o` writes, told by its mark (files.py); None: not exported
    suffix: str = ""  # the usual ending of that file's name
    needs: str | None = None  # the optional package its maker imports
    binary: bool = False  # bytes, written to a file only
    show: Shown | None = None  # how `show` prints it; None: show does not


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("text", "", show="formula"),
        Format("python", "a standalone module", "standalone:python_module", False, files.PYTHON, ".py", show="file"),
        Format("torch", "a PyTorch nn.Module", "torchsource:module_source", False, files.TORCH, ".py", needs="torch"),
        Format("onnx", "an ONNX model", "export:onnx_bytes", False, files.ONNX, ".onnx", needs="onnx", binary=True),
        Format("latex", "", "export:latex_document", True, files.LATEX, ".tex", show="formula"),
        Format("tree", "the node graph", show="tree"),
        Format("dot", "Graphviz", "export:dot_document", True, files.DOT, ".dot", show="file"),
        Format("json", "", "export:graph_json", False, files.GRAPH, ".json", show="file"),
    )
}


def offered(command: Command) -> list[Format]:
    """The formats a command offers, in the table's order."""
    return [f for f in FORMATS.values() if (f.show if command == "show" else f.kind) is not None]


def described(command: Command) -> str:
    """The formats a command offers, for its --format help: 'text, python (a standalone module) or json'."""
    names = [f"{f.name} ({f.about})" if f.about else f.name for f in offered(command)]
    return ", ".join(names[:-1]) + " or " + names[-1]


def lookup(name: str, command: Command) -> Format:
    """The format `name` as `command` offers it; a TreegradError listing the formats it offers."""
    formats = offered(command)
    found = next((f for f in formats if f.name == name), None)
    if found is None:
        raise TreegradError(f"unknown format '{name}'; use one of {', '.join(f.name for f in formats)}")
    return found


def render(model: Opened, name: str, precision: int = 4) -> str | bytes:
    """The model in the format `name` (an export format): text, or bytes for a binary one."""
    fmt = lookup(name, "export")
    module, _, function = fmt.make.partition(":")
    maker = getattr(importlib.import_module(f"{__package__}.{module}"), function)
    made: str | bytes = maker(model, precision) if fmt.rounds else maker(model)
    return made


def export(model: Opened, name: str, out: Path, precision: int = 4, *, force: bool = False) -> None:
    """Write the model in the format `name` to `out`, atomically (an old file stays whole until then);
    an existing `out` is replaced only if it is this format's export (its kind), or with `force`."""
    fmt = lookup(name, "export")
    files.write_atomic(out, render(model, name, precision), kind=fmt.kind, force=force)


@dataclass(frozen=True)
class Showing:
    """What `treegrad show` prints for a model: text as `export` writes it ("file"), a formula
    ("formula": the command line cuts a long one unless --full, but not one sympy simplified),
    or the node graph it draws ("tree")."""

    how: Shown
    text: str  # "" for the tree
    root: Any  # the model's output node
    whole: str  # how to see a cut formula or tree whole
    cut: bool = True  # a long formula may be cut


def show(path: Path, name: str, precision: int = 4, *, simplify: bool = False) -> Showing:
    """`treegrad show`: the model of a model file or spec in the format `name` (a show format),
    its formula simplified by sympy with `simplify`."""
    from ..core.printers import full_formula_hint, funcify
    from ..run.modelfile import open_model

    fmt = lookup(name, "show")
    model = open_model(path)
    whole = full_formula_hint(str(path), name)
    if fmt.show == "file":  # --simplify does not apply: the file is shown as export writes it
        text = render(model, name, precision)
        assert isinstance(text, str), "a show format is text"
        return Showing("file", text, model.root, whole)
    if simplify:
        if fmt.show != "formula":
            formulas = " or ".join(f.name for f in offered("show") if f.show == "formula")
            raise OptionError(f"--simplify works with --format {formulas}", "--simplify")
        from .export import simplified

        return Showing("formula", simplified(model.root, precision=precision, format=name), model.root, whole, False)
    if fmt.show == "tree":
        return Showing("tree", "", model.root, whole)
    return Showing("formula", funcify(model.root, precision=precision, format=name), model.root, whole)
