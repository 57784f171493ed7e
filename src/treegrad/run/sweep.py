"""Sweeps: train one spec under every combination of settings, over several seeds, and rank them.

`sweep(spec, grid, seeds)` runs each combination of the grid's values (dotted keys of the spec,
as `train --set` takes them: `training.learning_rate`, `layers.0.linear`; each value checked by
the spec's models before anything runs) once per seed, seeds 0 to
N-1, in worker processes of the standard library's process pool. Every run is a whole,
independent training run whose randomness comes only from its seed, so the results are the
same whatever the number of workers; only the times differ. Runs are returned in the order
of the grid, not in the order they finished.

The leaderboard groups the runs of a combination: mean and sample deviation of the
validation loss (the training loss when there is no validation split) and of the metric
(accuracy for classifiers, R² for regression), the formula's length (characters of `show`'s
text), the time, and how many runs ended with a dead ReLU unit or failed. Combinations rank
by mean loss, failed runs counting as infinitely bad. Each run's model records the `treegrad
train` command line that trains it alone (`train_command`), so the best one saved has a card
that reproduces it.

For search beyond grids (and across machines), search.py hands the same runs to Optuna, and
writes what `treegrad sweep` writes. How many processes, and how they stop, is pool.py's.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SettingError, SpecError, TreegradError
from ..limits import MAX_SWEEP_RUNS
from ..spec.settings import KeyPath, load, parse_assignment, split_values
from .pool import Warn, bounded_workers, check_workers, run_in_pool

SEED = ("training", "seed")  # the key --seeds sets in each run


@dataclass(frozen=True)
class Grid:
    """Keys (dotted paths from the spec's top level) and the values each takes."""

    keys: tuple[KeyPath, ...]
    values: tuple[tuple[Any, ...], ...]

    def combinations(self) -> list[tuple[Any, ...]]:
        """Every combination of values, the last key varying fastest."""
        return list(itertools.product(*self.values))

    def size(self) -> int:
        """How many combinations there are, without listing them."""
        return math.prod(len(v) for v in self.values)

    def names(self) -> list[str]:
        """The keys as written in CSV headers and on the leaderboard: training.learning_rate."""
        return [".".join(k) for k in self.keys]


def parse_grid(items: Sequence[str]) -> Grid:
    """`KEY=V1,V2,...` options as a Grid; a malformed option or a key given twice is a SettingError."""
    # Counted before a value is read or a combination listed: 7 keys of 20 values are 1.28 billion.
    _check_runs(math.prod(len(split_values(item.partition("=")[2])) for item in items))
    keys: list[KeyPath] = []
    values: list[tuple[Any, ...]] = []
    for item in items:
        key, vals = parse_assignment(item, "--grid", many=True)
        if key in keys:
            raise SettingError(f"--grid: {'.'.join(key)} is given twice; list all its values in one --grid")
        keys.append(key)
        values.append(tuple(vals))
    return Grid(tuple(keys), tuple(values))


@dataclass
class RunResult:
    """One training run of a sweep: its combination and seed, and what came out."""

    combo: int  # index into the grid's combinations
    values: tuple[Any, ...]
    seed: int
    loss: float = math.nan  # validation loss, or training loss without validation
    metric: float = math.nan  # accuracy or R²
    train_loss: float = math.nan
    formula_length: int = 0
    dead_units: int = 0
    seconds: float = 0.0
    validated: bool = False  # True if `loss` is a validation loss
    metric_name: str = ""  # "accuracy" or "r2"
    error: str = ""  # why the run failed ("" if it did not)
    model_json: str = field(default="", repr=False)  # the model file's text, for --best-out


@dataclass
class Ranked:
    """One row of the leaderboard: a combination summarised over its seeds."""

    values: tuple[Any, ...]
    runs: int
    loss_mean: float
    loss_sd: float
    metric_mean: float
    metric_sd: float
    formula_length: float
    seconds: float
    died: int  # runs that ended with a dead ReLU unit
    failed: int


@dataclass
class SweepResult:
    """All runs in grid order, the leaderboard, and which loss and metric were compared."""

    grid: Grid
    runs: list[RunResult]
    board: list[Ranked]
    loss_kind: str  # "validation" or "training"
    metric_name: str  # "accuracy" or "r2"

    @property
    def best(self) -> RunResult | None:
        """The run of lowest loss (the first in grid order among equals); None if all failed."""
        ok = [r for r in self.runs if not r.error and math.isfinite(r.loss)]
        return min(ok, key=lambda r: r.loss) if ok else None


@dataclass(frozen=True)
class Job:
    """What a worker needs for one run (picklable)."""

    spec_path: Path
    data: str | None
    target: str | None
    changes: tuple[tuple[KeyPath, Any], ...]
    combo: int
    values: tuple[Any, ...]
    seed: int | None


def _check_runs(n: int) -> None:
    if n > MAX_SWEEP_RUNS:
        raise SettingError(
            f"--grid: the sweep would train {n} models (more than {MAX_SWEEP_RUNS}): give fewer values or seeds"
        )


def plan(
    spec_path: Path, grid: Grid, seeds: int | None, data: str | None = None, target: str | None = None
) -> list[Job]:
    """The runs of a sweep, each value of the grid checked now in the spec (a bad key or value, or
    too many runs, is a SettingError before any training), in grid order: combination by
    combination, seeds 0..N-1 in each. The first run is prepared too, so a problem with the data
    also fails here (as the DataError or SpecError it is)."""
    _check_runs(grid.size() * (seeds or 1))
    if seeds and SEED in grid.keys:
        raise SettingError(
            f"--grid: training.seed and --seeds {seeds} both choose the seeds; give them once: --seeds N "
            "(seeds 0 to N-1), or the seeds in --grid seed=..."
        )
    combos = grid.combinations()
    for key, values in zip(grid.keys, grid.values, strict=True):
        for value in values:
            load(spec_path, [(key, value)], "--grid")
    jobs = []
    for c, values in enumerate(combos):
        changes = tuple(zip(grid.keys, values))
        for s in range(seeds) if seeds else [None]:
            jobs.append(Job(spec_path, data, target, changes, c, values, s))
    # A problem with the data is the same for every run: find it now, not once per run.
    from .prepare import prepare

    prepare(spec_path, data=data, target=target, sets=jobs[0].changes)
    return jobs


def train_command(job: Job) -> list[str]:
    """The `treegrad train` command line (argv) that trains this run of the sweep alone, the same
    parameters bit for bit: the spec, --data and --target as given, a --set per value of its
    combination, and its --seed."""
    argv = ["treegrad", "train", str(job.spec_path)]
    argv += ["--data", job.data] if job.data is not None else []
    argv += ["--target", job.target] if job.target is not None else []
    for key, value in job.changes:
        if job.seed is None or key != SEED:  # --seed below sets it, as the run did
            argv += ["--set", f"{'.'.join(key)}={setting(value)}"]
    return argv + (["--seed", str(job.seed)] if job.seed is not None else [])


def setting(value: Any) -> str:
    """A value as --set reads it back: as written on the leaderboard, else in JSON (for a text
    such as '0.1', which would read back as a number)."""
    from ..spec.reading import read_value

    text = cell(value)
    try:
        back = read_value(text, "--set")
    except SpecError:
        return json.dumps(value)
    return text if back == value and type(back) is type(value) else json.dumps(value)


def saved_as(run: RunResult, out: Path) -> str:
    """The run's model file as saved to `out`: its command line writes it there (-o)."""
    from .modelfile import ModelRecord

    record = ModelRecord.model_validate_json(run.model_json)
    p = record.provenance
    if p is not None and p.command is not None:
        p = p.model_copy(update={"command": [*p.command, "-o", str(out)]})
        record = record.model_copy(update={"provenance": p})
    return record.model_dump_json()


def run_job(job: Job) -> RunResult:
    """Train one run of a sweep (in a worker process); a TreegradError is a failed run, not a crash."""
    from ..core.printers import funcify
    from .diagnose import dead_units
    from .prepare import prepare
    from .train import run

    result = RunResult(job.combo, job.values, job.seed if job.seed is not None else -1)
    try:
        changes = job.changes + ((SEED, job.seed),) if job.seed is not None else job.changes
        prep = prepare(job.spec_path, data=job.data, target=job.target, sets=changes, command=train_command(job))
        result.seed = prep.settings.seed
        t0 = time.perf_counter()
        trained = run(prep)
        result.seconds = time.perf_counter() - t0
        metrics = trained.record.metrics
        watched = metrics.get("validation", metrics["train"])
        result.loss = float(watched["loss"])
        result.train_loss = float(metrics["train"]["loss"])
        result.validated = "validation" in metrics
        result.metric_name = "r2" if "r2" in watched else "accuracy"
        result.metric = float(watched.get(result.metric_name, math.nan))
        result.formula_length = len(funcify(trained.root))
        result.dead_units = len(dead_units(trained.root.compiled_graph, prep.data.train[0]))
        result.model_json = trained.record.model_dump_json()
    except TreegradError as e:
        result.error = str(e).splitlines()[0]
    return result


def _mean_sd(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else math.nan


def leaderboard(grid: Grid, runs: list[RunResult]) -> list[Ranked]:
    """The combinations summarised over their seeds, best (lowest mean loss) first."""
    rows = []
    for c, values in enumerate(grid.combinations()):
        mine = [r for r in runs if r.combo == c]
        if not mine:
            continue  # a search that never tried this combination
        ok = [r for r in mine if not r.error]
        loss_mean, loss_sd = _mean_sd([r.loss for r in ok])
        metric_mean, metric_sd = _mean_sd([r.metric for r in ok])
        rows.append(
            Ranked(
                values,
                len(mine),
                loss_mean if len(ok) == len(mine) else math.inf,
                loss_sd,
                metric_mean,
                metric_sd,
                statistics.fmean([r.formula_length for r in ok]) if ok else math.nan,
                statistics.fmean([r.seconds for r in ok]) if ok else math.nan,
                sum(r.dead_units > 0 for r in ok),
                len(mine) - len(ok),
            )
        )
    # Stable: equal losses keep grid order. NaN (no finite loss) ranks last.
    return sorted(rows, key=lambda r: (math.isnan(r.loss_mean), r.loss_mean))


def sweep(
    spec_path: Path,
    grid: Grid,
    seeds: int | None = None,
    *,
    workers: int = 1,
    oversubscribe: bool = False,
    data: str | None = None,
    target: str | None = None,
    on_result: Callable[[int, int, RunResult], None] | None = None,
    warn: Warn | None = None,
) -> SweepResult:
    """Train every combination x seed, at most `workers` processes at a time (bounded_workers);
    see the module's docstring."""
    check_workers(workers, oversubscribe)
    jobs = plan(spec_path, grid, seeds, data, target)
    workers = bounded_workers(workers, len(jobs), oversubscribe, warn)
    results: list[RunResult | None] = [None] * len(jobs)
    done = 0

    def finished(i: int, r: RunResult) -> None:
        nonlocal done
        results[i] = r
        done += 1
        if on_result is not None:
            on_result(done, len(jobs), r)

    run_jobs(jobs, workers, finished)
    runs = [r for r in results if r is not None]
    assert len(runs) == len(jobs)
    return sweep_result(grid, runs)


def run_jobs(jobs: Sequence[Job], workers: int, finished: Callable[[int, RunResult], None]) -> None:
    """Run the jobs here (one worker) or in worker processes (pool.py: a signal ends them at once),
    calling finished(i, result) for each."""
    if workers <= 1 or len(jobs) <= 1:
        for i, job in enumerate(jobs):
            finished(i, run_job(job))
        return
    run_in_pool(run_job, jobs, workers, finished)


def sweep_result(grid: Grid, runs: list[RunResult]) -> SweepResult:
    """The runs with their leaderboard, and which loss and metric rank them."""
    loss_kind = "validation" if any(r.validated for r in runs) else "training"
    metric = next((r.metric_name for r in runs if r.metric_name), "accuracy")
    return SweepResult(grid, runs, leaderboard(grid, runs), loss_kind, metric)


def runs_csv(result: SweepResult) -> str:
    """Every run as a CSV row: the grid's values, the seed, and what came out. A text cell that a
    spreadsheet would take for a formula (=, +, -, @) is written as text (csvfile.spreadsheet_safe).

    The columns are named as in `train --log-dir`'s metrics.csv: `train_loss` always,
    `validation_loss` when the sweep validates (empty for a run that did not), and the metric
    of the part the runs are ranked on (`validation_accuracy`, or `train_r2` without validation).
    """
    validating = result.loss_kind == "validation"
    part = "validation" if validating else "train"
    from ..data.csvfile import spreadsheet_safe

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            *(spreadsheet_safe(name) for name in result.grid.names()),
            "seed",
            *(["validation_loss"] if validating else []),
            f"{part}_{result.metric_name}",
            "train_loss",
            "formula_length",
            "dead_units",
            "seconds",
            "error",
        ]
    )
    for r in result.runs:
        same_part = r.validated == validating  # else `loss` and `metric` are of the other part: left empty
        w.writerow(
            [
                *[spreadsheet_safe(cell(v)) if isinstance(v, str) else cell(v) for v in r.values],
                r.seed,
                *([repr(r.loss) if same_part else ""] if validating else []),
                repr(r.metric) if same_part else "",
                repr(r.train_loss),
                r.formula_length,
                r.dead_units,
                f"{r.seconds:.4f}",
                spreadsheet_safe(r.error),
            ]
        )
    return buf.getvalue()


def cell(v: Any) -> str:
    """A grid value as written in a CSV cell and on the leaderboard (as it would be given)."""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(", ", ": "))
    return str(v).lower() if isinstance(v, bool) else str(v)
