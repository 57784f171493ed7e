"""The `treegrad` command line: thin Typer commands over `workflow.py`, rendered with rich.

This is the only module that imports typer or rich, and the one place where a
`TreegradError` becomes a message: `TreegradGroup.invoke` prints it on stderr as one
short paragraph and exits with code 1 (usage errors exit 2, Ctrl-C 130). A traceback is
shown only with `--debug` or TREEGRAD_DEBUG=1.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from .errors import TreegradError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _debug(ctx: typer.Context) -> bool:
    return bool(ctx.params.get("debug")) or os.environ.get("TREEGRAD_DEBUG", "") not in ("", "0")


class TreegradGroup(TyperGroup):
    """Runs a command and turns every error into one message and an exit code."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except TreegradError as e:
            if _debug(ctx):
                raise
            err.print(f"[bold red]error:[/] {e}", markup=True, highlight=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]: nothing was written.")
            raise typer.Exit(130) from None
        except (typer.TyperException, typer.Exit, typer.Abort):
            raise  # usage errors and exits: Typer renders them (exit code 2 for usage)
        except Exception as e:
            if _debug(ctx):
                raise
            err.print(f"[bold red]internal error[/] ({type(e).__name__}: {e}). This is a bug in treegrad, "
                      "not in your input: run again with --debug to see the traceback, and report it.")
            raise typer.Exit(1) from None


app = typer.Typer(cls=TreegradGroup, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Train small neural networks described in YAML/JSON spec files, "
                       "and see them as formulas.")


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks (also TREEGRAD_DEBUG=1).")) -> None:
    """treegrad: a model is a graph of elementary nodes; training is the chain rule run backwards."""


def _escape(s: str) -> str:
    from rich.markup import escape

    return escape(s)


# ----------------------------------------------------------------- train


