"""The `treegrad` command line: thin Typer commands over the library (`workflow`, `modelfile`,
`tasks`, ...), rendered with rich, and the parsing of values typed on the command line.

This is the only module that imports typer or rich, and the one place where a
`TreegradError` becomes a message: `TreegradGroup.invoke` prints it on stderr as one
short paragraph and exits with code 1 (usage errors exit 2, Ctrl-C 130). A traceback is
shown only with `--debug` or TREEGRAD_DEBUG=1.
"""

# No `from __future__ import annotations` here: Typer reads every command's annotations on
# every run, and evaluating them from strings cost about 0.1 s of each command's start-up.

import contextlib
import json
import math
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from ..data.parts import echoed, launched
from ..errors import MAX_LISTED, DataError, TreegradError, clip, did_you_mean, escaped, listed
from ..limits import MAX_SHOWN_FORMULA, MAX_TRACE_STEPS

if TYPE_CHECKING:
    from rich.table import Table

# Text from files is shown as written: no highlighting, and no emoji codes (a label `:x:`
# stays `:x:`).
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


# Parameters several commands share, declared once.
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


def _out_path(text: str) -> Path:
    """An --out value: a file name (Path would silently drop the slash of `new.json/`)."""
    if not text or text.endswith(("/", os.sep)):
        raise typer.BadParameter(f"'{_escape(text)}' names a folder, not a file; give a file name such as model.json")
    return Path(text)


def _echoing_rank() -> bool:
    """True in a torchrun process other than rank 0: an error every process meets is rank 0's to say."""
    rank, processes = launched()
    return processes > 1 and rank > 0


def _debug(ctx: typer.Context) -> bool:
    return bool(ctx.params.get("debug")) or os.environ.get("TREEGRAD_DEBUG", "") not in ("", "0")


def _user_error(e: BaseException) -> str:
    return f"[bold red]error:[/] {_escape(str(e))}"


def _internal_error(e: BaseException) -> str:
    return (
        f"[bold red]internal error[/] ({type(e).__name__}: {_escape(str(e))}). This is a bug in treegrad, "
        "not in your input: run again with --debug to see the traceback, and report it."
    )


def _interrupted(text: str) -> str:
    return f"[yellow]interrupted[/]{_escape(text.removeprefix('interrupted'))}"


def _say(fallback: str, markup: Callable[[Any], str], about: Any) -> None:
    """Print `markup(about)` on stderr; if even that fails (no memory left), write the plain fallback."""
    try:
        err.print(markup(about))
    except BaseException:
        try:
            sys.stderr.write(fallback + "\n")
        except BaseException:
            with contextlib.suppress(OSError):
                os.write(2, fallback.encode("ascii", "replace") + b"\n")


