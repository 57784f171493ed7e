"""The commands that train: `train` (a spec, or a saved run continued) and `sweep` (a spec over a grid)."""

# No `from __future__ import annotations` in the cli: Typer reads the commands' annotations on
# every run, and evaluating them from strings cost about 0.1 s of each command's start-up.

from pathlib import Path
from typing import Annotated, Any

import typer

from ..data.parts import launched
from . import program, views
from .program import Force, app, file_name, setting_usage
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
Epochs = Annotated[int | None, typer.Option("--epochs", help="Override training.epochs.")]
LearningRate = Annotated[float | None, typer.Option("--learning-rate", "--lr", help="Override training.learning_rate.")]
BatchSize = Annotated[int | None, typer.Option("--batch-size", help="Override training.batch_size.")]
Optimizer = Annotated[str | None, typer.Option("--optimizer", help="Override training.optimizer: sgd, momentum, adam.")]
Seed = Annotated[int | None, typer.Option("--seed", help="Override training.seed.")]
ValidationSplit = Annotated[
    float | None, typer.Option("--validation-split", help="Override training.validation_split.")
]
Normalize = Annotated[bool | None, typer.Option("--normalize/--no-normalize", help="Override training.normalize.")]
L1 = Annotated[float | None, typer.Option("--l1", help="Override training.l1 (L1 penalty on weights).")]
L2 = Annotated[float | None, typer.Option("--l2", help="Override training.l2 (weight decay).")]
ClipNorm = Annotated[
    float | None, typer.Option("--clip-norm", help="Override training.clip_norm (largest gradient norm).")
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
Engine = Annotated[
    str, typer.Option("--engine", help="treegrad (its own engine) or torch (PyTorch; data-parallel under torchrun).")
]
Device = Annotated[str, typer.Option("--device", help="With --engine torch: cpu or cuda.")]
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


@app.command()
def train(
    ctx: typer.Context,
    spec: Spec = None,
    data: Data = None,
    target: Target = None,
    out_path: ModelOut = None,
    epochs: Epochs = None,
    learning_rate: LearningRate = None,
    batch_size: BatchSize = None,
    optimizer: Optimizer = None,
    seed: Seed = None,
    validation_split: ValidationSplit = None,
    normalize: Normalize = None,
    l1: L1 = None,
    l2: L2 = None,
    clip_norm: ClipNorm = None,
    set_: Sets = None,
    checkpoint: Checkpoint = False,
    quiet: Quiet = False,
    force: TrainForce = False,
    log_dir: LogDir = None,
    print_config: PrintConfig = False,
    engine: Engine = "treegrad",
    device: Device = "cpu",
    resume_from: Resume = None,
    init_from: InitFrom = None,
) -> None:
    """Train a spec on data and save the learned model as JSON (or continue a saved run: --resume)."""
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
    _check_options(ctx.params, engine, device, resume_from, spec)
    part = _part(ctx, engine, device, resume_from)
    prep = _prepare(spec, data, target, overrides, set_, resume_from, part)
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
    _run(prep, part, out_path, engine, device, checkpoint, force, log_dir, quiet)


def _check_options(
    given: dict[str, Any], engine: str, device: str, resume_from: Path | None, spec: Path | None
) -> None:
    """Usage errors of train's options: what --resume keeps, the engine and device, torchrun's rules."""
    if resume_from is not None:
        changing = [
            flag
            for flag, key in [
                ("SPEC", "spec"),
                ("--target", "target"),
                ("--learning-rate", "learning_rate"),
                ("--batch-size", "batch_size"),
                ("--optimizer", "optimizer"),
                ("--seed", "seed"),
                ("--validation-split", "validation_split"),
                ("--normalize", "normalize"),
                ("--l1", "l1"),
                ("--l2", "l2"),
                ("--clip-norm", "clip_norm"),
                ("--set", "set_"),
                ("--init-from", "init_from"),
            ]
            if given.get(key) not in (None, [], ())
        ]
        changing += ["--engine"] if engine != "treegrad" else []
        changing += ["--device"] if device != "cpu" else []
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


def _part(ctx: typer.Context, engine: str, device: str, resume_from: Path | None) -> Any:
    """This process's part of the data: all of it, or under torchrun with --engine torch its part."""
    from ..data.parts import WHOLE

    if engine != "torch" or resume_from is not None:
        return WHOLE
    from ..torch import bridge as torch_bridge

    # Under torchrun, every process joins the group now and reads its part of the data;
    # the group is left when the command ends.
    return ctx.with_resource(torch_bridge.data_parallel(device))


def _prepare(
    spec: Path | None,
    data: str | None,
    target: str | None,
    overrides: dict[str, Any],
    set_: list[str] | None,
    resume_from: Path | None,
    part: Any,
) -> Any:
    """The run to train: a recorded one going on (--resume), or a spec's with the options applied."""
    from ..run import workflow
    from ..spec.settings import parse_assignment

    with setting_usage("--set"):
        sets = [(key, values[0]) for key, values in (parse_assignment(item, "--set") for item in set_ or [])]
        if resume_from is not None:
            epochs = overrides["epochs"]
            return workflow.prepare_resume(resume_from, epochs=epochs, data=data, command=program.command_line)
        assert spec is not None
        return workflow.prepare(
            spec, data=data, target=target, overrides=overrides, sets=sets, command=program.command_line, part=part
        )


def _run(
    prep: Any,
    part: Any,
    out_path: Path,
    engine: str,
    device: str,
    checkpoint: bool,
    force: bool,
    log_dir: Path | None,
    quiet: bool,
) -> None:
    """Train the prepared run, write the model, and report (rank 0 alone under torchrun)."""
    from ..run import workflow
    from ..run.values import next_commands

    trainer = None
    if engine == "torch":
        from ..torch import bridge as torch_bridge

        trainer = torch_bridge.trainer(prep.settings, device)
    if trainer is not None and part.rank > 0:
        # Under torchrun every process trains; rank 0 alone writes the model and reports.
        workflow.run(prep, trainer=trainer)
        return
    log = None
    if log_dir is not None:
        from ..run.runlog import RunLog

        log = RunLog(log_dir, force=force)

    def run(progress: Any) -> Any:
        return workflow.run(
            prep, out=out_path, progress=progress, checkpoint=checkpoint, force=force, log=log, trainer=trainer
        )

    done = prep.continued.epochs_done if prep.continued else 0
    result = run(None) if quiet else views.with_progress(prep.settings.epochs, done, run)
    for warning in result.warnings:
        warn(warning)
    if quiet:
        out.print(str(out_path))
    else:
        views.summary(result, next_commands(result.out, result.record.inputs))
    if result.interrupted:
        err.print(
            f"[yellow]interrupted[/]: saved the model after epoch {len(result.history)}, the last complete "
            f"one, to {escape(str(out_path))}"
        )
        raise typer.Exit(program.interrupt_code())


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
    data: Data = None,
    target: Target = None,
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
    with setting_usage("--grid"):
        g = sweeping.parse_grid(grid or [])

    def progress(done: int, total: int, r: Any) -> None:
        views.sweep_run(done, total, g.names(), r)

    # Every value of the grid is checked before the first run (sweep.plan); a run's own failure
    # is a row of the leaderboard, so a SettingError here is always the options' fault.
    with setting_usage("--grid"):
        if search == "optuna":
            result = sweeping.optuna_search(
                spec,
                g,
                seeds,
                trials,
                storage=storage,
                study_name=name if storage is not None and study is None else study,
                workers=workers,
                data=data,
                target=target,
                on_result=progress,
            )
        else:
            result = sweeping.sweep(spec, g, seeds, workers=workers, data=data, target=target, on_result=progress)
    views.leaderboard(result)
    write_atomic(csv_path, sweeping.runs_csv(result), force=force, kind=SWEEP, option="--csv")
    err.print(f"wrote {len(result.runs)} runs to {escape(str(csv_path))}")
    best = result.best
    if best_out is not None and best is not None:
        write_atomic(best_out, sweeping.saved_as(best, best_out) + "\n", force=force)
        what = f"seed {best.seed}, {result.loss_kind} loss {best.loss:.6g}"
        err.print(f"saved the best run ({what}) to {escape(str(best_out))}")