@app.command()
def train(
    spec: Path = typer.Argument(..., help="The model spec file (YAML or JSON)."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="A built-in dataset (NAME or NAME:N) or a CSV file."),
    target: Optional[str] = typer.Option(None, "--target", help="The CSV column to learn."),
    out_path: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to write the model (default: NAME.model.json)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Override training.epochs."),
    learning_rate: Optional[float] = typer.Option(None, "--learning-rate", "--lr", help="Override training.learning_rate."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Override training.batch_size."),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="Override training.optimizer: sgd, momentum, adam."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Override training.seed."),
    validation_split: Optional[float] = typer.Option(None, "--validation-split", help="Override training.validation_split."),
    normalize: Optional[bool] = typer.Option(None, "--normalize/--no-normalize", help="Override training.normalize."),
    checkpoint: bool = typer.Option(False, "--checkpoint", help="On Ctrl-C, save the model of the last complete epoch."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary; just the model path."),
) -> None:
    """Train a spec on data and save the learned model as JSON."""
    from . import workflow

    overrides = {"epochs": epochs, "learning_rate": learning_rate, "batch_size": batch_size,
                 "optimizer": optimizer, "seed": seed, "validation_split": validation_split,
                 "normalize": normalize}
    spec_obj, _ = workflow.load_spec_file(spec)
    if out_path is None:
        out_path = Path(f"{spec_obj.name or spec.stem}.model.json")
    if quiet:
        result = workflow.train(spec, data=data, target=target, overrides=overrides, out=out_path,
                                checkpoint=checkpoint)
    else:
        total = workflow.training_settings(spec_obj, overrides).epochs
        result = _train_with_progress(spec, data, target, overrides, out_path, checkpoint, total)
    if quiet:
        out.print(str(out_path))
        return
    _summary(result)


def _train_with_progress(spec: Path, data: str | None, target: str | None, overrides: dict[str, Any],
                         out_path: Path, checkpoint: bool, epochs: int) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from . import workflow

    columns = [TextColumn("[bold]training[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("epochs"),
               TimeRemainingColumn(), TextColumn("{task.fields[status]}")]
    with Progress(*columns, console=err, refresh_per_second=8) as bar:
        task = bar.add_task("train", total=epochs, status="")

        def progress(epoch: int, train_loss: float, val_loss: float | None, extra: dict[str, float]) -> None:
            status = f"loss {train_loss:.4g}"
            if val_loss is not None:
                status += f"  val {val_loss:.4g}"
            if "accuracy" in extra:
                status += f"  acc {extra['accuracy']:.1%}"
            bar.update(task, completed=epoch, status=status)

        return workflow.train(spec, data=data, target=target, overrides=overrides, out=out_path,
                              progress=progress, checkpoint=checkpoint)


def _summary(result: Any) -> None:
    from .plots import text_curve

    rec = result.record
    hist = rec.history
    if hist.train:
        curve = text_curve(hist.train, hist.validation or None, width=60, height=8)
        out.print("\n".join(curve))
    t = Table(title=f"trained {rec.name}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("epochs", f"{len(hist.train)}" + (" (stopped early)" if hist.stopped_early else "")
              + (" (interrupted)" if result.interrupted else ""))
    t.add_row("final training loss", f"{hist.train[-1]:.6g}" if hist.train else "-")
    if hist.validation:
        t.add_row("final validation loss", f"{hist.validation[-1]:.6g}")
    for part, m in rec.metrics.items():
        for key in ("accuracy", "r2", "mae"):
            if key in m and not (isinstance(m[key], float) and math.isnan(m[key])):
                value = f"{m[key]:.1%}" if key == "accuracy" else f"{m[key]:.4g}"
                t.add_row(f"{part} {key}", value)
    t.add_row("parameters", str(result.parameter_count))
    t.add_row("nodes", str(result.node_count))
    t.add_row("data", f"{_escape(rec.data.source)} ({rec.data.train_rows} training rows"
              + (f", {rec.data.validation_rows} validation" if rec.data.validation_rows else "") + ")")
    t.add_row("time", f"{result.seconds:.2f} s")
    t.add_row("model written to", _escape(str(result.out)))
    out.print(t)
    out.print(f"next: treegrad predict {_escape(str(result.out))} "
              + " ".join(f"{n}=..." for n in rec.inputs) + f"   |   treegrad show {_escape(str(result.out))}")


# ----------------------------------------------------------------- predict, eval, show


@app.command()
def predict(
    model: Path = typer.Argument(..., help="A model file written by `treegrad train`."),
    values: Optional[list[str]] = typer.Argument(None, help="One sample: values in input order, or name=value."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Predict every row of a CSV file (or built-in dataset)."),
    out_path: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the CSV with a prediction column here."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON (a list, one entry per sample)."),
) -> None:
    """Predict with a saved model: one sample from the command line, or every row of a CSV."""
    from . import workflow

    loaded = workflow.load(model)
    rec = loaded.record
    if values and data:
        raise typer.BadParameter("give either VALUES or --data, not both")
    if data:
        from .data import input_rows, load_data

        table = load_data(data, base_dir=Path.cwd())
        rows = input_rows(table, list(rec.inputs))
        results = workflow.predict(loaded, rows)
        if as_json:
            out.print_json(json.dumps(results))
            return
        text = _results_csv(table, results)
        if out_path is not None:
            from .modelfile import write_atomic

            write_atomic(out_path, text)
            err.print(f"wrote {len(results)} predictions to {_escape(str(out_path))}")
        else:
            sys.stdout.write(text)
        return
    if not values:
        raise typer.BadParameter(f"give one value per input ({', '.join(rec.inputs)}), or --data FILE.csv")
    row = workflow.parse_values(list(rec.inputs), values)
    result = workflow.predict(loaded, [row])[0]
    if as_json:
        out.print_json(json.dumps([result]))
    elif "label" in result:
        out.print(f"{_escape(result['label'])}  (probability {result['probability']:.4f})")
    else:
        out.print(f"{result['prediction']:.6g}")


def _results_csv(table: Any, results: list[dict[str, Any]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    extra = ["prediction", "probability"] if results and "label" in results[0] else ["prediction"]
    w.writerow(list(table.columns) + extra)
    for row, r in zip(table.rows, results):
        cells = [("%.17g" % c) if isinstance(c, float) else c for c in row]
        if "label" in r:
            w.writerow(cells + [r["label"], "%.6g" % r["probability"]])
        else:
            w.writerow(cells + ["%.10g" % r["prediction"]])
    return buf.getvalue()


@app.command("eval")
def eval_(
    model: Path = typer.Argument(..., help="A model file written by `treegrad train`."),
    data: str = typer.Option(..., "--data", "-d", help="A CSV file or built-in dataset with the target column."),
    target: Optional[str] = typer.Option(None, "--target", help="The target column (default: the one trained on)."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Loss and metrics of a saved model on data: accuracy and confusion matrix, or MSE/MAE/R²."""
    from . import workflow
    from .data import load_data

    loaded = workflow.load(model)
    m = workflow.evaluate(loaded, load_data(data, base_dir=Path.cwd()), target)
    if as_json:
        out.print_json(json.dumps(m))
        return
    t = Table(title=f"{loaded.record.name} on {_escape(data)}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("rows", str(m["rows"]))
    t.add_row(f"loss ({loaded.record.loss})", f"{m['loss']:.6g}")
    for key in ("accuracy", "mse", "mae", "r2"):
        if key in m:
            t.add_row(key, f"{m[key]:.2%}" if key == "accuracy" else f"{m[key]:.6g}")
    out.print(t)
    if "confusion" in m:
        labels = loaded.record.classes or [str(i) for i in range(len(m["confusion"]))]
        c = Table(title="confusion (rows: true, columns: predicted)", title_justify="left")
        c.add_column("")
        for lab in labels:
            c.add_column(_escape(lab), justify="right")
        for lab, row in zip(labels, m["confusion"]):
            c.add_row(_escape(lab), *[str(v) for v in row])
        out.print(c)


def _model_root(path: Path) -> tuple[Any, str]:
    """The graph of a model file (learned values) or of a spec (initial values), and a name."""
    from . import workflow

    if path.suffix.lower() == ".json":
        try:
            head = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            head = None
        if isinstance(head, dict) and "format" in head:
            loaded = workflow.load(path)
            return loaded.root, loaded.record.name
    from .build import build_model

    spec, _ = workflow.load_spec_file(path)
    return build_model(spec), spec.name or path.stem


@app.command()
def show(
    model: Path = typer.Argument(..., help="A model file, or a spec (shown with its initial parameters)."),
    format: str = typer.Option("text", "--format", "-f", help="text, latex, python or tree."),
    precision: int = typer.Option(4, "--precision", "-p", min=1, max=17, help="Significant digits of numbers."),
) -> None:
    """Print the model as a formula (or draw its node graph with --format tree)."""
    root, name = _model_root(model)
    if format == "tree":
        out.print(_tree(root, precision))
        return
    from .printers import FORMATS, funcify

    if format not in FORMATS:
        raise typer.BadParameter(f"unknown format '{format}'; use one of {', '.join(FORMATS)}, tree",
                                 param_hint="--format")
    out.print(_escape(funcify(root, precision=precision, format=format)))


def _tree(root: Any, precision: int) -> Any:
    from rich.tree import Tree

    from .nodes import Constant, Input, Output, Parameter, Softmax
    from .printers import number

    g = root.graph
    uses: dict[int, int] = {}
    for n in g.order:
        for c in n.children:
            uses[id(c)] = uses.get(id(c), 0) + 1

    def label(n: Any) -> str:
        if isinstance(n, Input):
            return f"[green]{_escape(n.name)}[/]"
        if isinstance(n, Parameter):
            return f"[cyan]{_escape(n.name)} = {number(n.value, precision)}[/]"
        if isinstance(n, Constant):
            return number(n.value, precision)
        if isinstance(n, Softmax):
            return "[bold]softmax[/]"
        if isinstance(n, Output):
            return "[bold]output[/]"
        return f"[bold]{n.op.name}[/]"

    names = {id(n): f"#{i}" for i, n in enumerate(g.order)}
    top = Tree(label(g.output))
    shown: set[int] = set()
    stack = [(g.output, top)]
    while stack:  # iterative: a deep chain must not recurse
        node, branch = stack.pop()
        for c in reversed(node.children):
            text = label(c)
            if uses.get(id(c), 0) > 1 and c.children:
                text += f" [dim]{names[id(c)]}[/]"
                if id(c) in shown:
                    branch.add(text + " [dim](shared, drawn above)[/]")
                    continue
                shown.add(id(c))
            stack.append((c, branch.add(text)))
    return top


# ----------------------------------------------------------------- check, datasets, schema


@app.command()
def check(
    spec: Path = typer.Argument(..., help="The model spec file to validate."),
) -> None:
    """Validate a spec, summarise it, and check its gradients numerically."""
    from . import workflow
    from .build import build_model, loss_name
    from .gradcheck import gradient_check

    spec_obj, _ = workflow.load_spec_file(spec)
    root = build_model(spec_obj)
    g = root.graph
    worst, count = gradient_check(root)
    t = Table(title=f"{_escape(str(spec))} is valid", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("inputs", ", ".join(g.input_names))
    t.add_row("output", "softmax" if g.is_softmax else (f"list of {len(g.elements)}" if g.is_list else "one value"))
    t.add_row("loss", loss_name(spec_obj))
    t.add_row("parameters", str(len(g.params)))
    t.add_row("nodes", str(len(g.order)))
    t.add_row("gradient check", f"{count} parameter gradients vs finite differences: "
              f"max relative error {worst:.2g} " + ("[green]ok[/]" if worst < 1e-4 else "[red]MISMATCH[/]"))
    out.print(t)
    if worst >= 1e-4:
        raise typer.Exit(1)


@app.command()
def datasets() -> None:
    """List the built-in generated datasets (use as --data NAME or NAME:N)."""
    from .data import GENERATORS

    t = Table(title="built-in datasets (--data NAME, or NAME:N for N samples)", title_justify="left")
    t.add_column("name", style="bold")
    t.add_column("columns")
    t.add_column("kind")
    t.add_column("rows", justify="right")
    t.add_column("description")
    for g in GENERATORS.values():
        t.add_row(g.name, ", ".join(g.columns), g.kind, str(g.default_n), g.description)
    out.print(t)


@app.command()
def schema() -> None:
    """Print the JSON Schema of spec files (for editor validation and completion)."""
    from .spec import spec_schema

    sys.stdout.write(json.dumps(spec_schema(), indent=2) + "\n")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context) -> None:
    """Benchmark training speed side by side with installed peers (options: --quick, --only W1,W2a,...)."""
    from .bench import main as bench_main

    code = bench_main(list(ctx.args))
    raise typer.Exit(code or 0)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="treegrad")


if __name__ == "__main__":
    main()
