"""The searches of `treegrad sweep`: every combination (sweep.py), or those Optuna chooses, and the
files written: the runs as CSV, the best run's model.

`optuna_search` hands a sweep's runs to Optuna (an optional dependency): each trial picks one value
per key and trains over the seeds; its study database is storage.py's to check and open.
`sweep_files` is the command: outputs checked first, the search, then the files. A sweep stopped
part way (Ctrl-C, SIGTERM, a worker the system killed, the study database failing) keeps the runs
that finished in its CSV and says so; it claims no best model.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FileError, OptionError, ProcessError, SpecError, StorageError, TrainingError
from .pool import Warn, bounded_workers, check_workers
from .storage import check_url, faults, open_study
from .sweep import Grid, Job, RunResult, SweepResult, cell, plan, run_jobs, runs_csv, saved_as, sweep, sweep_result


def optuna_search(
    spec_path: Path,
    grid: Grid,
    seeds: int | None,
    trials: int,
    *,
    storage: str | None = None,
    study_name: str | None = None,
    workers: int = 1,
    oversubscribe: bool = False,
    data: str | None = None,
    target: str | None = None,
    on_result: Callable[[int, int, RunResult], None] | None = None,
    warn: Warn | None = None,
) -> SweepResult:
    """Let Optuna choose `trials` combinations of the grid's values (its TPE sampler, seeded), each
    trained over the seeds and scored by its mean loss; asked for as many trials as the grid has
    combinations or more, it tries each combination once (Optuna's grid sampler) and says so.
    With `storage` (an RDB URL such as sqlite:///study.db, or a database server several machines
    reach) the study is kept there under `study_name` and continued by every process that runs
    the same command, so several machines search together (storage.py checks it before any run and
    says its faults; `warn` gets its warnings). The result holds this process's trials only."""
    try:
        import optuna
    except ImportError:
        raise SpecError(
            "--search optuna needs Optuna, an optional dependency: pip install 'treegrad[optuna]'"
        ) from None
    check_workers(workers, oversubscribe)
    if storage is not None:
        check_url(storage)  # before any run
    jobs = plan(spec_path, grid, seeds, data, target)  # checks every combination's settings now
    workers = bounded_workers(workers, seeds or 1, oversubscribe, warn)
    by_combo: dict[int, list[Job]] = {}
    for job in jobs:
        by_combo.setdefault(job.combo, []).append(job)
    combos = grid.combinations()
    # Optuna's categorical choices are plain scalars: each value is offered as its text.
    choices = [[cell(v) for v in vals] for vals in grid.values]
    runs: list[RunResult] = []

    def objective(trial: Any) -> float:
        picked = tuple(
            vals[choice.index(trial.suggest_categorical(name, choice))]
            for name, vals, choice in zip(grid.names(), grid.values, choices, strict=True)
        )
        mine = by_combo[combos.index(picked)]
        results: list[RunResult | None] = [None] * len(mine)

        def finished(i: int, r: RunResult) -> None:
            results[i] = r
            runs.append(r)
            if on_result is not None:
                on_result(len(runs), trials * len(mine), r)

        run_jobs(mine, workers, finished)
        done = [r for r in results if r is not None]
        failed = [r for r in done if r.error]
        if failed:
            trial.set_user_attr("error", failed[0].error)
            return math.inf
        return statistics.fmean(r.loss for r in done)

    sampler: Any = optuna.samplers.TPESampler(seed=0)
    if trials >= len(combos):
        # A search that may pick a combination again trained it again each time (200 trials of 2
        # combinations: each 100 times); asked for them all, it is the grid.
        if trials > len(combos) and warn is not None:
            warn(f"--trials {trials}: the grid has {len(combos)} combinations; training each once")
        trials = len(combos)
        sampler = optuna.samplers.GridSampler(dict(zip(grid.names(), choices, strict=True)), seed=0)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failed trial is treegrad's to report
    study = open_study(storage, study_name, warn, direction="minimize", sampler=sampler)
    _same_choices(study, dict(zip(grid.names(), choices, strict=True)))
    with faults(storage or ""):
        study.optimize(objective, n_trials=trials)
    return sweep_result(grid, runs)


def _same_choices(study: Any, choices: dict[str, list[Any]]) -> None:
    """Refuse, before any run, to continue a stored study that chose other values of a key: Optuna
    takes a key's values as fixed for a study, and failed at the first trial with 'internal error
    (CategoricalDistribution does not support dynamic value space)'."""
    for trial in study.get_trials(deepcopy=False):
        for name, distribution in trial.distributions.items():
            had = list(getattr(distribution, "choices", ()))
            if name in choices and had != choices[name]:
                shown = ", ".join(map(str, had[:10])) + (", ..." if len(had) > 10 else "")
                raise OptionError(
                    f"the study '{study.study_name}' in --storage searched other values of {name} ({shown}); "
                    "give another --study to search these, or the same values to continue it",
                    "--study",
                )


def _nothing_trained(result: SweepResult, csv_path: Path, best_out: Path | None) -> str:
    """Why a sweep has no best run, where its runs are, and what was not written."""
    failed = [r for r in result.runs if r.error]
    what = (
        f"every run of the sweep failed ({len(failed)} of {len(result.runs)}; the first: {failed[0].error})"
        if len(failed) == len(result.runs) and failed
        else f"no run of the sweep ended with a finite {result.loss_kind} loss"
    )
    saved = f", and no model was saved to {best_out}" if best_out is not None else ""
    return f"{what}; the runs are in {csv_path}, each with its error{saved}"


SEARCHES = ("grid", "optuna")  # every combination (sweep), or --trials of them chosen by Optuna (optuna_search)


@dataclass(frozen=True)
class Written:
    """A `treegrad sweep` and the files it wrote; `stopped` says why it ended before its last run."""

    result: SweepResult
    csv: Path  # every run (that finished)
    best: Path | None  # the best run's model; None if not asked for, or stopped
    stopped: str | None = None  # "interrupted" (Ctrl-C, SIGTERM) or what failed; None: every run finished
    planned: int = 0  # the runs a stopped sweep was to train


# A worker of the pool that ends without a result: the system killed it (out of memory), or someone did.
WORKER_DIED = (
    "a worker process of the sweep ended without its result (killed by the system, perhaps out of memory, "
    "or by a signal); train fewer runs at once (-j), or on smaller data"
)


def _searched(
    search: Callable[[Callable[[int, int, RunResult], None]], SweepResult],
    grid: Grid,
    ordered: bool,
    on_result: Callable[[int, int, RunResult], None] | None,
) -> tuple[SweepResult, str | None, int]:
    """(the result, why it stopped early or None, the runs planned) of `search(on_result)`. Stopped by
    Ctrl-C, SIGTERM, a worker's death or the study database failing after some runs finished, the
    result holds those (in grid order if `ordered`); stopped before any, the stop goes on as it came."""
    finished: list[RunResult] = []
    planned = 0

    def each(done: int, total: int, r: RunResult) -> None:
        nonlocal planned
        finished.append(r)
        planned = total
        if on_result is not None:
            on_result(done, total, r)

    try:
        return search(each), None, planned
    except (KeyboardInterrupt, BrokenProcessPool, StorageError) as e:
        died = isinstance(e, BrokenProcessPool)
        if not finished:
            if died:
                raise ProcessError(WORKER_DIED) from None
            raise
        runs = sorted(finished, key=lambda r: (r.combo, r.seed)) if ordered else finished
        why = WORKER_DIED if died else str(e) if isinstance(e, StorageError) else "interrupted"
        return sweep_result(grid, runs), why, planned


def _keep_another_sweep(path: Path, grid: Grid) -> None:
    """Refuse to replace the CSV of an earlier sweep of another grid (other keys, or a value this one
    does not take): its runs may have cost hours. The same sweep run again replaces its own CSV."""
    if not path.is_file():
        return
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    names = grid.names()
    if not rows or rows[0][: len(names) + 1] != [*names, "seed"]:
        other = "another grid" if not rows else f"the grid {', '.join(rows[0][: rows[0].index('seed')])}"
        kept = True
    else:
        taken = [{cell(v) for v in values} for values in grid.values]
        kept = any(row[j] not in taken[j] for row in rows[1:] for j in range(len(names)) if j < len(row))
        other = "other values of " + ", ".join(names)
    if kept:
        raise FileError(
            f"--csv {path} holds the {max(len(rows) - 1, 0)} runs of an earlier sweep of {other}: "
            "give another --csv to keep them, or pass --force to replace them"
        )


def _check_search(search: str, **given: object) -> None:
    """--search names a search, and the options of Optuna's come with --search optuna."""
    if search not in SEARCHES:
        raise OptionError(f"--search is {' or '.join(SEARCHES)}, not {search!r}", "--search")
    for option, value in given.items():
        if value is not None and search != "optuna":
            raise OptionError(f"--{option} is for --search optuna; add --search optuna, or leave it out", f"--{option}")


def sweep_files(
    spec_path: Path,
    grid: Grid,
    seeds: int | None = None,
    *,
    search: str = "grid",
    trials: int | None = None,
    storage: str | None = None,
    study: str | None = None,
    workers: int = 1,
    oversubscribe: bool = False,
    data: str | None = None,
    target: str | None = None,
    csv_path: Path | None = None,
    best_out: Path | None = None,
    force: bool = False,
    on_result: Callable[[int, int, RunResult], None] | None = None,
    warn: Warn | None = None,
) -> Written:
    """`treegrad sweep`: its options and outputs checked first (the runs to `csv_path`,
    NAME.sweep.csv by default; the best model to `best_out`), the grid searched (`search`: every
    combination, or `trials` of them (20 unless given) chosen by Optuna, its study named NAME when
    kept in `storage`) by at most `workers` processes (bounded_workers), then every run written as
    CSV and the best one's model saved. A sweep none of whose runs trained is a TrainingError,
    after its CSV is written. Stopped (Ctrl-C, SIGTERM, a worker killed, the study database
    failing) after some runs finished, it writes those to the CSV, saves no best model, and says
    why (`stopped`)."""
    from ..files import SWEEP, check_output, write_atomic
    from ..spec.models import load_spec
    from .modelfile import output_kind

    _check_search(search, trials=trials, storage=storage, study=study)
    check_workers(workers, oversubscribe)
    name = load_spec(spec_path).name or spec_path.stem
    csv_path = csv_path or Path(f"{name}.sweep.csv")
    check_output(csv_path, force=force, kind=SWEEP, option="--csv")
    if not force:
        _keep_another_sweep(csv_path, grid)
    if best_out is not None:
        check_output(best_out, force=force, kind=output_kind(name), option="--best-out")
    if search == "optuna" and storage is not None and study is None:
        study = name

    def search_all(each: Callable[[int, int, RunResult], None]) -> SweepResult:
        how: dict[str, Any] = {"workers": workers, "oversubscribe": oversubscribe, "data": data, "target": target}
        how.update(on_result=each, warn=warn)
        if search == "optuna":
            count = 20 if trials is None else trials
            return optuna_search(spec_path, grid, seeds, count, storage=storage, study_name=study, **how)
        return sweep(spec_path, grid, seeds, **how)

    result, stopped, planned = _searched(search_all, grid, search == "grid", on_result)
    write_atomic(csv_path, runs_csv(result), force=force, kind=SWEEP, option="--csv")
    if stopped is not None:
        return Written(result, csv_path, None, stopped, planned)
    best = result.best
    if best is None:
        raise TrainingError(_nothing_trained(result, csv_path, best_out))
    if best_out is None:
        return Written(result, csv_path, None)
    write_atomic(best_out, saved_as(best, best_out) + "\n", force=force)
    return Written(result, csv_path, best_out)
