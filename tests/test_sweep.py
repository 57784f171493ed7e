"""`treegrad sweep`: every combination x seed, ranked; the same results whatever the workers."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

import treegrad as tg
from treegrad import SpecError
from treegrad.cli import app
from treegrad.engine.settings import Training
from treegrad.run.sweep import parse_grid, plan, sweep
from treegrad.spec.settings import override, parse_assignment

runner = CliRunner()

TINY = """\
inputs: [x, y]
output:
  sigmoid:
    add:
      - mul: [param, {relu: {add: [{mul: [param, x]}, {mul: [param, y]}, param]}}]
      - param
loss: bce
data: line:60
target: label
training: {epochs: 4, learning_rate: 0.1, validation_split: 0.25}
"""


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    return spec


def without_times(text: str) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(text)))
    for r in rows:
        del r["seconds"]
    return rows


def test_two_rates_times_three_seeds(tiny: Path, tmp_path: Path) -> None:
    """6 runs, 2 ranked rows with a deviation, and the same runs with -j 1 and -j 2."""
    outputs = {}
    for j in ("1", "2"):
        out_csv = tmp_path / f"runs{j}.csv"
        args = ["sweep", str(tiny), "--grid", "training.learning_rate=0.1,0.01", "--seeds", "3", "-j", j]
        result = runner.invoke(app, [*args, "--csv", str(out_csv)])
        assert result.exit_code == 0, result.output
        outputs[j] = out_csv.read_text()
        assert "±" in result.output and "validation loss" in result.output
    rows = without_times(outputs["1"])
    assert len(rows) == 6
    assert [(r["training.learning_rate"], r["seed"]) for r in rows] == [
        (lr, s) for lr in ("0.1", "0.01") for s in ("0", "1", "2")
    ]
    assert rows == without_times(outputs["2"])
    # seeds differ, so the runs of one combination differ
    assert len({r["validation_loss"] for r in rows[:3]}) == 3


def test_leaderboard_ranks_combinations_by_mean_loss(tiny: Path) -> None:
    result = sweep(tiny, parse_grid(["learning_rate=0.1,0.01"]), seeds=3)
    assert len(result.runs) == 6 and len(result.board) == 2
    first, second = result.board
    assert first.loss_mean <= second.loss_mean
    for row in result.board:
        mine = [r.loss for r in result.runs if r.values == row.values]
        mean = sum(mine) / 3
        sd = math.sqrt(sum((v - mean) ** 2 for v in mine) / 2)
        assert row.loss_mean == pytest.approx(mean) and row.loss_sd == pytest.approx(sd)
    assert result.loss_kind == "validation" and result.metric_name == "accuracy"


def test_the_article_classifier_over_ten_seeds_reports_the_dead(tiny: Path) -> None:
    """Some seeds of the article's classifier end with the ReLU dead; the leaderboard counts them."""
    result = sweep(tiny, parse_grid([]), seeds=10)
    dead = [r for r in result.runs if r.dead_units]
    assert len(result.runs) == 10 and 0 < len(dead) < 10
    assert result.board[0].died == len(dead)


def test_best_out_saves_a_model_that_loads(tiny: Path, tmp_path: Path) -> None:
    best = tmp_path / "best.model.json"
    result = runner.invoke(
        app, ["sweep", str(tiny), "--seeds", "3", "--best-out", str(best), "--csv", str(tmp_path / "r.csv")]
    )
    assert result.exit_code == 0, result.output
    losses = [float(r["validation_loss"]) for r in csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text()))]
    record = json.loads(best.read_text())
    assert record["metrics"]["validation"]["loss"] == min(losses)
    shown = runner.invoke(app, ["show", str(best)])
    assert shown.exit_code == 0, shown.output


@pytest.mark.parametrize(
    "grid, message",
    [
        ("training.learning_rat=0.1,0.2", "unknown key 'learning_rat' — did you mean 'learning_rate'?"),
        ("training.l2=-1,0.1", "'--grid': training.l2: must be greater than or equal to 0"),
        ("training.lr_schedule.type=cosin", "unknown schedule type 'cosin' — did you mean 'cosine'?"),
        ("training.optimizer=adm", "'adm' is not allowed — did you mean 'adam'?"),
        ("learning_rate", "is not KEY=VALUES"),
    ],
)
def test_bad_grids_get_pointed_errors(tiny: Path, tmp_path: Path, grid: str, message: str) -> None:
    result = runner.invoke(app, ["sweep", str(tiny), "--grid", grid, "--csv", str(tmp_path / "r.csv")])
    assert result.exit_code == 2, result.output  # a usage error, placed at the option
    text = " ".join(result.output.replace("│", " ").split())  # the usage box wraps long messages
    assert message in text and "Invalid value for '--grid'" in text and "Traceback" not in result.output
    assert not (tmp_path / "r.csv").exists()  # checked before any training


