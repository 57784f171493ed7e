"""The commands that use a trained model: `predict`, `eval`, `explain` and `simplify`."""

# No `from __future__ import annotations` in the cli: Typer reads the commands' annotations on
# every run, and evaluating them from strings cost about 0.1 s of each command's start-up.

import sys
from pathlib import Path
from typing import Annotated

import typer

from . import program, views
from .program import AsJson, Force, ModelFile, Precision, app, file_name, usage_errors
from .render import err, escape, print_json, warn


def _no_options(ctx: typer.Context, values: list[str] | None) -> list[str] | None:
    """Values after MODEL, with none that is a mistyped option (`--dta x.csv`): unknown options
    pass through as values so that `-40` is a number, and were then counted as values."""
    import difflib
    import re

    for v in values or []:
        if re.fullmatch(r"--?[A-Za-z][\w-]*", v):
            options = [o for p in ctx.command.params for o in p.opts if o.startswith("-")]
            close = difflib.get_close_matches(v, options, n=1)
            hint = f"; did you mean {close[0]}?" if close else "."
            raise typer.BadParameter(
                f"{escape(v)} is not an option of {ctx.info_name}{hint} Its options are {', '.join(options)}; "
                "a value (a number such as -4, or name=value) comes after the model file",
                param_hint="VALUES",
            )
    return values


Values = Annotated[
    list[str] | None,
    typer.Argument(
        help="One sample: values in the order of the data's columns, or name=value.",
        metavar="VALUES",
        callback=_no_options,
    ),
]


# ----------------------------------------------------------------- predict


# Unknown options pass through as values, so that `predict MODEL -40` is the value -40
# rather than "No such option: -4".
@app.command(context_settings={"ignore_unknown_options": True})
def predict(
    model: ModelFile,
    values: Values = None,
    data: Annotated[
        str | None, typer.Option("--data", "-d", help="Predict every row of a CSV file (or built-in dataset).")
    ] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", "-o", parser=file_name, help="Write the CSV with a prediction column here.")
    ] = None,
    as_json: AsJson = False,
    force: Force = False,
) -> None:
    """Predict with a saved model: one sample from the command line, or every row of a CSV."""
    from ..run.predict import predict_file

    with usage_errors():
        predicted = predict_file(model, values or [], data=data, warn=warn)
    for note in predicted.notes:
        err.print(escape(note))
    if as_json:
        print_json(predicted.results)
        return
    predicted.check_finite()
    if data is None:
        views.prediction(predicted.results[0])
    elif out_path is None:
        sys.stdout.write(predicted.csv())
    else:
        predicted.write(out_path, force=force)
        err.print(f"wrote {len(predicted.results)} predictions to {escape(str(out_path))}")


# ----------------------------------------------------------------- eval


@app.command("eval")
def eval_(
    model: ModelFile,
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", help="A CSV file or dataset with the target (default: the training data)."),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="The target column (default: the one trained on).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Loss and metrics of a saved model on data: accuracy and confusion matrix, or MSE/MAE/R²."""
    from ..run.predict import evaluate_file

    found = evaluate_file(model, data, target, warn)
    for note in found.notes:
        err.print(escape(note))
    if as_json:
        print_json(found.metrics)
        return
    views.evaluation(f"{found.name} on {found.source}", found.loss, found.metrics, found.labels)


# ----------------------------------------------------------------- explain


@app.command(context_settings={"ignore_unknown_options": True})
def explain(
    model: ModelFile,
    values: Values = None,
    baseline: Annotated[
        str, typer.Option("--baseline", help="Compare with: mean (the training inputs' mean) or zero.")
    ] = "mean",
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", help="Rank the inputs by mean |contribution| over the rows of this CSV."),
    ] = None,
    class_label: Annotated[
        str | None, typer.Option("--class", help="A classifier's class to explain (default: the predicted one).")
    ] = None,
    plot_path: Annotated[
        Path | None, typer.Option("--plot", help="With --data: draw the ranking as a bar chart (.png, .svg, .pdf).")
    ] = None,
    as_json: AsJson = False,
    force: Force = False,
) -> None:
    """Each input's contribution to a prediction: gradient, gradient × input, integrated gradients."""
    from ..interpret.explain import explain_file

    with usage_errors():
        found = explain_file(
            model,
            values or [],
            data=data,
            baseline=baseline,
            class_label=class_label,
            plot=plot_path,
            warn=warn,
            force=force,
        )
    if as_json:
        print_json(found.as_dict())
    elif found.ranking is not None:
        views.ranking(found.name, str(data), baseline, found.ranking)
    else:
        views.explanation(found.name, baseline, found.sample)
    if found.plot is not None and not as_json:
        err.print(f"wrote the bar chart to {escape(str(found.plot))}")


# ----------------------------------------------------------------- simplify


@app.command()
def simplify(
    model: ModelFile,
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Where to write the chosen model.")],
    tolerance: Annotated[
        str,
        typer.Option(
            "--tolerance",
            help="How much worse than the full model the chosen one may be: loss ratio for regression, "
            "accuracy points for classifiers (1% or 0.01).",
        ),
    ] = "1%",
    max_terms: Annotated[
        int | None, typer.Option("--max-terms", help="Choose among models of at most this many terms.")
    ] = None,
    digits: Annotated[
        int | None, typer.Option("--digits", help="Round the chosen model's numbers to N significant digits.")
    ] = None,
    data: Annotated[
        str | None, typer.Option("--data", "-d", help="The training data, if it is no longer where it was.")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Epochs of each refit (default: the model's own).")
    ] = None,
    front: Annotated[
        Path | None, typer.Option("--front", help="Also save every model of the table in this folder.")
    ] = None,
    precision: Precision = 4,
    as_json: AsJson = False,
    force: Force = False,
) -> None:
    """Shorten a model to a readable formula: cut, fold and refit step by step, and choose within a tolerance."""
    from ..interpret.simplify import simplify_file

    with usage_errors():
        saved = simplify_file(
            model,
            out_path,
            tolerance=tolerance,
            data=data,
            max_terms=max_terms,
            digits=digits,
            epochs=epochs,
            front=front,
            precision=precision,
            log=None if as_json else (lambda line: err.print(f"[dim]{escape(line)}[/]")),
            force=force,
            command=program.command_line,
        )
    if as_json:
        written = {"formula": saved.formula, "written": str(saved.out), "front": [str(p) for p in saved.front]}
        print_json({**saved.result.as_dict(), **written})
        return
    views.simplified(saved.record.name, saved.record.task == "regression", saved.result, saved.formula)
    err.print(f"wrote the chosen model to {escape(str(out_path))}")
    if saved.front:
        err.print(f"wrote the {len(saved.front)} models of the table to {escape(str(front))}")
