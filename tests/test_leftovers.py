"""Small user-facing leftovers: a bad `sweep --grid` is a usage error (exit 2, placed at the
option) while data and spec problems stay exit 1; `explain` and `eval` warn as `predict` does
about inputs far outside their training ranges; `show --format tree` is cut as the formula is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

runner = CliRunner()

TINY = """\
inputs: [x, y]
output: {sigmoid: {linear: [x, y]}}
loss: bce
data: line:60
target: label
training: {epochs: 2, learning_rate: 0.1}
"""


def run(*args: str) -> Any:
    from treegrad.cli import app

    return runner.invoke(app, list(args))


def flat(text: str) -> str:
    """A message as one line, whatever box or width it was printed in."""
    return " ".join(text.replace("│", " ").split())


@pytest.fixture()
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    return spec


# ----------------------------------------------------------------- sweep --grid


@pytest.mark.parametrize(
    ("grids", "words"),
    [
        (["learning_rat=0.1,0.2"], "unknown key 'learning_rat' — did you mean 'learning_rate'?"),
        (["learning_rate"], "'learning_rate' is not KEY=VALUES; e.g. training.learning_rate=0.1,0.01"),
        (["learning_rate="], "'learning_rate=' is not KEY=VALUES"),
        (["learning_rate=0.1,,0.2"], "training.learning_rate: expected a number, found nothing (an empty value)"),
        (["learning_rate=0.1,{"], "training.learning_rate: cannot read the value '{'"),
        (["epochs=1", "training.epochs=2"], "training.epochs is given twice; list all its values in one --grid"),
        (["epochs=1,2", "learning_rate=0.1,0.2,0.3"], "the sweep would train 18000 models (more than 10000)"),
    ],
)
def test_a_bad_grid_is_a_usage_error_at_the_option(tiny: Path, grids: list[str], words: str) -> None:
    args = [a for g in grids for a in ("--grid", g)]
    r = run("sweep", str(tiny), *args, "--seeds", "3000", "--csv", "r.csv")
    assert r.exit_code == 2, r.output
    text = flat(r.output)
    assert f"Invalid value for '--grid': {words}" in text and "Traceback" not in r.output
    assert "--grid: --grid" not in text and "error:" not in text  # one message, rendered once, by Typer
    assert sorted(p.name for p in tiny.parent.iterdir()) == ["tiny.yaml"]  # nothing trained or written


def test_spec_and_data_problems_a_grid_meets_stay_exit_1(tiny: Path) -> None:
    # The grid's value is fine; the spec it makes does not fit: placed in the file, as train --set does.
    r = run("sweep", str(tiny), "--grid", "inputs=[x]", "--csv", "r.csv")
    assert r.exit_code == 1, r.output
    assert "tiny.yaml:2:" in flat(r.output) and "unknown name 'y'" in flat(r.output)
    # A data problem is the data's, whatever the grid.
    tiny.write_text(TINY.replace("data: line:60", "data: f2c:30"))
    r = run("sweep", str(tiny), "--grid", "learning_rate=0.1,0.2", "--csv", "r.csv")
    assert r.exit_code == 1, r.output
    assert "input column 'x' is not in f2c:30" in flat(r.output)
    assert not Path("r.csv").exists()


# ----------------------------------------------------------------- explain and eval warn as predict does


@pytest.fixture()
def line_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A classifier trained on the built-in `line` data: both inputs in [-1, 1]."""
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "line.yaml"
    spec.write_text("inputs: [x, y]\noutput: {sigmoid: {linear: [x, y]}}\nloss: bce\ndata: line:200\n")
    r = run("train", str(spec), "--out", "line.model.json", "--epochs", "5", "--quiet")
    assert r.exit_code == 0, r.output
    return tmp_path / "line.model.json"


def warnings(r: Any) -> list[str]:
    return [line for line in r.stderr.splitlines() if line.startswith("warning:")]


def test_explain_warns_about_a_value_far_outside_and_still_explains(line_model: Path) -> None:
    from treegrad.run.modelfile import load

    lo, hi = load(line_model).record.input_ranges["y"]
    r = run("explain", str(line_model), "0", "5")
    assert r.exit_code == 0, r.output
    assert warnings(r) == [
        f"warning: input 'y' is 5, far outside its training range [{lo:.6g}, {hi:.6g}]: the prediction extrapolates"
    ]
    assert "contribution" in r.stdout and "warning" not in r.stdout
    assert warnings(run("explain", str(line_model), "x=0", "y=5", "--json")) == warnings(r)
    assert warnings(run("predict", str(line_model), "0", "5")) == warnings(r)  # the same words as predict's
    inside = run("explain", str(line_model), "0", "0.5")
    assert inside.exit_code == 0 and "warning" not in inside.output, inside.output


