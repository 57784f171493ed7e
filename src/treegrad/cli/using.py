"""The commands that use a trained model: `predict`, `eval`, `explain` and `simplify`."""

# No `from __future__ import annotations` in the cli: Typer reads the commands' annotations on
# every run, and evaluating them from strings cost about 0.1 s of each command's start-up.

import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import TreegradError
from . import views
from .program import AsJson, Force, ModelFile, Precision, app, file_name
from .render import err, escape, print_json, warn

Values = Annotated[
    list[str] | None,
    typer.Argument(help="One sample: values in input order, or name=value.", metavar="VALUES"),
]


def _range_warnings(record: Any, rows: list[list[float]], where: Callable[[int], str] | None = None) -> None:
    """Warn on stderr about inputs far outside the ranges seen in training (see provenance.py)."""
    from ..run.provenance import range_warnings

    for warning in range_warnings(record.input_ranges, list(record.inputs), rows, where):
        warn(warning)


def _table_range_warnings(record: Any, table: Any, also: Sequence[str | None] = ()) -> None:
    """_range_warnings over the rows of a table that a command has read, each named by its line in
    the file: a row with an empty cell in an input or in the columns `also` (which `missing: drop`
    left out) is left out here too."""
    from ..data.columns import drop_missing
    from ..data.targets import input_rows

    kept, _ = drop_missing(table, [*record.inputs, *(c for c in also if c is not None)])
    _range_warnings(record, input_rows(kept, list(record.inputs)), kept.place)


def _finite_answers(results: list[dict[str, Any]], where: Callable[[int], str]) -> None:
    """Refuse to print a prediction or probability that is not a finite number (as --json gives null)."""
    for i, r in enumerate(results):
        value = r.get("probability", r.get("prediction"))
        if isinstance(value, float) and not math.isfinite(value):
            raise TreegradError(
                f"{where(i)}: the model cannot give a finite answer there (its output is {value}); the inputs "
                "are too far from what it was trained on, or its parameters too large"
            )


def _one_sample(rec: Any, values: list[str] | None) -> list[float]:
    """The row of values typed after MODEL, checked against the training ranges."""
    from ..run.values import one_value_per_input, parse_values

    if not values:
        raise typer.BadParameter(one_value_per_input(rec.inputs))
    row = parse_values(list(rec.inputs), values, rec)
    _range_warnings(rec, [row])
    return row


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
    from ..run.modelfile import load
    from ..run.predict import predict as predict_rows

    loaded = load(model)
    if values and data is not None:
        raise typer.BadParameter("give either VALUES or --data, not both")
    if data is not None:
        _predict_table(loaded, data, out_path, as_json, force)
        return
    result = predict_rows(loaded, [_one_sample(loaded.record, values)])[0]
    if as_json:
        print_json([result])
        return
    _finite_answers([result], lambda i: "these inputs")
    views.prediction(result)