def test_a_data_problem_stops_the_sweep_before_training(tmp_path: Path) -> None:
    spec = tmp_path / "d.yaml"
    spec.write_text("inputs: [x]\noutput: {add: [{mul: [param, x]}, param]}\ndata: f2c:30\ntarget: c\n")
    with pytest.raises(tg.DataError, match="input column 'x' is not in f2c:30"):
        sweep(spec, parse_grid(["learning_rate=0.1,0.2"]), seeds=2)


def test_a_key_given_twice_is_refused() -> None:
    with pytest.raises(SpecError, match="given twice"):
        parse_grid(["learning_rate=0.1", "training.learning_rate=0.2"])


def test_nested_values_and_plans(tiny: Path) -> None:
    """A schedule's type and a whole mapping can be swept; the plan orders combinations then seeds."""
    key, values = parse_assignment("training.lr_schedule={type: step, step_size: 2},{type: cosine}", "--grid", True)
    assert values == [{"type": "step", "step_size": 2}, {"type": "cosine"}]
    assert override(Training(), [(key, values[1])], "--grid").lr_schedule is not None
    jobs = plan(tiny, parse_grid(["epochs=1,2", "optimizer=sgd,adam"]), seeds=2)
    assert [(j.values, j.seed) for j in jobs][:3] == [((1, "sgd"), 0), ((1, "sgd"), 1), ((1, "adam"), 0)]
    assert len(jobs) == 8


def test_failed_runs_are_reported_not_raised(tmp_path: Path) -> None:
    """A run that diverges is a failed row of the leaderboard; the sweep goes on."""
    spec = tmp_path / "f.yaml"
    spec.write_text(
        "inputs: [f]\noutput: {add: [{mul: [param, f]}, param]}\ndata: f2c:30\ntarget: c\n"
        "training: {epochs: 30, learning_rate: 0.001}\n"
    )
    result = sweep(spec, parse_grid(["learning_rate=0.00001,1000"]))
    by_rate = {r.values[0]: r for r in result.runs}
    assert by_rate[1000].error and "diverged" in by_rate[1000].error and not by_rate[0.00001].error
    assert result.board[-1].failed == 1 and math.isinf(result.board[-1].loss_mean)


def test_optuna_search_with_sqlite_storage(tiny: Path, tmp_path: Path) -> None:
    """Optuna picks combinations from the grid; the study lives in SQLite, where a second process
    (here: a second call) continues it."""
    optuna = pytest.importorskip("optuna")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    args = ["sweep", str(tiny), "--grid", "learning_rate=0.1,0.03,0.01", "--seeds", "2", "--search", "optuna"]
    for _ in range(2):
        result = runner.invoke(app, [*args, "--trials", "2", "--storage", url, "--csv", str(tmp_path / "o.csv")])
        assert result.exit_code == 0, result.output
        assert len(list(csv.DictReader(io.StringIO((tmp_path / "o.csv").read_text())))) == 4
    study = optuna.load_study(study_name="tiny", storage=url)
    assert len(study.trials) == 4
    assert all(t.params["training.learning_rate"] in ("0.1", "0.03", "0.01") for t in study.trials)
    # The same study asked to search other values is refused before any run: Optuna fixes a key's
    # values for a study, and its first trial ended in 'internal error (... dynamic value space)'.
    other = [*args[:3], "learning_rate=0.5,0.2", *args[4:], "--trials", "2", "--storage", url]
    result = runner.invoke(app, [*other, "--csv", str(tmp_path / "p.csv")])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.translate({ord(c): " " for c in "│╭╮╰╯─"}).split())  # the panel's words
    assert "searched other values of training.learning_rate (0.1, 0.03, 0.01)" in said, said
    assert "internal error" not in result.output and not (tmp_path / "p.csv").exists()
    assert len(optuna.load_study(study_name="tiny", storage=url).trials) == 4