@pytest.mark.parametrize("command", ["explain", "eval"])
def test_explain_and_eval_data_warn_per_input_naming_the_farthest_row(line_model: Path, command: str) -> None:
    rows = [(0.1 * (i % 10) - 0.5, 0.0, i % 2) for i in range(40)] + [(3.0, 0.1, 1), (0.2, -9.0, 0)]
    csv = line_model.parent / "new.csv"
    csv.write_text("x,y,label\n" + "".join(f"{x},{y},{label}\n" for x, y, label in rows))
    r = run(command, str(line_model), "--data", str(csv))
    assert r.exit_code == 0, r.output
    found = warnings(r)
    assert len(found) == 2
    assert "input 'x': 1 of 42 rows far outside" in found[0] and "the farthest 3 (" in found[0]
    assert "new.csv, line 42): those predictions extrapolate" in found[0]
    assert "input 'y': 1 of 42 rows far outside" in found[1] and "new.csv, line 43)" in found[1]
    assert found == warnings(run("predict", str(line_model), "--data", str(csv), "-o", "p.csv"))  # as predict
    assert "warning" not in r.stdout
    csv.write_text("x,y,label\n" + "".join(f"{x},{y},{label}\n" for x, y, label in rows[:40]))
    inside = run(command, str(line_model), "--data", str(csv))
    assert inside.exit_code == 0 and "warning" not in inside.output, inside.output


def test_eval_warns_about_the_rows_it_evaluated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `missing: drop` the rows with an empty cell are not evaluated, nor counted in the warning,
    and the farthest row is still named by its line in the file."""
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "d.yaml"
    spec.write_text(
        "inputs: [x, y]\noutput: {sigmoid: {linear: [x, y]}}\nloss: bce\ndata: line:100\n"
        "training: {missing: drop, epochs: 2}\n"
    )
    assert run("train", str(spec), "-o", "d.model.json", "-q").exit_code == 0
    (tmp_path / "gaps.csv").write_text("x,y,label\n0.1,,1\n5,0.1,0\n0.3,0.2,\n0.3,-9,1\n0.2,0.2,1\n")
    r = run("eval", "d.model.json", "--data", "gaps.csv")
    assert r.exit_code == 0, r.output
    assert "rows" in r.stdout and " 3 " in r.stdout.split("rows")[1].splitlines()[0]
    found = warnings(r)
    assert len(found) == 2
    assert "input 'x': 1 of 3 rows" in found[0] and "the farthest 5 (gaps.csv, line 3)" in found[0]
    assert "input 'y': 1 of 3 rows" in found[1] and "the farthest -9 (gaps.csv, line 5)" in found[1]


# ----------------------------------------------------------------- show --format tree is bounded as text is


def test_the_tree_of_a_wide_model_is_cut_as_the_formula_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from treegrad.limits import MAX_SHOWN_FORMULA

    monkeypatch.chdir(tmp_path)
    (tmp_path / "wide.yaml").write_text("inputs: [a, b, c, d]\nlayers: [{linear: 64, activation: relu}, {linear: 1}]\n")
    r = run("show", "wide.yaml", "--format", "tree")
    assert r.exit_code == 0, r.output
    shown = r.stdout.splitlines()
    assert len(r.stdout) - len(shown[-1]) <= MAX_SHOWN_FORMULA and shown[-1].strip("│├└─ ") == "..."
    hint = flat(r.stderr)
    assert hint.startswith("(the tree has 1,090 lines; the first ") and "(4,000 characters) are shown" in hint
    assert "treegrad show wide.yaml --format tree --full prints all of it" in hint
    whole = run("show", "wide.yaml", "--format", "tree", "--full")
    assert whole.exit_code == 0 and whole.stderr == ""
    assert len(whole.stdout.splitlines()) == 1090 and len(whole.stdout) > 20_000
    # The lines shown are the whole tree's first ones, in the order they print.
    labels = [line.strip("│├└─ ") for line in whole.stdout.splitlines()]
    assert [line.strip("│├└─ ") for line in shown[:-1]] == labels[: len(shown) - 1]
    assert f"the first {len(shown) - 1} " in hint


def test_a_small_tree_is_whole_and_a_shared_node_is_drawn_where_it_is_met_first(tmp_path: Path) -> None:
    spec = tmp_path / "dag.yaml"
    spec.write_text("inputs: [x]\nnodes: {h: {tanh: x}}\noutput: {add: [{mul: [{neg: h}, 2]}, h]}\n")
    r = run("show", str(spec), "--format", "tree")
    assert r.exit_code == 0 and r.stderr == "", r.output
    lines = [line.strip("│├└─ ") for line in r.stdout.splitlines()]
    assert lines == ["add", "mul", "neg", "tanh #1", "x", "2", "tanh #1 (shared: drawn once, elsewhere in this tree)"]
