"""The commands that show a model or write it in another form: `show`, `card`, `export`,
`import-params`, `plot`, `trace` and `report`."""

# No `from __future__ import annotations` in the cli: Typer reads the commands' annotations on
# every run, and evaluating them from strings cost about 0.1 s of each command's start-up.

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import TreegradError
from ..limits import MAX_SHOWN_FORMULA, MAX_TRACE_STEPS
from ..outputs.formats import Command, Format, described, export, lookup, render
from . import program, views
from .program import Force, ModelFile, ModelOrSpec, Precision, app, file_name, usage_errors
from .render import err, escape

Data = Annotated[str | None, typer.Option("--data", "-d", help="A built-in dataset or a CSV file.")]

# ----------------------------------------------------------------- show, card


@app.command()
def show(
    model: ModelOrSpec,
    format: Annotated[str, typer.Option("--format", "-f", help=f"{described('show')}.")] = "text",
    precision: Precision = 4,
    simplify: Annotated[
        bool, typer.Option("--simplify", help="Simplify the formula with sympy (text and latex).")
    ] = False,
    full: Annotated[
        bool,
        typer.Option("--full", help=f"Print a formula (or tree) longer than {MAX_SHOWN_FORMULA} characters whole."),
    ] = False,
) -> None:
    """Print the model as a formula (or draw its node graph with --format tree)."""
    from ..outputs.formats import show as show_model

    _format_of(format, "show")
    with usage_errors():
        showing = show_model(model, format, precision, simplify=simplify)
    limit = None if full or not showing.cut else MAX_SHOWN_FORMULA
    if showing.how == "file":
        sys.stdout.write(showing.text)
    elif showing.how == "tree":
        views.tree(showing.root, precision, limit, showing.whole)
    else:
        views.formula(showing.text, limit, showing.whole)


def _format_of(name: str, command: Command) -> Format:
    """The format `name` as `command` offers it, or the usage error listing those it offers."""
    try:
        return lookup(name, command)
    except TreegradError as e:
        raise typer.BadParameter(str(e), param_hint="--format") from None


@app.command()
def card(
    model: ModelFile,
    out_path: Annotated[
        Path | None,
        typer.Option("--out", "-o", parser=file_name, help="Write the card to this file (default: print it)."),
    ] = None,
    force: Force = False,
) -> None:
    """Print a Markdown model card: task, inputs, formula, data, metrics, training, provenance."""
    from ..outputs.card import card_file

    text = card_file(model, out_path, force=force)
    if out_path is None:
        sys.stdout.write(text)
    else:
        err.print(f"wrote the model card to {escape(str(out_path))}")


# ----------------------------------------------------------------- export, import-params


@app.command("export")
def export_(
    model: ModelOrSpec,
    format: Annotated[str, typer.Option("--format", "-f", help=f"{described('export')}.")] = "python",
    out_path: Annotated[
        Path | None,
        typer.Option("--out", "-o", parser=file_name, help="The file to write (text formats print without it)."),
    ] = None,
    precision: Precision = 4,
    force: Force = False,
) -> None:
    """Export a model: a dependency-free Python module, a PyTorch module, ONNX, LaTeX, Graphviz DOT or JSON."""
    from ..run.modelfile import open_model

    fmt = _format_of(format, "export")
    if out_path is None and fmt.binary:
        raise typer.BadParameter(
            f"{fmt.about or fmt.name} is binary: give the file to write, e.g. -o model{fmt.suffix}", param_hint="--out"
        )
    exportable = open_model(model)
    if out_path is None:
        text = render(exportable, format, precision)
        assert isinstance(text, str)
        sys.stdout.write(text)
        return
    export(exportable, format, out_path, precision, force=force)
    err.print(f"wrote {format} to {escape(str(out_path))}")


@app.command("import-params")
def import_params(
    model: ModelFile,
    state: Annotated[
        Path,
        typer.Option(
            "--from", help="A state dict saved with torch.save from the module `export --format torch` wrote."
        ),
    ],
    out_path: Annotated[Path, typer.Option("--out", "-o", parser=file_name, help="The model file to write.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace --out even if it holds another model or is not a model file.")
    ] = False,
) -> None:
    """Load parameters trained in PyTorch back into a model file, checked by name and shape."""
    from ..torch.params import import_params as load_params

    values = load_params(model, state, out_path, force=force, command=program.command_line)
    err.print(f"wrote {len(values)} parameter(s) to {escape(str(out_path))}")


# ----------------------------------------------------------------- plot, trace, report


@app.command()
def plot(
    model: ModelFile,
    out_path: Annotated[
        Path, typer.Option("--out", "-o", parser=file_name, help="The image to write: .png, .svg or .pdf.")
    ],
    data: Annotated[
        str | None, typer.Option("--data", "-d", help="Draw these points (default: the data it was trained on).")
    ] = None,
    force: Force = False,
) -> None:
    """Draw the learning curve and, for one or two inputs, the decision boundary or fitted surface."""
    from ..outputs.plotting import plot_file

    result = plot_file(model, out_path, data, force=force)
    for note in result.notes:
        err.print(f"note: {escape(note)}")
    err.print(f"wrote {' and '.join(result.panels)} to {escape(str(out_path))}")


Steps = Annotated[
    int,
    typer.Option("--steps", "-n", min=1, max=MAX_TRACE_STEPS, help="SGD steps, one per sample, from the first row."),
]


@app.command()
def trace(
    model: ModelOrSpec,
    data: Data = None,
    steps: Steps = 1,
    learning_rate: Annotated[
        float | None, typer.Option("--learning-rate", "--lr", help="Step size (default: the spec's).")
    ] = None,
    precision: Precision = 4,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the steps as a page to open in a browser instead.")
    ] = None,
    force: Force = False,
) -> None:
    """Backpropagation by hand: each node's value and the gradients it receives, step by step."""
    from ..outputs.trace import trace_file

    if html is not None:
        _write_page(html, model, data, steps, learning_rate, precision, force=force, option="--html")
        return
    traced = trace_file(model, data, learning_rate, steps=steps, precision=precision)
    for step in traced.steps:
        views.trace_step(step, traced.loss, traced.learning_rate, precision)


@app.command()
def report(
    model: ModelOrSpec,
    out_path: Annotated[Path, typer.Option("--out", "-o", help="The page to write, e.g. report.html.")],
    data: Annotated[
        str | None, typer.Option("--data", "-d", help="A built-in dataset or a CSV file (default: the model's).")
    ] = None,
    steps: Annotated[int, typer.Option("--steps", "-n", min=1, help="Trace steps to walk through in the page.")] = 3,
    learning_rate: Annotated[
        float | None,
        typer.Option("--learning-rate", "--lr", help="Step size of the traced steps (default: the model's)."),
    ] = None,
    precision: Precision = 4,
    force: Force = False,
) -> None:
    """One self-contained HTML page: the graph with values and gradients step by step, curves, formula, metrics."""
    _write_page(out_path, model, data, steps, learning_rate, precision, force=force)


def _write_page(
    out_path: Path,
    model: Path,
    data: str | None,
    steps: int,
    learning_rate: float | None,
    precision: int,
    *,
    force: bool,
    option: str = "-o",
) -> None:
    """Write the report page (report, trace --html) and say where."""
    from ..outputs.report import write_page

    with usage_errors():
        size = write_page(
            out_path,
            model,
            data,
            steps=steps,
            learning_rate=learning_rate,
            precision=precision,
            force=force,
            option=option,
        )
    err.print(f"wrote {escape(str(out_path))} ({size / 1e6:.2f} MB): open it in a browser")