class TreegradGroup(TyperGroup):
    """Runs a command and turns every error into one message and an exit code.

    Everything the handlers need is worked out before the command runs, so that the error
    path cannot fail itself (a MemoryError leaves no room to look anything up).
    """

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        from .. import files

        debug = _debug(ctx)
        with files.command() as session:
            try:
                return super().invoke(ctx)
            except TreegradError as e:
                if debug:
                    raise
                if echoed(e):
                    # Under torchrun every process met this error and rank 0 reports it. This one
                    # ends quietly with 0, so that torchrun waits for rank 0 to say it and exit 1
                    # (a failed process would make torchrun stop rank 0 before it could).
                    raise typer.Exit(0) from None
                _say("error: (the message could not be shown)", _user_error, e)
                raise typer.Exit(1) from None
            except KeyboardInterrupt:
                code = _interrupt_code()
                if session.written:
                    done = ", ".join(str(p) for p in session.written)
                    text = f"interrupted: {done} had already been written in full."
                else:
                    text = "interrupted: nothing was written (train with --checkpoint to keep the last epoch)."
                _say(text, _interrupted, text)
                raise typer.Exit(code) from None
            except (typer.TyperException, typer.Exit, typer.Abort) as e:
                if isinstance(e, typer.TyperException) and getattr(e, "exit_code", None) == 2 and _echoing_rank():
                    # A usage error is every torchrun process's (the same command line): rank 0
                    # says it; this one ends quietly so that torchrun waits for rank 0 to.
                    raise typer.Exit(0) from None
                raise  # usage errors and exits: Typer renders them (exit code 2 for usage)
            except Exception as e:
                if debug:
                    raise
                _say(
                    "internal error (out of memory or worse). This is a bug in treegrad: "
                    "run again with --debug to see the traceback, and report it.",
                    _internal_error,
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


def _escape(s: str) -> str:
    """Text from files and users, made safe to print: no rich markup, no terminal control characters."""
    from rich.markup import escape

    from ..errors import escaped

    return escape(escaped(s))


# ----------------------------------------------------------------- train


@app.command()
def train(
    ctx: typer.Context,
    spec: Annotated[
        Path | None, typer.Argument(help="The model spec file (YAML or JSON); none with --resume.", metavar="SPEC")
    ] = None,
    data: Annotated[
        str | None, typer.Option("--data", "-d", help="A built-in dataset (NAME or NAME:N) or a CSV file.")
    ] = None,
    target: Annotated[str | None, typer.Option("--target", help="The CSV column to learn.")] = None,
    out_path: Annotated[
        Path | None,
        typer.Option("--out", "-o", parser=_out_path, help="Where to write the model (default: NAME.model.json)."),
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Override training.epochs.")] = None,
    learning_rate: Annotated[
        float | None, typer.Option("--learning-rate", "--lr", help="Override training.learning_rate.")
    ] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Override training.batch_size.")] = None,
    optimizer: Annotated[
        str | None, typer.Option("--optimizer", help="Override training.optimizer: sgd, momentum, adam.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Override training.seed.")] = None,
    validation_split: Annotated[
        float | None, typer.Option("--validation-split", help="Override training.validation_split.")
    ] = None,
    normalize: Annotated[
        bool | None, typer.Option("--normalize/--no-normalize", help="Override training.normalize.")
    ] = None,
    l1: Annotated[float | None, typer.Option("--l1", help="Override training.l1 (L1 penalty on weights).")] = None,
    l2: Annotated[float | None, typer.Option("--l2", help="Override training.l2 (weight decay).")] = None,
    clip_norm: Annotated[
        float | None, typer.Option("--clip-norm", help="Override training.clip_norm (largest gradient norm).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="KEY=VALUE: any spec key by its dotted path, e.g. training.lr_schedule='{type: cosine}', "
            "layers.0.linear=16, inputs=all (a training setting may leave out 'training.'). Repeatable.",
        ),
    ] = None,
    checkpoint: Annotated[
        bool, typer.Option("--checkpoint", help="On Ctrl-C, save the model of the last complete epoch.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar or summary; just the model path.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace --out (and --log-dir's files) even if they hold another model or run."),
    ] = False,
    log_dir: Annotated[
        Path | None,
        typer.Option("--log-dir", help="Write the run here: metrics.csv (a row per epoch) and the resolved spec.yaml."),
    ] = None,
    print_config: Annotated[
        bool,
        typer.Option("--print-config", help="Print the resolved spec, defaults filled in, and exit; write nothing."),
    ] = False,
    engine: Annotated[
        str,
        typer.Option("--engine", help="treegrad (its own engine) or torch (PyTorch; data-parallel under torchrun)."),
    ] = "treegrad",
    device: Annotated[str, typer.Option("--device", help="With --engine torch: cpu or cuda.")] = "cpu",
    resume_from: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            metavar="MODEL.json",
            help="Continue the run recorded in MODEL.json for --epochs more (default: as many again), bit for "
            "bit as one longer run; writes MODEL.resumed.json unless -o.",
        ),
    ] = None,
    init_from: Annotated[
        Path | None,
        typer.Option(
            "--init-from",
            metavar="MODEL.json",
            help="Start from MODEL.json's parameters (matched by name) with a fresh optimizer, on this run's data.",
        ),
    ] = None,
) -> None:
    """Train a spec on data and save the learned model as JSON (or continue a saved run: --resume)."""
    from ..run import workflow
    from ..torch import bridge as torch_bridge

    if resume_from is not None:
        changing = [
            flag
            for flag, value in [
                ("SPEC", spec),
                ("--target", target),
                ("--learning-rate", learning_rate),
                ("--batch-size", batch_size),
                ("--optimizer", optimizer),
                ("--seed", seed),
                ("--validation-split", validation_split),
                ("--normalize", normalize),
                ("--l1", l1),
                ("--l2", l2),
                ("--clip-norm", clip_norm),
                ("--set", set_ or None),
                ("--init-from", init_from),
                ("--engine", None if engine == "treegrad" else engine),
                ("--device", None if device == "cpu" else device),
            ]
            if value is not None
        ]
        if changing:
            raise typer.BadParameter(
                f"--resume continues the run recorded in the model file with its own spec, data and settings; "
                f"{', '.join(changing)} would make it another run. Drop {'it' if len(changing) == 1 else 'them'} "
                "(--epochs, -o and --data with the same rows are allowed), or start a new run from its "
                "parameters: treegrad train SPEC --init-from MODEL.json",
                param_hint="'--resume'",
            )
    elif spec is None:
        raise typer.BadParameter(
            "give the SPEC to train, or --resume MODEL.json to continue a saved run", param_hint="'SPEC'"
        )
    if engine not in ("treegrad", "torch"):
        raise typer.BadParameter(f"unknown engine '{engine}'; use treegrad or torch", param_hint="--engine")
    if engine == "treegrad" and device != "cpu":
        raise typer.BadParameter("--device needs --engine torch; treegrad's own engine runs on the CPU")
    processes = launched()[1]
    if processes > 1 and resume_from is not None:
        raise typer.BadParameter(
            f"torchrun started {processes} processes, but --resume continues a run in one process: "
            "run it without torchrun",
            param_hint="'--resume'",
        )
    if processes > 1 and engine != "torch":
        raise typer.BadParameter(
            f"torchrun started {processes} processes, but treegrad's own engine trains in one: each would train "
            "the whole run and write the same file. Add --engine torch to train data-parallel, or run treegrad "
            "without torchrun",
            param_hint="--engine",
        )
    overrides = {
        "epochs": epochs,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "optimizer": optimizer,
        "seed": seed,
        "validation_split": validation_split,
        "normalize": normalize,
        "l1": l1,
        "l2": l2,
        "clip_norm": clip_norm,
    }
    from ..data.parts import WHOLE
    from ..spec.settings import SettingError, parse_assignment

    part = WHOLE
    if engine == "torch" and resume_from is None:
        # Under torchrun, every process joins the group now and reads its part of the data;
        # the group is left when the command ends.
        part = ctx.with_resource(torch_bridge.data_parallel(device))
    try:
        sets = [(key, values[0]) for key, values in (parse_assignment(item, "--set") for item in set_ or [])]
        if resume_from is not None:
            prep = workflow.prepare_resume(resume_from, epochs=epochs, data=data, command=_argv)
        else:
            assert spec is not None
            prep = workflow.prepare(
                spec, data=data, target=target, overrides=overrides, sets=sets, command=_argv, part=part
            )
    except SettingError as e:  # a usage error: exit 2, the message names the key
        if echoed(e):
            raise typer.Exit(0) from None  # under torchrun rank 0 says it (TreegradGroup.invoke)
        raise typer.BadParameter(str(e).removeprefix("--set: "), param_hint="'--set'") from None
    if init_from is not None:
        from ..run.resume import warm_start

        part.agree(lambda: warm_start(prep, init_from))
    if print_config:
        from ..run.runlog import dump

        if part.rank == 0:  # under torchrun, once
            typer.echo(dump(prep.resolved), nl=False)
        return
    if out_path is None:  # a resumed run never replaces the file it continues
        out_path = resume_from.with_suffix(".resumed.json") if resume_from else Path(f"{prep.name}.model.json")
    trainer = torch_bridge.trainer(prep.settings, device) if engine == "torch" else None
    if trainer is not None and part.rank > 0:
        # Under torchrun every process trains; rank 0 alone writes the model and reports.
        workflow.run(prep, trainer=trainer)
        return
    log = None
    if log_dir is not None:
        from ..run.runlog import RunLog

        log = RunLog(log_dir, force=force)
    if quiet:
        result = workflow.run(prep, out=out_path, checkpoint=checkpoint, force=force, log=log, trainer=trainer)
    else:
        result = _train_with_progress(prep, out_path, checkpoint, force, log, trainer)
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/] {_escape(warning)}")
    if quiet:
        out.print(str(out_path))
    else:
        _summary(result)
    if result.interrupted:
        err.print(
            f"[yellow]interrupted[/]: saved the model after epoch {len(result.history)}, the last complete "
            f"one, to {_escape(str(out_path))}"
        )
        raise typer.Exit(_interrupt_code())


def _interrupt_code() -> int:
    """130 for Ctrl-C, 143 for SIGTERM: the exit code of a command stopped by that signal."""
    from ..files import stopped_by

    return 128 + (stopped_by() or signal.SIGINT)


