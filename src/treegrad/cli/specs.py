"""The commands about specs and data: `check` (a spec, with a gradient check), `datasets` (the
built-in ones), `init` (a spec for a CSV) and `schema` (the JSON Schema of spec files)."""

# No `from __future__ import annotations` in the cli: Typer reads the commands' annotations on
# every run, and evaluating them from strings cost about 0.1 s of each command's start-up.

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from . import views
from .program import app, file_name, usage_errors
from .render import err, escape, warn


@app.command()
def check(
    spec: Annotated[Path, typer.Argument(help="The model spec file to validate.", metavar="SPEC")],
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", help="Check the gradients at rows of this data (default: the spec's data:)."),
    ] = None,
) -> None:
    """Validate a spec, summarise it, and check its gradients numerically."""
    from ..run.setups import check_spec

    checked = check_spec(spec, data)
    views.checked(f"{spec} is valid", checked.summary, checked.gradients, checked.on_data)
    if not checked.gradients.ok:
        raise typer.Exit(1)


@app.command()
def datasets() -> None:
    """List the built-in generated datasets (use as --data NAME or NAME:N)."""
    from ..data.generated import GENERATORS

    views.datasets(GENERATORS.values())


@app.command()
def init(
    data: Annotated[Path, typer.Argument(help="The CSV file to read the header and cells of.", metavar="DATA.csv")],
    out_path: Annotated[
        Path | None,
        typer.Option("--out", "-o", parser=file_name, help="The spec file to write (default: the CSV's stem.yaml)."),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option("--target", help="The column to learn (default: the one named target, label, class, y, ...)."),
    ] = None,
    model: Annotated[str, typer.Option("--model", help="linear (no hidden layer) or mlp (one hidden layer).")] = "mlp",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing spec file.")] = False,
) -> None:
    """Write a commented spec for a CSV file that trains with no edits."""
    from ..spec.scaffold import default_spec, init_spec

    with usage_errors():
        found = init_spec(data, out_path, target=target, model=model, force=force)
    for warning in found.warnings:
        warn(warning)
    what = {"regression": "a regression", "binary": "a two-class classifier"}.get(found.kind, "a classifier")
    spec = escape(str(out_path or default_spec(data)))
    named = " (named like a target; --target COLUMN for another)" if found.by_name else ""
    err.print(
        f"wrote {spec}: {what} of '{escape(found.target)}'{named}; train it with "
        f"treegrad train {spec}   (it writes {escape(found.model_file)})"
    )


@app.command()
def schema() -> None:
    """Print the JSON Schema of spec files (for editor validation and completion)."""
    from ..spec.models import spec_schema

    sys.stdout.write(json.dumps(spec_schema(), indent=2) + "\n")
