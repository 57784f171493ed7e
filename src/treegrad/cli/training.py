"""The commands that train: `train` (a spec, or a saved run continued) and `sweep` (a spec over a grid)."""

# No `from __future__ import annotations` in the cli: Typer reads the commands' annotations on
# every run, and evaluating them from strings cost about 0.1 s of each command's start-up.

import contextlib
import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ..data.parts import WHOLE, launched
from ..run.options import (
    DEFAULT_DEVICE,
    DEFAULT_ENGINE,
    ENGINES,
    OVERRIDES,
    Asked,
    check_train,
    device_help,
    engine_help,
    override_values,
)
from . import program, views
from .program import Force, app, described, file_name, usage_errors
from .render import err, escape, out, warn

# ----------------------------------------------------------------- train's options

Spec = Annotated[
    Path | None, typer.Argument(help="The model spec file (YAML or JSON); none with --resume.", metavar="SPEC")
]
Data = Annotated[str | None, typer.Option("--data", "-d", help="A built-in dataset (NAME or NAME:N) or a CSV file.")]
Target = Annotated[str | None, typer.Option("--target", help="The CSV column to learn.")]
ModelOut = Annotated[
    Path | None,
    typer.Option("--out", "-o", parser=file_name, help="Where to write the model (default: NAME.model.json)."),
]
Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="KEY=VALUE: any spec key by its dotted path, e.g. training.lr_schedule='{type: cosine}', "
        "layers.0.linear=16, inputs=all (a training setting may leave out 'training.'). Repeatable.",
    ),
]
Checkpoint = Annotated[bool, typer.Option("--checkpoint", help="On Ctrl-C, save the model of the last complete epoch.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary; just the model path.")]
TrainForce = Annotated[
    bool, typer.Option("--force", help="Replace --out (and --log-dir's files) even if they hold another model or run.")
]
LogDir = Annotated[
    Path | None,
    typer.Option("--log-dir", help="Write the run here: metrics.csv (a row per epoch) and the resolved spec.yaml."),
]
PrintConfig = Annotated[
    bool, typer.Option("--print-config", help="Print the resolved spec, defaults filled in, and exit; write nothing.")
]
LiveOption = Annotated[
    bool,
    typer.Option(
        "--live",
        help="Serve the report page on 127.0.0.1 while training (its URL, with a random token, is printed once); "
        "it updates each epoch and ends as the report MODEL.html beside the model.",
    ),
]
Engine = Annotated[str, typer.Option("--engine", help=engine_help())]
Device = Annotated[str, typer.Option("--device", help=device_help())]
Resume = Annotated[
    Path | None,
    typer.Option(
        "--resume",
        metavar="MODEL.json",
        help="Continue the run recorded in MODEL.json for --epochs more (default: as many again), bit for "
        "bit as one longer run; writes MODEL.resumed.json unless -o.",
    ),
]
InitFrom = Annotated[
    Path | None,
    typer.Option(
        "--init-from",
        metavar="MODEL.json",
        help="Start from MODEL.json's parameters (matched by name) with a fresh optimizer, on this run's data.",
    ),
]


# ----------------------------------------------------------------- train


def _with_overrides(command: Callable[..., None]) -> Callable[..., None]:
    """`command` with its parameter `overrides` declared as one option per training setting of
    run/options.py OVERRIDES, and called with their values as that dict (None: not given)."""
    signature = inspect.signature(command)
    params = list(signature.parameters.values())
    at = [p.name for p in params].index("overrides")
    assert not {o.field for o in OVERRIDES} & set(signature.parameters), "an override named as another option"
    options = [
        inspect.Parameter(
            o.field,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=None,
            # The setting's description is its help, read only when shown (program.described).
            annotation=Annotated[o.kind | None, typer.Option(*o.declarations, help=f"Overrides training.{o.field}.")],
        )
        for o in OVERRIDES
    ]

    @functools.wraps(command)
    def with_options(**given: Any) -> None:
        command(**{k: v for k, v in given.items() if k not in fields}, overrides=override_values(given))

    fields = {o.field for o in OVERRIDES}
    declared = signature.replace(parameters=[*params[:at], *options, *params[at + 1 :]])
    with_options.__signature__ = declared  # type: ignore[attr-defined]
    with_options.__annotations__ = {p.name: p.annotation for p in declared.parameters.values()}
    return with_options


@app.command(cls=described({o.field: o.help for o in OVERRIDES}))
@_with_overrides
def train(
    ctx: typer.Context,
    spec: Spec = None,
    data: Data = None,
    target: Target = None,
    out_path: ModelOut = None,
    overrides: dict[str, Any] = {},  # noqa: B006 - a placeholder: _with_overrides declares its options
    set_: Sets = None,
    checkpoint: Checkpoint = False,
    quiet: Quiet = False,
    force: TrainForce = False,
    log_dir: LogDir = None,
    print_config: PrintConfig = False,
    engine: Engine = DEFAULT_ENGINE,
    device: Device = DEFAULT_DEVICE,
    resume_from: Resume = None,
    init_from: InitFrom = None,
    live: LiveOption = False,
) -> None:
    """Train a spec on data and save the learned model as JSON (or continue a saved run: --resume)."""
    from ..run.prepare import start

    asked = Asked(
        spec=spec,
        target=target,
        overrides=overrides,
        sets=set_ or [],
        resume=resume_from,
        init_from=init_from,
        engine=engine,
        device=device,
    )
    with usage_errors():
        check_train(asked, launched()[1])
    part = _part(ctx, asked)
    with usage_errors(), views.reading() as reading:
        shown = reading if not quiet and part.rank == 0 else None  # under torchrun rank 0 alone reports
        prep = start(asked, data=data, part=part, command=program.command_line, reading=shown)
    if print_config:
        from ..run.runlog import dump

        if part.rank == 0:  # under torchrun, once
            typer.echo(dump(prep.resolved), nl=False)
        return
    _run(prep, part, out_path or asked.out(prep.name), asked, checkpoint, force, log_dir, quiet, live)


