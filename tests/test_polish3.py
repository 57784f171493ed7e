"""A new user's walkthrough, checked: the README's simplify and explain walkthroughs run as
written, the terminal loss curve fits 80 columns (or says why it is left out), simplify says
what its tolerance means, sweep's CSV has no duplicate column, and a missing dataset or spec
file gets a hint when the file the user meant is right there."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from treegrad.cli import app, render
from treegrad.interpret.simplify import tolerance_rule
from treegrad.outputs.textplot import text_curve

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def readme_commands(heading: str) -> list[tuple[list[str], str]]:
    """The treegrad commands of the first sh block under `heading` in README.md, with their comments."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        command, _, comment = line.partition("  #")
        assert command.startswith(".venv/bin/treegrad "), line
        commands.append((shlex.split(command)[1:], comment.strip()))
    return commands


@pytest.fixture()
def fresh_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder like the repository's root (models/ and datasets/) and nothing trained yet."""
    for folder in ("models", "datasets"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("heading", ["A shorter formula: `simplify`", "Why a prediction: `explain`"])
def test_the_readme_walkthrough_runs_as_written(fresh_checkout: Path, heading: str) -> None:
    """Every command of the walkthrough succeeds in order in a fresh checkout: each model file it
    uses is made by a command before it (it used law.model.json and lin.model.json, which no
    README command made: "no such model file")."""
    commands = readme_commands(heading)
    assert any(args[0] == "train" for args, _ in commands)
    left_out = []
    for args, comment in commands:
        if "--plot" in args and importlib.util.find_spec("matplotlib") is None:
            left_out.append(shlex.join(args))  # the plot extra is not installed here
            continue
        result = runner.invoke(app, args)
        assert result.exit_code == 0, f"{shlex.join(args)}\n{result.output}"
        formula = re.fullmatch(r"(\d.*)", comment)  # a comment that is the printed formula
        if formula:
            assert formula.group(1) in result.output
        if comment.startswith("contributions"):
            numbers = re.findall(r"-?\d+", comment)  # "contributions 3 and -2"
            assert args[:2] == ["explain", "lin.model.json"]
            explained = runner.invoke(app, [*args, "--json"])
            got = json.loads(explained.output)["contributions"]
            assert got == pytest.approx([float(n) for n in numbers], abs=1e-3)
    if left_out:
        pytest.skip(f"not run, matplotlib is not installed (pip install -e '.[plot]'): {'; '.join(left_out)}")


def terminal_width(monkeypatch: pytest.MonkeyPatch, columns: int) -> None:
    """The width treegrad's output sees (COLUMNS is read once, and pytest-xdist's workers set it)."""
    monkeypatch.setattr(render.out, "_width", columns)


def test_the_loss_curve_fits_80_columns_with_validation_on_a_log_scale(
    fresh_checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its legend was 83 characters, so on an 80-column terminal the whole chart vanished."""
    terminal_width(monkeypatch, 80)
    result = runner.invoke(app, ["train", "models/law.yaml"])
    assert result.exit_code == 0, result.output
    assert "(log scale)" in result.output and "o validation" in result.output
    chart = [line for line in result.output.splitlines() if re.match(r"[ \d.e+-]{10} \|", line)]
    assert len(chart) == 8
    legend_at = result.output.index("mean loss over each epoch")
    assert max(len(line) for line in result.output[:legend_at].splitlines()[-12:]) <= 80
    assert all(len(line) <= 80 for line in result.output[legend_at:].splitlines()[:3])


def test_a_terminal_too_narrow_for_the_curve_is_told_so_in_one_line(
    fresh_checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal_width(monkeypatch, 24)
    result = runner.invoke(app, ["train", "models/law.yaml"])
    assert result.exit_code == 0, result.output
    said = [line for line in result.output.splitlines() if "loss curve" in line]
    assert said == ["(loss curve left out: it needs 32 columns, the terminal has 24)"]
    assert "*" not in result.output


def test_no_line_of_the_curve_is_wider_than_asked() -> None:
    train = [10 ** (-i / 10) for i in range(100)]
    for max_width in range(32, 121):
        lines = text_curve(train, [v * 1.1 for v in train], width=60, height=8, max_width=max_width)
        assert max(len(line) for line in lines) <= max_width, max_width
        assert "* training," in "\n".join(lines) and len(lines) >= 11


def test_simplify_says_the_tolerance_is_relative_for_a_loss(fresh_checkout: Path) -> None:
    """It said "within 0.01 of the full model's", which reads as an absolute difference of losses."""
    assert runner.invoke(app, ["train", "models/law.yaml", "-q"]).exit_code == 0
    result = runner.invoke(app, ["simplify", "law.model.json", "-o", "small.json", "--epochs", "20"])
    assert result.exit_code == 0, result.output
    assert re.search(r"^chosen by validation mse at most 1% above the full model's: #\d+$", result.output, re.M)
    assert "within 0.01" not in result.output
    result = runner.invoke(
        app, ["simplify", "law.model.json", "-o", "s2.json", "--epochs", "20", "--tolerance", "0.05"]
    )
    assert "at most 5% above the full model's" in result.output


def test_a_classifiers_tolerance_is_in_points_of_accuracy() -> None:
    assert tolerance_rule("classes", "validation accuracy", 0.01) == (
        "validation accuracy at most 1 percentage point below the full model's"
    )
    assert tolerance_rule("binary", "training accuracy", 0.025).endswith(
        "at most 2.5 percentage points below the full model's"
    )


SWEEP_SPEC = """\
inputs: [x, y]
layers:
  - {linear: 1, activation: sigmoid}
loss: bce
data: line:60
target: label
training: {epochs: 3, learning_rate: 0.1, validation_split: VALIDATION}
"""


@pytest.mark.parametrize(("validation", "ranked"), [("0", "train_accuracy"), ("0.25", "validation_accuracy")])
def test_sweep_csv_has_no_two_columns_alike(tmp_path: Path, validation: str, ranked: str) -> None:
    """Without validation it had `training_loss` and `train_loss`, the same numbers twice."""
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SWEEP_SPEC.replace("VALIDATION", validation))
    out = tmp_path / "runs.csv"
    args = ["sweep", str(spec), "--grid", "training.learning_rate=0.1,0.01", "--csv", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    header = list(rows[0])
    assert len(set(header)) == len(header) and "training_loss" not in header
    assert ranked in header and "train_loss" in header
    assert ("validation_loss" in header) == (validation != "0")
    columns = [[row[name] for row in rows] for name in header if name not in ("seed", "error")]
    assert all(a != b for i, a in enumerate(columns) for b in columns[i + 1 :])  # no column repeats another


def test_a_bare_name_with_a_csv_of_that_name_at_hand_is_suggested(fresh_checkout: Path) -> None:
    result = runner.invoke(app, ["train", "models/xor.yaml", "--data", "iris"])
    assert result.exit_code == 1
    assert "unknown dataset 'iris'" in result.output
    assert "Did you mean --data datasets/iris.csv?" in result.output
    shutil.copy(fresh_checkout / "datasets" / "law.csv", fresh_checkout / "law.csv")
    result = runner.invoke(app, ["train", "models/lin.yaml", "--data", "law"])
    assert result.exit_code == 1 and "Did you mean --data law.csv?" in result.output
    result = runner.invoke(app, ["train", "models/xor.yaml", "--data", "irsi"])
    assert result.exit_code == 1 and "Did you mean --data" not in result.output  # nothing of that name


def test_a_spec_naming_a_bare_dataset_gets_the_csv_as_the_spec_would_name_it(fresh_checkout: Path) -> None:
    spec = fresh_checkout / "models" / "lin.yaml"
    spec.write_text(spec.read_text().replace("data: ../datasets/law.csv", "data: law"))
    result = runner.invoke(app, ["train", "models/lin.yaml"])
    assert result.exit_code == 1
    assert "unknown dataset 'law'" in result.output and "Did you mean data: ../datasets/law.csv?" in result.output


def test_a_spec_file_named_with_the_other_extension_is_suggested(fresh_checkout: Path) -> None:
    result = runner.invoke(app, ["train", "models/f2c.yml"])
    assert result.exit_code == 1
    assert "models/f2c.yml: no such file; did you mean models/f2c.yaml?" in result.output
    result = runner.invoke(app, ["train", "models/none.yml"])
    assert result.exit_code == 1 and "check the path" in result.output