def _train_with_progress(
    prep: Any, out_path: Path, checkpoint: bool, force: bool, log: Any = None, trainer: Any = None
) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..run import workflow

    if err.width < NARROW:  # a bar cut to a sliver says nothing: the summary comes at the end
        return workflow.run(prep, out=out_path, checkpoint=checkpoint, force=force, log=log, trainer=trainer)
    columns = [
        TextColumn("[bold]training[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    ]
    # The bar appears only once training starts, so an error in the spec or the data
    # is not preceded by an empty bar.
    bar = Progress(*columns, console=err, refresh_per_second=8)
    done = prep.continued.epochs_done if prep.continued else 0  # a resumed run's bar starts where it stopped
    task = bar.add_task("train", total=prep.settings.epochs, completed=done, status="", start=False)

    def progress(epoch: int, train_loss: float, val_loss: float | None, extra: dict[str, float]) -> None:
        if not bar.live.is_started:
            bar.start()
            bar.start_task(task)
        if epoch == 0:
            return
        # The running mean over the epoch, taken while the parameters move: labelled so,
        # because the summary's loss (the final model on the training rows) differs.
        status = f"epoch mean loss {train_loss:.4g}"
        if val_loss is not None:
            status += f"  val {val_loss:.4g}"
        if "accuracy" in extra:
            status += f"  acc {extra['accuracy']:.1%}"
        if "penalty" in extra:
            status += f"  penalty {extra['penalty']:.4g}"
        if "lr" in extra:
            status += f"  lr {extra['lr']:.3g}"
        bar.update(task, completed=epoch, status=status)

    try:
        return workflow.run(
            prep, out=out_path, progress=progress, checkpoint=checkpoint, force=force, log=log, trainer=trainer
        )
    finally:
        if bar.live.is_started:
            bar.stop()


# Below this many columns a table is cut into unreadable slivers: plain lines instead.
NARROW = 60


def _table(*args: Any, **kwargs: Any) -> "Table":
    """A rich Table (imported here: `predict` and `--help` print none)."""
    from rich.table import Table

    return Table(*args, **kwargs)


def _print_table(t: "Table") -> None:
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


MAX_HINTED_INPUTS = 8  # inputs named one by one in the hint after training


def _summary(result: Any) -> None:
    from ..outputs.textplot import text_curve

    rec = result.record
    hist = rec.history
    if hist.train:
        # Narrowed to the terminal, or one line saying why it is left out (a wrapped chart is garbage).
        out.print(
            "\n".join(text_curve(hist.train, hist.validation or None, width=60, height=8, max_width=out.width)),
            soft_wrap=True,
        )
    t = _table(title=f"trained {_escape(rec.name)}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row(
        "epochs",
        f"{len(hist.train)}"
        + (" (stopped early)" if hist.stopped_early else "")
        + (" (interrupted)" if result.interrupted else ""),
    )
    # Losses and metrics of the final model (what `eval` reports), not the running mean of
    # the last epoch, which was taken while the parameters were still moving.
    for part, m in rec.metrics.items():
        t.add_row(f"{'training' if part == 'train' else part} loss of the final model", f"{m['loss']:.6g}")
        for key in ("accuracy", "r2", "mae"):
            if key in m and not (isinstance(m[key], float) and math.isnan(m[key])):
                value = f"{m[key]:.1%}" if key == "accuracy" else f"{m[key]:.4g}"
                t.add_row(f"{part} {key}", value)
    if hist.penalty:
        t.add_row("final penalty", f"{hist.penalty[-1]:.6g} (apart from the loss)")
    if hist.learning_rates:
        t.add_row("learning rate", f"{hist.learning_rates[0]:.4g} -> {hist.learning_rates[-1]:.4g}")
    t.add_row("parameters", str(result.parameter_count))
    t.add_row("nodes", str(result.node_count))
    t.add_row(
        "data",
        f"{_escape(rec.data.source)} ({rec.data.train_rows} training rows"
        + (f", {rec.data.validation_rows} validation" if rec.data.validation_rows else "")
        + ")",
    )
    t.add_row("time", f"{result.seconds:.2f} s")
    t.add_row("model written to", _escape(str(result.out)))
    _print_table(t)
    if len(rec.inputs) <= MAX_HINTED_INPUTS:
        values = " ".join(f"{n}=..." for n in rec.inputs)
    else:  # 64 inputs typed on a command line are no hint: a CSV of them is
        values = f"--data FILE.csv   (a CSV with the {len(rec.inputs)} input columns)"
    out.print(
        f"next: treegrad predict {_escape(str(result.out))} {_escape(values)}"
        + f"   |   treegrad show {_escape(str(result.out))}"
    )


# ----------------------------------------------------------------- sweep


@app.command()
def sweep(
    spec: Annotated[Path, typer.Argument(help="The model spec file (YAML or JSON).", metavar="SPEC")],
    grid: Annotated[
        list[str] | None,
        typer.Option(
            "--grid", "-g", help="KEY=V1,V2,...: values of a spec key, named as --set names it (repeat for more keys)."
        ),
    ] = None,
    seeds: Annotated[
        int | None, typer.Option("--seeds", min=1, help="Train each combination with seeds 0..N-1.")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Processes training in parallel.")] = 1,
    data: Annotated[
        str | None, typer.Option("--data", "-d", help="A built-in dataset (NAME or NAME:N) or a CSV file.")
    ] = None,
    target: Annotated[str | None, typer.Option("--target", help="The CSV column to learn.")] = None,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Where to write every run (default: NAME.sweep.csv).")
    ] = None,
    best_out: Annotated[Path | None, typer.Option("--best-out", help="Save the best run's model here.")] = None,
    search: Annotated[
        str, typer.Option("--search", help="grid (every combination) or optuna (--trials of them, chosen by Optuna).")
    ] = "grid",
    trials: Annotated[int, typer.Option("--trials", min=1, help="With --search optuna: combinations to try.")] = 20,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage", help="With --search optuna: a study database shared by several machines (sqlite:///x.db)."
        ),
    ] = None,
    study: Annotated[str | None, typer.Option("--study", help="With --search optuna: the study's name.")] = None,
    force: Force = False,
) -> None:
    """Train a spec under every combination of settings x seeds and rank the combinations."""
    from ..files import SWEEP, check_output, write_atomic
    from ..run import sweep as sweeping
    from ..run.modelfile import output_kind
    from ..spec.models import load_spec

    if search not in ("grid", "optuna"):
        raise typer.BadParameter(f"--search is grid or optuna, not {search!r}")
    name = load_spec(spec).name or spec.stem
    csv_path = csv_path or Path(f"{name}.sweep.csv")
    check_output(csv_path, force=force, kind=SWEEP, option="--csv")
    if best_out is not None:
        check_output(best_out, force=force, kind=output_kind(name), option="--best-out")
    with _setting_usage("--grid"):
        g = sweeping.parse_grid(grid or [])

    def progress(done: int, total: int, r: Any) -> None:
        what = f"failed: {_escape(r.error)}" if r.error else f"loss {r.loss:.4g}"
        values = ", ".join(f"{k}={sweeping.cell(v)}" for k, v in zip(g.names(), r.values))
        err.print(f"[dim]{done}/{total}[/] {_escape(values) or 'spec'} seed {r.seed}: {what}")

    # Every value of the grid is checked before the first run (sweep.plan); a run's own failure
    # is a row of the leaderboard, so a SettingError here is always the options' fault.
    with _setting_usage("--grid"):
        if search == "optuna":
            if storage is not None and study is None:
                study = name
            result = sweeping.optuna_search(
                spec,
                g,
                seeds,
                trials,
                storage=storage,
                study_name=study,
                workers=workers,
                data=data,
                target=target,
                on_result=progress,
            )
        else:
            result = sweeping.sweep(spec, g, seeds, workers=workers, data=data, target=target, on_result=progress)
    _leaderboard(result)
    write_atomic(csv_path, sweeping.runs_csv(result), force=force, kind=SWEEP, option="--csv")
    err.print(f"wrote {len(result.runs)} runs to {_escape(str(csv_path))}")
    best = result.best
    if best_out is not None and best is not None:
        write_atomic(best_out, sweeping.saved_as(best, best_out) + "\n", force=force)
        what = f"seed {best.seed}, {result.loss_kind} loss {best.loss:.6g}"
        err.print(f"saved the best run ({what}) to {_escape(str(best_out))}")


@contextlib.contextmanager
def _setting_usage(option: str) -> Iterator[None]:
    """A SettingError (a bad KEY=VALUE given to `option`) as the usage error it is: exit 2, placed at the option."""
    from ..spec.settings import SettingError

    try:
        yield
    except SettingError as e:
        raise typer.BadParameter(str(e).removeprefix(f"{option}: "), param_hint=f"'{option}'") from None


def _leaderboard(result: Any) -> None:
    from ..run.sweep import cell

    def pm(mean: float, sd: float, fmt: str) -> str:
        if math.isnan(mean):
            return "-"
        return format(mean, fmt) + ("" if math.isnan(sd) else f" ± {format(sd, fmt)}")

    t = _table(title=f"leaderboard ({result.loss_kind} loss, lower is better)", title_justify="left")
    t.add_column("#", justify="right")
    for name in result.grid.names():
        t.add_column(_escape(name.removeprefix("training.")))
    for head in ("runs", f"{result.loss_kind} loss", result.metric_name, "formula", "time", "dead", "failed"):
        t.add_column(head, justify="right")
    for rank, row in enumerate(result.board, 1):
        metric_fmt = ".2%" if result.metric_name == "accuracy" else ".4g"
        t.add_row(
            str(rank),
            *[_escape(cell(v)) for v in row.values],
            str(row.runs),
            "failed" if math.isinf(row.loss_mean) else pm(row.loss_mean, row.loss_sd, ".4g"),
            pm(row.metric_mean, row.metric_sd, metric_fmt),
            "-" if math.isnan(row.formula_length) else f"{row.formula_length:.0f} chars",
            "-" if math.isnan(row.seconds) else f"{row.seconds:.2f} s",
            f"{row.died}/{row.runs}",
            f"{row.failed}/{row.runs}",
        )
    _print_table(t)


# ----------------------------------------------------------------- predict, eval, show


def parse_values(inputs: list[str], values: Sequence[str], rec: Any = None) -> list[float]:
    """Values typed after `predict MODEL`, in input order or all as name=value, as one row.

    Named, a column the model's record (`rec`) one-hot encodes takes its text (`island=Dream`,
    for the inputs island_Biscoe, island_Dream, ...), and a renamed column its name in the CSV."""
    named = [v for v in values if "=" in v]
    if named and len(named) != len(values):
        raise DataError("give the values either all in input order or all as name=value, not mixed")
    row: dict[str, float] = {}
    encodings: dict[str, dict[str, str]] = dict(rec.encodings or {}) if rec is not None else {}
    renamed: dict[str, str] = dict(rec.renamed or {}) if rec is not None else {}
    if named:
        for item in values:
            name, _, text = item.partition("=")
            name = name.strip()
            if name in encodings:  # a text column, one-hot: its value sets its inputs to 1 and 0
                code, value = encodings[name], text.strip()
                if value not in code:
                    raise DataError(
                        f"the value for '{name}' is '{clip(escaped(value))}', not one the model was trained on "
                        f"({listed(list(code))})"
                    )
                for v, input_name in code.items():
                    row[input_name] = 1.0 if v == value else 0.0
                continue
            name = renamed.get(name, name)
            if name not in inputs:
                raise DataError(
                    f"unknown input '{name}'{did_you_mean(name, inputs)} The model's inputs are "
                    f"{listed(inputs)}{_all_listed(inputs)}"
                )
            if name in row:
                raise DataError(f"input '{name}' is given twice")
            row[name] = _number(text, name)
        missing = [n for n in inputs if n not in row]
        if missing:
            raise DataError(
                f"missing value(s) for {listed(missing)}; the model's inputs are {listed(inputs)}{_all_listed(inputs)}"
            )
        return [row[n] for n in inputs]
    if len(values) != len(inputs):
        example = (
            "treegrad predict MODEL.json " + " ".join(f"{n}=..." for n in inputs)
            if len(inputs) <= MAX_HINTED_INPUTS
            else "treegrad predict MODEL.json --data FILE.csv, a CSV with these columns"
        )
        raise DataError(
            f"the model takes {len(inputs)} value(s), for {listed(inputs)}; got {len(values)}. "
            f"Example: {example}{_all_listed(inputs)}"
        )
    return [_number(v, n) for v, n in zip(values, inputs)]


def _all_listed(inputs: Sequence[str]) -> str:
    """Where to see all of a model's inputs, after a hint that lists only some (errors.listed)."""
    return "" if len(inputs) <= MAX_LISTED else '; the model file lists all the inputs under "inputs"'


def _one_value_per_input(inputs: Sequence[str]) -> typer.BadParameter:
    """The usage error of predict and explain given no values."""
    return typer.BadParameter(f"give one value per input ({listed(inputs)}), or --data FILE.csv{_all_listed(inputs)}")


def _number(text: str, name: str) -> float:
    from ..data.table import number

    v = number(text.strip())
    if v is None:
        raise DataError(f"the value for '{name}' is {text!r}, not a number")
    if not math.isfinite(v):
        raise DataError(f"the value for '{name}' is {text}: give a finite number")
    return v


# Unknown options pass through as values, so that `predict MODEL -40` is the value -40
# rather than "No such option: -4".
@app.command(context_settings={"ignore_unknown_options": True})
def predict(
    model: ModelFile,
    values: Annotated[
        list[str] | None,
        typer.Argument(help="One sample: values in input order, or name=value.", metavar="VALUES"),
    ] = None,
    data: Annotated[
        str | None, typer.Option("--data", "-d", help="Predict every row of a CSV file (or built-in dataset).")
    ] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", "-o", parser=_out_path, help="Write the CSV with a prediction column here.")
    ] = None,
    as_json: AsJson = False,
    force: Force = False,
) -> None:
    """Predict with a saved model: one sample from the command line, or every row of a CSV."""
    from ..run import workflow
    from ..run.datasource import model_views
    from ..run.modelfile import load

    loaded = load(model)
    rec = loaded.record
    if values and data is not None:
        raise typer.BadParameter("give either VALUES or --data, not both")
    if data is not None:
        from ..data.table import input_rows, to_csv

        raw, table = model_views(loaded.record, data)
        rows = input_rows(table, list(rec.inputs))
        _range_warnings(rec, rows, table.place)
        results = workflow.predict(loaded, rows, table.place)
        if as_json:
            out.print_json(_json(results))
            return
        _finite_answers(results, table.place)
        text = to_csv(workflow.with_predictions(raw, results))  # beside the user's own columns
        if out_path is not None:
            from ..files import PREDICTIONS, write_atomic

            write_atomic(out_path, text, force=force, kind=PREDICTIONS, option="--out")
            err.print(f"wrote {len(results)} predictions to {_escape(str(out_path))}")
        else:
            sys.stdout.write(text)
        return
    if not values:
        raise _one_value_per_input(rec.inputs)
    row = parse_values(list(rec.inputs), values, rec)
    _range_warnings(rec, [row])
    result = workflow.predict(loaded, [row])[0]
    if as_json:
        out.print_json(_json([result]))
        return
    _finite_answers([result], lambda i: "these inputs")
    if "label" in result:
        out.print(f"{_escape(result['label'])}  (probability {result['probability']:.4f})")
    else:
        out.print(f"{result['prediction']:.6g}")