def _part(ctx: typer.Context, asked: Asked) -> Any:
    """This process's part of the data: all of it, or under torchrun with --engine torch its part."""
    if not ENGINES[asked.engine].data_parallel or asked.resume is not None:
        return WHOLE
    from ..torch import trainer as torch_trainer

    # Under torchrun, every process joins the group now and reads its part of the data;
    # the group is left when the command ends.
    return ctx.with_resource(torch_trainer.data_parallel(asked.device))


def _run(
    prep: Any,
    part: Any,
    out_path: Path,
    asked: Asked,
    checkpoint: bool,
    force: bool,
    log_dir: Path | None,
    quiet: bool,
    live: bool = False,
) -> None:
    """Train the prepared run, write the model, and report (rank 0 alone under torchrun)."""
    from ..run.train import run as run_training
    from ..run.values import next_commands

    trainer = None
    if asked.engine == "torch":
        from ..torch import trainer as torch_trainer

        trainer = torch_trainer.trainer(prep.settings, asked.device)
    if trainer is not None and part.rank > 0:
        # Under torchrun every process trains; rank 0 alone writes the model and reports.
        run_training(prep, trainer=trainer)
        return
    log = None
    if log_dir is not None:
        from ..run.runlog import RunLog

        log = RunLog(log_dir, force=force)

    view = _live_view(prep, out_path, force) if live else None

    def run(progress: Any, stage: Any) -> Any:
        return run_training(
            prep,
            out=out_path,
            progress=view.progress_too(progress) if view else progress,
            checkpoint=checkpoint,
            force=force,
            log=log,
            trainer=trainer,
            watch=view.watch if view else None,
            stage=stage,
        )

    done = prep.continued.epochs_done if prep.continued else 0
    with view.serving() if view else contextlib.nullcontext() as url:
        if url:
            err.print(f"live view (this address only, while it trains): {url}")
        result = run(None, None) if quiet else views.with_progress(prep.settings.epochs, done, run)
        if view:
            view.finish(result.out)
            err.print(f"wrote the report {escape(str(view.report))}")
    for warning in result.warnings:
        warn(warning)
    for note in result.notes:
        err.print(escape(note))
    if quiet:
        out.print(str(out_path))
    else:
        views.summary(result, next_commands(result.out, result.record))
    if result.interrupted:
        err.print(
            f"[yellow]interrupted[/]: saved the model after epoch {len(result.history)}, the last complete "
            f"one, to {escape(str(out_path))}"
        )
        raise typer.Exit(program.interrupt_code())


def _live_view(prep: Any, out_path: Path, force: bool) -> Any:
    """The live page of `train --live`, whose final state is the report MODEL.html beside the model."""
    from ..outputs.live import LiveView

    with usage_errors():
        return LiveView(prep, out_path.with_suffix(".html"), force=force)


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
    workers: Annotated[
        int,
        typer.Option("--workers", "-j", min=1, help="Processes training in parallel: at most the runs and the cores."),
    ] = 1,
    oversubscribe: Annotated[
        bool, typer.Option("--oversubscribe", help="Run -j processes (up to 32) even when the machine has fewer cores.")
    ] = False,
    data: Data = None,
    target: Target = None,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Where to write every run (default: NAME.sweep.csv).")
    ] = None,
    best_out: Annotated[Path | None, typer.Option("--best-out", help="Save the best run's model here.")] = None,
    search: Annotated[
        str, typer.Option("--search", help="grid (every combination) or optuna (--trials of them, chosen by Optuna).")
    ] = "grid",
    trials: Annotated[
        int | None, typer.Option("--trials", min=1, help="With --search optuna: combinations to try (default 20).")
    ] = None,
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
    from ..run import search as searching
    from ..run.sweep import parse_grid

    with usage_errors("--grid"):
        g = parse_grid(grid or [])

    def progress(done: int, total: int, r: Any) -> None:
        views.sweep_run(done, total, g.names(), r)

    # Every value of the grid is checked before the first run (sweep.plan); a run's own failure
    # is a row of the leaderboard, so a SettingError here is always the options' fault.
    with usage_errors("--grid"):
        written = searching.sweep_files(
            spec,
            g,
            seeds,
            search=search,
            trials=trials,
            storage=storage,
            study=study,
            workers=workers,
            oversubscribe=oversubscribe,
            data=data,
            target=target,
            csv_path=csv_path,
            best_out=best_out,
            force=force,
            on_result=progress,
            warn=warn,
        )
    result = written.result
    views.leaderboard(result)
    if written.stopped is not None:
        views.sweep_stopped(written)
        raise typer.Exit(program.interrupt_code() if written.stopped == "interrupted" else 1)
    err.print(f"wrote {len(result.runs)} runs to {escape(str(written.csv))}")
    if written.best is not None and result.best is not None:
        what = f"seed {result.best.seed}, {result.loss_kind} loss {result.best.loss:.6g}"
        err.print(f"saved the best run ({what}) to {escape(str(written.best))}")