def _predict_table(loaded: Any, data: str, out_path: Path | None, as_json: bool, force: bool) -> None:
    """predict --data: every row's prediction beside the user's own columns, as CSV."""
    from ..data.csvfile import to_csv
    from ..data.targets import input_rows
    from ..run.datasource import model_views
    from ..run.predict import predict as predict_rows
    from ..run.predict import with_predictions

    rec = loaded.record
    raw, table = model_views(rec, data)
    rows = input_rows(table, list(rec.inputs))
    _range_warnings(rec, rows, table.place)
    results = predict_rows(loaded, rows, table.place)
    if as_json:
        print_json(results)
        return
    _finite_answers(results, table.place)
    text = to_csv(with_predictions(raw, results))  # beside the user's own columns
    if out_path is None:
        sys.stdout.write(text)
        return
    from ..files import PREDICTIONS, write_atomic

    write_atomic(out_path, text, force=force, kind=PREDICTIONS, option="--out")
    err.print(f"wrote {len(results)} predictions to {escape(str(out_path))}")


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
    from ..run.datasource import model_table
    from ..run.modelfile import load
    from ..run.predict import evaluate
    from ..run.tasks import class_labels

    loaded = load(model)
    rec = loaded.record
    table = model_table(rec, data)
    m = evaluate(loaded, table, target)
    # After evaluate has read the cells as numbers; warned about are the rows it kept.
    _table_range_warnings(rec, table, (target or rec.data.target, rec.training.weight_column))
    bad = [k for k in ("loss", "mse", "mae", "r2") if k in m and math.isinf(m[k]) or k == "loss" and math.isnan(m[k])]
    if bad:
        raise TreegradError(
            f"the model cannot give a finite answer on {table.source} ({', '.join(bad)} not finite): "
            "the data is too far from what it was trained on, or its parameters too large"
        )
    if as_json:
        print_json(m)
        return
    labels = (class_labels(rec.task, rec.classes, len(m["confusion"])) or []) if "confusion" in m else []
    views.evaluation(f"{rec.name} on {data or rec.data.source}", rec.loss, m, labels)


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
    from ..interpret.explain import explain_model
    from ..run.modelfile import load

    if values and data:
        raise typer.BadParameter("give either VALUES (one sample) or --data (every row), not both")
    if plot_path is not None and not data:
        raise typer.BadParameter("--plot draws the ranking of --data", param_hint="--plot")
    if plot_path is not None:
        from ..outputs.plotting import plot_format

        plot_format(plot_path)
    loaded = load(model)
    if data:
        _explain_table(loaded, data, baseline, class_label, plot_path, as_json, force)
        return
    e = explain_model(loaded, _one_sample(loaded.record, values), baseline=baseline, class_label=class_label)
    if as_json:
        print_json(e.as_dict())
        return
    views.explanation(loaded.record.name, baseline, e)


def _explain_table(
    loaded: Any, data: str, baseline: str, class_label: str | None, plot_path: Path | None, as_json: bool, force: bool
) -> None:
    """explain --data: the inputs ranked by mean |contribution| over the rows (and drawn, with --plot)."""
    from ..interpret.explain import explain_data
    from ..run.datasource import model_table

    rec = loaded.record
    table = model_table(rec, data)
    ranking = explain_data(loaded, data, baseline=baseline, class_label=class_label, table=table)
    _table_range_warnings(rec, table)  # after explain_data has read its cells as numbers
    if plot_path is not None:
        from ..outputs.plotting import importance_chart

        names, means = [n for n, _ in ranking.ranked], [v for _, v in ranking.ranked]
        importance_chart(names, means, f"{rec.name}: {ranking.explained}", plot_path, force=force)
    if as_json:
        print_json(ranking.as_dict())
        return
    views.ranking(rec.name, data, baseline, ranking)
    if plot_path is not None:
        err.print(f"wrote the bar chart to {escape(str(plot_path))}")


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
    from ..core.printers import funcify
    from ..files import check_output
    from ..interpret.simplify import parse_tolerance, save_front
    from ..interpret.simplify import simplify as run_simplify
    from ..run.modelfile import load, output_kind, save

    tol = parse_tolerance(tolerance)
    if front is not None and not front.is_dir():
        raise typer.BadParameter(f"{front} is not a folder", param_hint="--front")
    loaded = load(model)
    # After the model is read (it may not be written over); before the refits, so that a wrong -o costs nothing.
    check_output(out_path, force=force, kind=output_kind(loaded.record.name))
    result = run_simplify(
        loaded,
        data=data,
        tolerance=tol,
        max_terms=max_terms,
        digits=digits,
        epochs=epochs,
        log=None if as_json else (lambda line: err.print(f"[dim]{escape(line)}[/]")),
    )
    chosen = result.candidates[result.chosen]
    save(out_path, chosen.record, force=force)
    paths = save_front(result, front, out_path.name.split(".")[0], force=force) if front is not None else []
    formula = funcify(chosen.root, precision=precision)
    if as_json:
        print_json({**result.as_dict(), "formula": formula, "written": str(out_path), "front": [str(p) for p in paths]})
        return
    views.simplified(loaded.record.name, loaded.record.task == "regression", result, formula)
    err.print(f"wrote the chosen model to {escape(str(out_path))}")
    if paths:
        err.print(f"wrote the {len(paths)} models of the table to {escape(str(front))}")