def _range_warnings(record: Any, rows: list[list[float]], where: Callable[[int], str] | None = None) -> None:
    """Warn on stderr about inputs far outside the ranges seen in training (see provenance.py)."""
    from ..run.provenance import range_warnings

    for warning in range_warnings(record.input_ranges, list(record.inputs), rows, where):
        err.print(f"[yellow]warning:[/] {_escape(warning)}")


def _table_range_warnings(record: Any, table: Any, also: Sequence[str | None] = ()) -> None:
    """_range_warnings over the rows of a table that a command has read, each named by its line in
    the file: a row with an empty cell in an input or in the columns `also` (which `missing: drop`
    left out) is left out here too."""
    from ..data.columns import drop_missing
    from ..data.table import input_rows

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


def _metric(value: float, as_percent: bool = False) -> str:
    """A metric as printed; an undefined one (R² of a constant target) says so."""
    if math.isnan(value):
        return "undefined (the target is constant)"
    return f"{value:.2%}" if as_percent else f"{value:.6g}"


def _json(value: Any) -> str:
    """JSON for --json. JSON has no NaN or infinity: an undefined metric (R² of a constant
    column) or an overflowing prediction is null, so that any JSON reader can read it."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(value), allow_nan=False)


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
    from ..run import workflow
    from ..run.datasource import model_table
    from ..run.modelfile import load
    from ..run.tasks import class_labels

    loaded = load(model)
    table = model_table(loaded.record, data)
    m = workflow.evaluate(loaded, table, target)
    # After evaluate has read the cells as numbers; warned about are the rows it kept.
    _table_range_warnings(
        loaded.record, table, (target or loaded.record.data.target, loaded.record.training.weight_column)
    )
    bad = [k for k in ("loss", "mse", "mae", "r2") if k in m and math.isinf(m[k]) or k == "loss" and math.isnan(m[k])]
    if bad:
        raise TreegradError(
            f"the model cannot give a finite answer on {table.source} ({', '.join(bad)} not finite): "
            "the data is too far from what it was trained on, or its parameters too large"
        )
    if as_json:
        out.print_json(_json(m))
        return
    t = _table(
        title=f"{_escape(loaded.record.name)} on {_escape(data or loaded.record.data.source)}",
        show_header=False,
        title_justify="left",
    )
    t.add_column(style="bold")
    t.add_column()
    t.add_row("rows", str(m["rows"]))
    t.add_row(f"loss ({loaded.record.loss})", _metric(m["loss"]))
    if "weighted_loss" in m:
        t.add_row("weighted loss", _metric(m["weighted_loss"]))
    for key in ("accuracy", "weighted_accuracy", "mse", "mae", "r2"):
        if key in m:
            t.add_row(key.replace("_", " "), _metric(m[key], "accuracy" in key))
    _print_table(t)
    if "confusion" in m:
        labels = class_labels(loaded.record.task, loaded.record.classes, len(m["confusion"])) or []
        c = _table(title="confusion (rows: true, columns: predicted)", title_justify="left")
        c.add_column("")
        for lab in labels:
            c.add_column(_escape(lab), justify="right")
        for head in ("precision", "recall", "F1"):
            c.add_column(head, justify="right", style="dim")
        per_class = m.get("per_class") or [{}] * len(labels)
        for lab, row, pc in zip(labels, m["confusion"], per_class):
            scores = ["-" if math.isnan(pc.get(k, math.nan)) else f"{pc[k]:.3f}" for k in ("precision", "recall", "f1")]
            c.add_row(_escape(lab), *[str(v) for v in row], *scores)
        _print_table(c)


@app.command()
def show(
    model: ModelOrSpec,
    format: Annotated[
        str,
        typer.Option("--format", "-f", help="text, latex, tree, python (a standalone module), dot (Graphviz) or json."),
    ] = "text",
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
    from ..run.modelfile import open_model

    if format in ("python", "dot", "json"):
        from ..outputs.export import render

        text = render(open_model(model), format, precision)
        assert isinstance(text, str)
        sys.stdout.write(text)
        return
    root = open_model(model).root
    if simplify:
        from ..outputs.export import simplified

        if format not in ("text", "latex"):
            raise typer.BadParameter("--simplify works with --format text or latex", param_hint="--simplify")
        out.print(_escape(simplified(root, precision=precision, format=format)))
        return
    from ..core.printers import FORMATS, full_formula_hint, funcify

    if format == "tree":
        tree, drawn, lines = _tree(root, precision, None if full else MAX_SHOWN_FORMULA)
        out.print(tree)
        if drawn < lines:
            err.print(
                f"(the tree has {lines:,} lines; the first {drawn:,} ({MAX_SHOWN_FORMULA:,} characters) are shown: "
                f"{_escape(full_formula_hint(str(model), format))})"
            )
        return

    if format not in FORMATS:
        raise typer.BadParameter(
            f"unknown format '{format}'; use one of {', '.join(FORMATS)}, tree, dot, json", param_hint="--format"
        )
    text = funcify(root, precision=precision, format=format)
    if len(text) > MAX_SHOWN_FORMULA and not full:
        cut = text.rfind(" ", 0, MAX_SHOWN_FORMULA)
        out.print(_escape(text[: cut if cut > 0 else MAX_SHOWN_FORMULA]) + " ...")
        err.print(
            f"(the formula is {len(text):,} characters; the first {MAX_SHOWN_FORMULA:,} are shown: "
            f"{_escape(full_formula_hint(str(model), format))})"
        )
        return
    out.print(_escape(text))


def _tree(root: Any, precision: int, limit: int | None = None) -> tuple[Any, int, int]:
    """The node graph as a rich Tree: children in argument order, a node used twice drawn in full
    once (where it is met first) and named by its number elsewhere. With `limit`, lines are drawn
    in the order they print until their text reaches `limit` characters, then `...`.
    Returns (the tree, lines drawn, lines the whole tree has)."""
    from rich.text import Text
    from rich.tree import Tree

    from ..core.nodes import Constant, Input, Output, Parameter
    from ..core.printers import number

    g = root.compiled_graph
    uses: dict[int, int] = {}
    for n in g.order:
        for c in n.children:
            uses[id(c)] = uses.get(id(c), 0) + 1

    def label(n: Any) -> str:
        if isinstance(n, Input):
            return f"[green]{_escape(n.name or '')}[/]"
        if isinstance(n, Parameter):
            return f"[cyan]{_escape(n.name or '')} = {number(n.value, precision)}[/]"
        if isinstance(n, Constant):
            return number(n.value, precision)
        if isinstance(n, Output):
            return f"[bold]{n.kind}[/]"
        return f"[bold]{n.op.name}[/]"

    names = {id(n): f"#{i}" for i, n in enumerate(g.order)}
    top = Tree(label(g.output))
    size = len(Text.from_markup(label(g.output)).plain) + 1  # characters printed so far, newlines included
    drawn = lines = 1
    cut = False
    shown: set[int] = set()
    # Preorder, iteratively (a deep chain must not recurse): each entry is a node, the branch it
    # hangs from and its depth. Once the limit is reached, lines are only counted.
    stack: list[tuple[Any, Any, int]] = [(c, top, 1) for c in reversed(g.output.children)]
    while stack:
        node, parent, depth = stack.pop()
        lines += 1
        text = label(node)
        expand = bool(node.children)
        if uses.get(id(node), 0) > 1 and node.children:
            text += f" [dim]{names[id(node)]}[/]"
            if id(node) in shown:
                text += " [dim](shared: drawn once, elsewhere in this tree)[/]"
                expand = False
            shown.add(id(node))
        branch = None
        if parent is not None and not cut:
            width = 4 * depth + len(Text.from_markup(text).plain) + 1  # rich's guides are 4 wide
            if limit is not None and size + width > limit:
                parent.add("[dim]...[/]")
                cut = True
            else:
                size += width
                drawn += 1
                branch = parent.add(text)
        if expand:
            stack.extend((c, branch, depth + 1) for c in reversed(node.children))
    return top, drawn, lines


@app.command()
def card(
    model: ModelFile,
    out_path: Annotated[
        Path | None,
        typer.Option("--out", "-o", parser=_out_path, help="Write the card to this file (default: print it)."),
    ] = None,
    force: Force = False,
) -> None:
    """Print a Markdown model card: task, inputs, formula, data, metrics, training, provenance."""
    from ..outputs.card import model_card
    from ..run.modelfile import load

    text = model_card(load(model), str(model))
    if out_path is None:
        sys.stdout.write(text)
        return
    from ..files import CARD, write_atomic

    write_atomic(out_path, text, force=force, kind=CARD)
    err.print(f"wrote the model card to {_escape(str(out_path))}")


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
        log=None if as_json else (lambda line: err.print(f"[dim]{_escape(line)}[/]")),
    )
    chosen = result.candidates[result.chosen]
    save(out_path, chosen.record, force=force)
    paths = save_front(result, front, out_path.name.split(".")[0], force=force) if front is not None else []
    if as_json:
        doc = result.as_dict()
        doc["formula"] = funcify(chosen.root, precision=precision)
        doc["written"] = str(out_path)
        doc["front"] = [str(p) for p in paths]
        out.print_json(_json(doc))
        return
    t = _table(title=f"{_escape(loaded.record.name)}: shorter formulas and what they cost", title_justify="left")
    for name in ("#", "", "terms", "nodes", "params", "train loss", "val loss", "metric", "step"):
        t.add_column(name, justify="left" if name in ("", "step") else "right")
    regression = loaded.record.task == "regression"
    for k, c in enumerate(result.candidates):
        m = c.validation or c.train
        metric = f"R² {m['r2']:.4f}" if regression else f"acc {m['accuracy']:.1%}"
        t.add_row(
            str(k),
            "[bold green]→[/]" if k == result.chosen else "",
            str(c.terms),
            str(c.nodes),
            str(c.parameters),
            f"{c.train['loss']:.4g}",
            f"{c.validation['loss']:.4g}" if c.validation else "-",
            metric,
            _escape(c.step),
        )
    out.print(t)
    for note in result.notes:
        err.print(f"[yellow]note:[/] {_escape(note)}")
    out.print(f"chosen by {_escape(result.rule)}: #{result.chosen}")
    out.print(_escape(funcify(chosen.root, precision=precision)))
    err.print(f"wrote the chosen model to {_escape(str(out_path))}")
    if paths:
        err.print(f"wrote the {len(paths)} models of the table to {_escape(str(front))}")


# ----------------------------------------------------------------- explain


@app.command(context_settings={"ignore_unknown_options": True})
def explain(
    model: ModelFile,
    values: Annotated[
        list[str] | None,
        typer.Argument(help="One sample: values in input order, or name=value.", metavar="VALUES"),
    ] = None,
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
    from ..interpret.explain import explain_data, explain_model
    from ..run.modelfile import load

    if values and data:
        raise typer.BadParameter("give either VALUES (one sample) or --data (every row), not both")
    if plot_path is not None and not data:
        raise typer.BadParameter("--plot draws the ranking of --data", param_hint="--plot")
    if plot_path is not None:
        from ..outputs.plotting import plot_format

        plot_format(plot_path)
    loaded = load(model)
    rec = loaded.record
    if data:
        from ..run.datasource import model_table

        table = model_table(rec, data)
        ranking = explain_data(loaded, data, baseline=baseline, class_label=class_label, table=table)
        _table_range_warnings(rec, table)  # after explain_data has read its cells as numbers
        if plot_path is not None:
            from ..outputs.plotting import importance_chart

            names, means = [n for n, _ in ranking.ranked], [v for _, v in ranking.ranked]
            importance_chart(names, means, f"{rec.name}: {ranking.explained}", plot_path, force=force)
        if as_json:
            out.print_json(_json(ranking.as_dict()))
            return
        top = max((v for _, v in ranking.ranked), default=0.0) or 1.0
        t = _table(
            title=f"{_escape(rec.name)}: mean |contribution| to the {_escape(ranking.explained)} over "
            f"{ranking.rows} rows of {_escape(data)} (baseline {baseline})",
            title_justify="left",
        )
        for name, justify in (("#", "right"), ("input", "left"), ("mean |contribution|", "right"), ("", "left")):
            t.add_column(name, justify=justify)  # type: ignore[arg-type]
        for k, (name, v) in enumerate(ranking.ranked, 1):
            t.add_row(str(k), _escape(name), f"{v:.6g}", "█" * round(20 * v / top))
        _print_table(t)
        out.print(
            f"method: {', '.join(ranking.methods)}; largest completeness error {ranking.worst_completeness_error:.2g}"
        )
        if plot_path is not None:
            err.print(f"wrote the bar chart to {_escape(str(plot_path))}")
        return
    if not values:
        raise _one_value_per_input(rec.inputs)
    row = parse_values(list(rec.inputs), values, rec)
    _range_warnings(rec, [row])
    e = explain_model(loaded, row, baseline=baseline, class_label=class_label)
    if as_json:
        out.print_json(_json(e.as_dict()))
        return
    t = _table(title=f"{_escape(rec.name)}: why the {_escape(e.explained)} is {e.output:.6g}", title_justify="left")
    for name in ("input", "value", "baseline", "∂f/∂x", "gradient × (x − b)", "contribution"):
        t.add_column(name, justify="left" if name == "input" else "right")
    for i, name in enumerate(e.inputs):
        t.add_row(
            _escape(name),
            f"{e.values[i]:.6g}",
            f"{e.baseline[i]:.6g}",
            f"{e.gradient[i]:.6g}",
            f"{e.gradient_x_input[i]:.6g}",
            f"{e.contributions[i]:.6g}",
        )
    _print_table(t)
    out.print(
        f"f(x) = {e.output:.10g}, f(baseline) = {e.baseline_output:.10g} (baseline: {baseline}); "
        f"the contributions add up to f(x) − f(baseline) within {e.completeness_error:.2g} "
        f"({e.method}"
        + (f", {e.intervals} quadrature interval{'s' if e.intervals > 1 else ''})" if e.intervals else ")")
    )


# ----------------------------------------------------------------- check, datasets, schema


@app.command()
def check(
    spec: Annotated[Path, typer.Argument(help="The model spec file to validate.", metavar="SPEC")],
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", help="Check the gradients at rows of this data (default: the spec's data:)."),
    ] = None,
) -> None:
    """Validate a spec, summarise it, and check its gradients numerically."""
    from ..engine.gradcheck import TOLERANCE, gradient_check
    from ..run import workflow
    from ..spec.build import loss_name

    setup = workflow.check_setup(spec, data)
    spec_obj, root, rows = setup.spec, setup.root, setup.rows
    g = root.compiled_graph
    result = gradient_check(root, rows=rows)
    t = _table(title=f"{_escape(str(spec))} is valid", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("inputs", _escape(", ".join(g.input_names)))
    t.add_row("output", "softmax" if g.is_softmax else (f"list of {len(g.elements)}" if g.is_list else "one value"))
    t.add_row("loss", loss_name(spec_obj))
    t.add_row("parameters", str(len(g.params)))
    t.add_row("nodes", str(len(g.order)))
    at = "rows of the data" if rows else "random inputs in [-1, 1]"
    skipped = f", {result.skipped} skipped where the model cannot be evaluated" if result.skipped else ""
    which = (
        f"{result.params} of {result.total} parameter gradients (a seeded sample) and 1 random direction over all"
        if result.sampled
        else f"{result.params} parameter gradients"
    )
    t.add_row(
        "gradient check",
        f"{which} vs finite differences at {result.points} {at}{skipped}: "
        f"max error {result.worst:.2g} relative to the gradient's norm "
        + ("[green]ok[/]" if result.ok else f"[red]MISMATCH[/] (tolerance {TOLERANCE:g})"),
    )
    _print_table(t)
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def datasets() -> None:
    """List the built-in generated datasets (use as --data NAME or NAME:N)."""
    from ..data.table import GENERATORS

    t = _table(title="built-in datasets (--data NAME, or NAME:N for N samples)", title_justify="left")
    t.add_column("name", style="bold")
    t.add_column("columns")
    t.add_column("kind")
    t.add_column("rows", justify="right")
    t.add_column("description")
    for g in GENERATORS.values():
        t.add_row(g.name, ", ".join(g.columns), g.kind, str(g.default_n), g.description)
    _print_table(t)


@app.command()
def init(
    data: Annotated[Path, typer.Argument(help="The CSV file to read the header and cells of.")],
    out_path: Annotated[Path, typer.Option("--out", "-o", parser=_out_path, help="The spec file to write (.yaml).")],
    target: Annotated[str | None, typer.Option("--target", help="The column to learn (default: the last).")] = None,
    model: Annotated[str, typer.Option("--model", help="linear (no hidden layer) or mlp (one hidden layer).")] = "mlp",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing spec file.")] = False,
) -> None:
    """Write a commented spec for a CSV file that trains with no edits."""
    from ..spec.scaffold import init_spec

    found = init_spec(data, out_path, target=target, model=model, force=force)
    for warning in found.warnings:
        err.print(f"[yellow]warning:[/] {_escape(warning)}")
    what = {"regression": "a regression", "binary": "a two-class classifier"}.get(found.kind, "a classifier")
    err.print(
        f"wrote {_escape(str(out_path))}: {what} of '{_escape(found.target)}'; train it with "
        f"treegrad train {_escape(str(out_path))}"
    )


@app.command()
def schema() -> None:
    """Print the JSON Schema of spec files (for editor validation and completion)."""
    from ..spec.models import spec_schema

    sys.stdout.write(json.dumps(spec_schema(), indent=2) + "\n")


def _parsed(parse: Any, *rest: Any) -> Any:
    """A Typer callback from a parser that raises ValueError with a message."""

    def callback(value: str | None) -> Any:
        if value is None:
            return None
        try:
            return parse(value, *rest)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from None

    return callback


@app.command()
def bench(
    quick: Annotated[
        bool, typer.Option("--quick", help="Smoke test: 1 epoch, depths 2 and 4 (not a measurement).")
    ] = False,
    only: Annotated[
        str | None, typer.Option("--only", metavar="W1,W2a,...,W6", help="Workloads to run (default: all).")
    ] = None,
    peers: Annotated[
        str | None,
        typer.Option("--peers", metavar="treegrad,python,...", help="Peers to run (default: every installed one)."),
    ] = None,
    depths: Annotated[
        str | None, typer.Option("--depths", metavar="2,4,8", help="W3 chain depths (default 2,4,...,4096).")
    ] = None,
    reps: Annotated[int, typer.Option("--reps", min=1, help="Interleaved rounds; the table shows medians.")] = 1,
) -> None:
    """Benchmark training speed side by side with hand-written Python, NumPy, and micrograd/PyTorch when installed.

    The workloads and the recipe they share: python -m pydoc treegrad.bench
    """
    from ..bench import measuring as b
    from ..bench.report import table

    results, notes = b.run(
        _parsed(b.parse_names, b.WORKLOADS, "workload")(only) or b.WORKLOADS,
        _parsed(b.parse_names, b.PEERS, "peer")(peers) or b.PEERS,
        quick=quick,
        depths=_parsed(b.parse_depths)(depths),
        reps=reps,
        log=lambda line: err.print(_escape(line)),
    )
    if quick:
        notes.append("--quick is a smoke test (one short training each): its ratios are not measurements")
    out.print(_escape(table(results, notes, reps)))


# ----------------------------------------------------------------- export, plot, trace


@app.command("export")
def export_(
    model: ModelOrSpec,
    format: Annotated[
        str, typer.Option("--format", "-f", help="python, torch (a PyTorch nn.Module), onnx, latex, dot or json.")
    ] = "python",
    out_path: Annotated[
        Path | None,
        typer.Option("--out", "-o", parser=_out_path, help="The file to write (text formats print without it)."),
    ] = None,
    precision: Precision = 4,
    force: Force = False,
) -> None:
    """Export a model: a dependency-free Python module, a PyTorch module, ONNX, LaTeX, Graphviz DOT or JSON."""
    from ..files import TORCH, write_atomic
    from ..outputs.export import FORMATS, export, render
    from ..run.modelfile import open_model

    if format not in (*FORMATS, "torch"):
        raise typer.BadParameter(
            f"unknown format '{format}'; use one of {', '.join(FORMATS)}, torch", param_hint="--format"
        )
    if out_path is None and format == "onnx":
        raise typer.BadParameter(
            "an ONNX model is binary: give the file to write, e.g. -o model.onnx", param_hint="--out"
        )
    exportable = open_model(model)
    if format == "torch":  # torch.bridge builds on export, so export does not call it
        from ..torch.bridge import module_source

        source = module_source(exportable)
        if out_path is None:
            sys.stdout.write(source)
            return
        write_atomic(out_path, source, force=force, kind=TORCH)
    elif out_path is None:
        text = render(exportable, format, precision)
        assert isinstance(text, str)
        sys.stdout.write(text)
        return
    else:
        export(exportable, format, out_path, precision, force=force)
    err.print(f"wrote {format} to {_escape(str(out_path))}")


@app.command("import-params")
def import_params(
    model: ModelFile,
    state: Annotated[
        Path,
        typer.Option(
            "--from", help="A state dict saved with torch.save from the module `export --format torch` wrote."
        ),
    ],
    out_path: Annotated[Path, typer.Option("--out", "-o", parser=_out_path, help="The model file to write.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace --out even if it holds another model or is not a model file.")
    ] = False,
) -> None:
    """Load parameters trained in PyTorch back into a model file, checked by name and shape."""
    from ..torch.bridge import import_params as load_params

    values = load_params(model, state, out_path, force=force)
    err.print(f"wrote {len(values)} parameter(s) to {_escape(str(out_path))}")


@app.command()
def plot(
    model: ModelFile,
    out_path: Annotated[
        Path, typer.Option("--out", "-o", parser=_out_path, help="The image to write: .png, .svg or .pdf.")
    ],
    data: Annotated[
        str | None, typer.Option("--data", "-d", help="Draw these points (default: the data it was trained on).")
    ] = None,
    force: Force = False,
) -> None:
    """Draw the learning curve and, for one or two inputs, the decision boundary or fitted surface."""
    from ..outputs.plotting import load_points, plot_format, plot_model
    from ..run.modelfile import load

    plot_format(out_path)
    loaded = load(model)
    points, notes = load_points(loaded.record, data)
    result = plot_model(loaded.root, loaded.record, points, out_path, force=force)
    for note in notes + result.notes:
        err.print(f"note: {_escape(note)}")
    err.print(f"wrote {' and '.join(result.panels)} to {_escape(str(out_path))}")


@app.command()
def trace(
    model: ModelOrSpec,
    data: Annotated[str | None, typer.Option("--data", "-d", help="A built-in dataset or a CSV file.")] = None,
    steps: Annotated[
        int,
        typer.Option(
            "--steps", "-n", min=1, max=MAX_TRACE_STEPS, help="SGD steps, one per sample, from the first row."
        ),
    ] = 1,
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
    from ..outputs.trace import trace as run_trace
    from ..run import workflow

    if html is not None:
        _write_page(html, model, data, steps, learning_rate, precision, force=force, option="--html")
        return
    setup = workflow.trace_setup(model, data, learning_rate, rows=steps)
    for step in run_trace(
        setup.root,
        setup.inputs,
        setup.targets,
        loss=setup.loss,
        learning_rate=setup.learning_rate,
        steps=steps,
        precision=precision,
    ):
        _render_step(step, setup.loss, setup.learning_rate, precision)


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
    from ..files import PAGE, check_output, write_atomic
    from ..outputs.report import page

    check_output(out_path, force=force, kind=PAGE, option=option)  # now, not after tracing a large model
    text = page(model, data, steps=steps, learning_rate=learning_rate, precision=precision)
    write_atomic(out_path, text, force=force, kind=PAGE, option=option)
    err.print(f"wrote {_escape(str(out_path))} ({len(text.encode('utf-8')) / 1e6:.2f} MB): open it in a browser")


def _num(v: Any, precision: int) -> str:
    from ..core.printers import number

    if isinstance(v, list):
        return "[" + ", ".join(_num(x, precision) for x in v) + "]"
    return number(v, precision) if isinstance(v, float) else _escape(str(v))


def _render_step(step: Any, loss: str, lr: float, precision: int) -> None:
    def cut(s: str, n: int = 48) -> str:
        return _escape(s if len(s) <= n else s[: n - 1] + "…")

    sample = ", ".join(f"{_escape(k)}={_num(v, precision)}" for k, v in step.inputs.items())
    out.print(
        f"\n[bold]step {step.step}[/]: sample {step.sample + 1} ({sample}), target {_num(step.target, precision)}"
    )
    t = _table(title="forward (children first), then backward: dL/dnode from each parent", title_justify="left")
    for name, justify in (
        ("#", "right"),
        ("node", "left"),
        ("computes", "left"),
        ("formula", "left"),
        ("value", "right"),
        ("dL/dnode arriving", "left"),
        ("dL/dnode", "right"),
    ):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    for n in step.nodes:
        arriving = "  ".join(f"from #{p}: {_num(g, precision)}" for p, g in n.arrivals) or (
            "seed from the loss" if n.index == len(step.nodes) - 1 else "-"
        )
        t.add_row(
            str(n.index),
            cut(n.label, 16),
            cut(n.expr),
            cut(n.formula) if n.kind in ("op", "softmax", "output") else "",
            _num(n.value, precision),
            arriving,
            _num(n.grad, precision),
        )
    _print_table(t)
    out.print(f"loss ({loss}) = {_num(step.loss, precision)};  dL/doutput = {_num(step.loss_grad, precision)}")
    p = _table(title=f"update: new = old - {_num(lr, precision)} * gradient", title_justify="left")
    for name in ("parameter", "old", "gradient", "new"):
        p.add_column(name, justify="left" if name == "parameter" else "right")
    for u in step.params:
        p.add_row(_escape(u.name), _num(u.old, precision), _num(u.grad, precision), _num(u.new, precision))
    _print_table(p)


# The command line as run, recorded in the model files `train` writes; set only when treegrad
# runs as a program (not when a test or a script invokes `app`).
_argv: list[str] | None = None


def main() -> None:
    """Console-script entry point."""
    global _argv
    _argv = ["treegrad", *sys.argv[1:]]
    if launched()[1] == 1:
        app(prog_name="treegrad")
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
