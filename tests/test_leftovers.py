"""Small user-facing leftovers: a bad `sweep --grid` is a usage error (exit 2, placed at the
option) while data and spec problems stay exit 1."""

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
