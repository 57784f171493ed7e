"""Runs on disk: `train --print-config`, `--log-dir` (metrics.csv and the resolved spec), and
that the resolved spec trains the same parameters bit for bit."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from treegrad.cli import app

MODELS = Path(__file__).resolve().parent.parent / "models"
runner = CliRunner()


def run(*args: str) -> Any:
    return runner.invoke(app, list(args))


@pytest.fixture
def xor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "xor.yaml"
    shutil.copy(MODELS / "xor.yaml", spec)
    return spec


def test_print_config_shows_every_setting_and_writes_nothing(xor: Path) -> None:
    before = sorted(p.name for p in xor.parent.iterdir())
    r = run("train", str(xor), "--epochs", "7", "--set", "training.early_stopping.patience=3", "--print-config")
    assert r.exit_code == 0, r.output
    shown = yaml.safe_load(r.stdout)
    assert shown["training"]["epochs"] == 7
    assert shown["training"]["early_stopping"]["patience"] == 3
    assert shown["training"]["l2"] == 0.0  # a default the file does not write
    assert shown["training"]["optimizer"] == "adam"
    assert shown["data"] == "xor" and shown["target"] == "label"
    assert sorted(p.name for p in xor.parent.iterdir()) == before


def test_set_typo_exits_2_naming_the_key(xor: Path) -> None:
    r = run("train", str(xor), "--set", "training.early_stoping.patience=10", "--print-config")
    assert r.exit_code == 2
    assert "early_stoping" in r.output and "early_stopping" in r.output  # the key and the did-you-mean
    assert "Traceback" not in r.output


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_log_dir_writes_metrics_per_epoch_and_the_resolved_spec(xor: Path) -> None:
    r = run("train", str(xor), "--epochs", "12", "-q", "--log-dir", "run1", "-o", "a.model.json")
    assert r.exit_code == 0, r.output
    rows = _rows(Path("run1/metrics.csv"))
    assert [int(row["epoch"]) for row in rows] == list(range(1, 13))
    assert set(rows[0]) == {"epoch", "train_loss", "validation_loss", "validation_accuracy", "learning_rate"}
    model = json.loads(Path("a.model.json").read_text())
    assert [float(row["train_loss"]) for row in rows] == model["history"]["train"]
    assert [float(row["validation_loss"]) for row in rows] == model["history"]["validation"]
    assert all(float(row["learning_rate"]) == 0.05 for row in rows)
    spec = yaml.safe_load(Path("run1/spec.yaml").read_text())
    assert spec["training"]["epochs"] == 12


def test_the_resolved_spec_trains_the_same_parameters_bit_for_bit(xor: Path, tmp_path: Path) -> None:
    assert (
        run("train", str(xor), "--epochs", "9", "--lr", "0.03", "-q", "--log-dir", "run1", "-o", "a.json").exit_code
        == 0
    )
    again = tmp_path / "elsewhere"
    again.mkdir()
    shutil.copy("run1/spec.yaml", again / "xor.yaml")
    r = run("train", str(again / "xor.yaml"), "-q", "-o", "b.json")
    assert r.exit_code == 0, r.output
    a, b = (json.loads(Path(p).read_text()) for p in ("a.json", "b.json"))
    assert a["parameters"] == b["parameters"]  # floats read back exactly: bit for bit
    assert a["history"] == b["history"]


def test_resolved_spec_pins_a_csv_by_its_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "pts.csv").write_text("x,y\n" + "".join(f"{i},{2 * i + 1}\n" for i in range(8)))
    spec = tmp_path / "d" / "lin.yaml"
    spec.write_text("inputs: [x]\noutput: {add: [{mul: [param, x]}, param]}\ndata: pts.csv\ntarget: y\n")
    monkeypatch.chdir(tmp_path)
    r = run("train", str(spec), "--print-config")
    assert r.exit_code == 0, r.output
    assert yaml.safe_load(r.stdout)["data"] == str((tmp_path / "d" / "pts.csv").resolve())


def test_log_dir_refuses_an_existing_run_without_force(xor: Path) -> None:
    assert run("train", str(xor), "--epochs", "2", "-q", "--log-dir", "run1").exit_code == 0
    before = Path("run1/metrics.csv").read_text()
    Path("xor.model.json").unlink()
    r = run("train", str(xor), "--epochs", "3", "-q", "--log-dir", "run1")
    assert r.exit_code == 1
    assert "already holds a run" in r.output and "--force" in r.output
    assert Path("run1/metrics.csv").read_text() == before
    assert not Path("xor.model.json").exists()  # refused before training: nothing written
    r = run("train", str(xor), "--epochs", "3", "-q", "--log-dir", "run1", "--force")
    assert r.exit_code == 0, r.output
    assert len(_rows(Path("run1/metrics.csv"))) == 3


# A folder whose parents are missing is no bad place any more: they are made (issue 26); a file on
# the way still is.
@pytest.mark.parametrize(
    ("make", "message", "target"),
    [
        (lambda: Path("afile").write_text("x"), "is a file, not a folder", "afile"),
        (lambda: Path("afile").write_text("x"), "afile is a file, not a folder", "afile/sub/run"),
    ],
)
def test_log_dir_bad_places_are_refused_before_training(xor: Path, make: Any, message: str, target: str) -> None:
    make()
    r = run("train", str(xor), "--epochs", "2", "-q", "--log-dir", target)
    assert r.exit_code == 1
    assert message in r.output and "Traceback" not in r.output
    assert not Path("xor.model.json").exists()


def test_a_killed_run_keeps_the_epochs_it_finished(xor: Path) -> None:
    """metrics.csv is flushed each epoch: a run stopped by Ctrl-C after epoch 4 has 4 rows."""
    from treegrad.run.prepare import prepare
    from treegrad.run.runlog import RunLog
    from treegrad.run.train import run as run_prepared

    prep = prepare(xor, overrides={"epochs": 50})
    log = RunLog(Path("run1"))
    seen: list[int] = []

    def progress(epoch: int, *_: Any) -> None:
        if epoch:
            seen.append(len(_rows(Path("run1/metrics.csv"))))  # on disk already, before the next epoch
        if epoch == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_prepared(prep, progress=progress, log=log)
    assert seen == [1, 2, 3, 4]
    assert len(_rows(Path("run1/metrics.csv"))) == 4


def test_shell_completion_is_offered() -> None:
    r = run("--help")
    assert "--install-completion" in r.output


def test_a_narrow_terminal_still_writes_the_run_log(xor: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Below render.NARROW columns training shows no bar; --log-dir (and --engine) must still be honoured.
    from treegrad.cli import render

    monkeypatch.setattr(render.err, "_width", render.NARROW - 20)
    assert render.err.width < render.NARROW
    r = run("train", str(xor), "--epochs", "4", "--log-dir", "narrow", "-o", "n.model.json")
    assert r.exit_code == 0, r.output
    assert [int(row["epoch"]) for row in _rows(Path("narrow/metrics.csv"))] == [1, 2, 3, 4]
