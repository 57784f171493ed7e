"""Leftovers of provenance: a resumed run records its own command beside the runs it continues,
a sweep's best model records the command that trains it again, a run started from another
model's parameters (`--init-from`) says so in its resolved spec and its record, and model files'
lists of names are shortened by the one rule (`errors.listed`). Each card's commands are run
again to check that they give the same parameters bit for bit."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from treegrad import cli
from treegrad.cli import app, program
from treegrad.run.modelfile import load
from treegrad.run.provenance import quoted

runner = CliRunner()

SPEC = """\
inputs: [u, v]
target: t
data: d.csv
layers: [{linear: 3, activation: tanh}, {linear: 1}]
training: {epochs: 8, optimizer: adam, learning_rate: 0.05, batch_size: 4, validation_split: 0.25}
"""


def run(*args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def main(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    """Run treegrad as a program (so that it records its command line), in the current folder."""
    monkeypatch.setattr(sys, "argv", ["treegrad", *args])
    monkeypatch.setattr(program, "command_line", None)  # main() sets it: restored after the test
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code in (0, None)


@pytest.fixture()
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rows = [[x / 5, (x * 7) % 5 - 2.0] for x in range(-15, 16)]
    (tmp_path / "d.csv").write_text("u,v,t\n" + "".join(f"{u},{v},{2 * u - v + 0.5}\n" for u, v in rows))
    (tmp_path / "m.yaml").write_text(SPEC)
    monkeypatch.chdir(tmp_path)
    # as in-process commands have it (a test before may have run main)
    monkeypatch.setattr(program, "command_line", None)
    return tmp_path


def card_commands(model: str) -> str:
    r = run("card", model)
    assert r.exit_code == 0, r.output
    return str(r.stdout.split("## Reproduce\n")[1].split("```sh\n")[1].split("\n```")[0])


def shell(folder: Path, commands: str) -> None:
    """Run a card's commands as a user would paste them, with this treegrad on the PATH."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(commands, shell=True, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def parameters(path: Path) -> dict[str, float]:
    return dict(json.loads(path.read_text())["parameters"])


# ----------------------------------------------------------------- a resumed run


def test_a_resumed_run_records_its_command_and_the_run_it_continues(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    main(monkeypatch, "train", "m.yaml", "--epochs", "6", "-o", "half.json", "-q")
    main(monkeypatch, "train", "--resume", "half.json", "--epochs", "4", "-q")
    half, rest = load(folder / "half.json").record, load(folder / "half.resumed.json").record
    assert half.provenance is not None and rest.provenance is not None and rest.lineage is not None
    assert rest.provenance.command == ["treegrad", "train", "--resume", "half.json", "--epochs", "4", "-q"]
    assert rest.provenance.cwd == str(folder)
    assert rest.provenance.data == half.provenance.data  # the data as the run first read it
    assert rest.lineage.continues == [half.provenance] and rest.lineage.init_from is None
    r = run("card", "half.resumed.json")
    assert "| continues | `cd " in r.stdout and "treegrad train m.yaml --epochs 6 -o half.json -q` |" in r.stdout
    commands = card_commands("half.resumed.json")
    assert commands.splitlines()[1].endswith("treegrad train --resume half.json --epochs 4 -q")
    assert "each `--resume` that continued it" in r.stdout

    # Resumed again: both earlier runs are listed, first to last; run again, they give the same model.
    main(monkeypatch, "train", "--resume", "half.resumed.json", "--epochs", "2", "-o", "end.json", "-q")
    end = load(folder / "end.json").record
    assert end.lineage is not None and end.lineage.continues == [half.provenance, rest.provenance]
    commands = card_commands("end.json")
    assert len(commands.splitlines()) == 3
    first = parameters(folder / "end.json")
    for name in ("half.json", "half.resumed.json", "end.json"):
        (folder / name).unlink()
    shell(folder, commands)
    assert parameters(folder / "end.json") == first  # bit for bit


def test_a_resume_of_a_run_without_a_command_line_says_what_it_cannot_reproduce(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = run("train", "m.yaml", "--epochs", "4", "-o", "half.json", "-q")  # in-process: no command line
    assert r.exit_code == 0, r.output
    main(monkeypatch, "train", "--resume", "half.json", "--epochs", "4", "-q")
    card = run("card", "half.resumed.json").stdout
    text = " ".join(card.split("## Reproduce\n")[1].split())
    assert "No command line was recorded for the run it continues" in text
    assert "its history above is that of 2 commands together" in text
    assert "The commands recorded:" in text and "treegrad train --resume half.json --epochs 4 -q" in text
    assert "| continues | a run with no recorded command line |" in card


# ----------------------------------------------------------------- a sweep's best model


def test_a_sweeps_best_model_records_the_command_that_trains_it_again(folder: Path) -> None:
    r = run(
        "sweep", "m.yaml", "--grid", "training.learning_rate=0.05,0.02", "--grid", "layers.0.linear=2,3",
        "--grid", "training.optimizer=adam,momentum", "--seeds", "2", "--best-out", "best.json", "--csv", "r.csv",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    best = load(folder / "best.json").record
    p = best.provenance
    assert p is not None and p.command is not None and p.cwd == str(folder)
    rate, optimizer = best.training.learning_rate, best.training.optimizer
    assert p.command[:3] == ["treegrad", "train", "m.yaml"] and p.command[-4:] == [
        "--seed", str(best.training.seed), "-o", "best.json"
    ]  # fmt: skip
    assert f"training.learning_rate={rate!r}" in p.command and f"training.optimizer={optimizer}" in p.command
    assert sum(arg.startswith("layers.0.linear=") for arg in p.command) == 1
    commands = card_commands("best.json")
    assert commands == f"cd {quoted([str(folder)])} && {quoted(p.command)}"
    first = parameters(folder / "best.json")
    (folder / "best.json").unlink()
    shell(folder, commands)
    assert parameters(folder / "best.json") == first  # bit for bit


def test_a_grid_value_is_written_as_set_reads_it_back() -> None:
    from treegrad.run.sweep import setting
    from treegrad.spec.reading import read_value

    for value in [0.1, 1e-05, 16, True, "adam", "0.1", "yes", {"type": "step", "gamma": 0.5}, [1, 2], None]:
        back = read_value(setting(value), "--set")
        assert back == value and type(back) is type(value), (value, setting(value))
    assert setting("0.1") == '"0.1"' and setting(0.1) == "0.1"


# ----------------------------------------------------------------- a run started from another model


def test_a_run_started_from_another_model_says_so_in_its_record_its_resolved_spec_and_its_card(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    main(monkeypatch, "train", "m.yaml", "--epochs", "5", "-o", "first.json", "-q")
    sha = hashlib.sha256((folder / "first.json").read_bytes()).hexdigest()
    r = run("train", "m.yaml", "--init-from", "first.json", "--epochs", "3", "--print-config")
    assert r.exit_code == 0, r.output
    where = str(folder / "first.json")
    assert r.stdout.startswith(f"# This run started from the parameters of {where}, not from the spec's own")
    assert f"# again with --init-from {where} (the same" in r.stdout
    resolved = yaml.safe_load(r.stdout)
    assert "init_from" not in resolved and resolved["training"]["epochs"] == 3  # still a spec: train reads it

    args = ["train", "m.yaml", "--init-from", "first.json", "--epochs", "3", "-o", "tuned.json", "--log-dir", "run"]
    main(monkeypatch, *args, "-q")
    assert (folder / "run" / "spec.yaml").read_text().startswith("# This run started from the parameters of")
    tuned = load(folder / "tuned.json").record
    assert tuned.lineage is not None and tuned.lineage.init_from == where and tuned.lineage.init_sha256 == sha
    card = run("card", "tuned.json").stdout
    assert f"| started from | the parameters of `{where}` (SHA-256 `{sha}`) |" in card
    assert f"It started from the parameters of `{where}` (SHA-256 `{sha}`), which must" in " ".join(card.split())
    commands = card_commands("tuned.json")
    assert "--init-from first.json" in commands
    first = parameters(folder / "tuned.json")
    (folder / "tuned.json").unlink()
    shell(folder, commands + " --force")  # --force: the run folder is there already
    assert parameters(folder / "tuned.json") == first  # bit for bit

    # Resumed, the run keeps where it began.
    main(monkeypatch, "train", "--resume", "tuned.json", "--epochs", "2", "-q")
    resumed = load(folder / "tuned.resumed.json").record
    assert resumed.lineage is not None and resumed.lineage.init_from == where and len(resumed.lineage.continues) == 1
    card = " ".join(run("card", "tuned.resumed.json").stdout.split())
    assert f"Its first run started from the parameters of `{where}`" in card


# ----------------------------------------------------------------- lists of names in model files' messages


def test_a_model_files_lists_of_names_are_shortened_by_the_one_rule(folder: Path) -> None:
    """modelfile names its lists as every message does (errors.listed: the first 8, the last 2 and
    the count past 12), where it had a rule of its own (the first 10 and '...')."""
    names = [f"x{i}" for i in range(14)]
    rows = [[(i * (j + 3)) % 7 for j in range(14)] for i in range(20)]
    (folder / "w.csv").write_text(
        ",".join([*names, "y"]) + "\n" + "".join(",".join(map(str, [*r, sum(r)])) + "\n" for r in rows)
    )
    (folder / "w.yaml").write_text(
        "inputs: all\ntarget: y\ndata: w.csv\nlayers: [{linear: 1}]\ntraining: {epochs: 1, normalize: true}\n"
    )
    r = run("train", "w.yaml", "-o", "w.json", "-q")
    assert r.exit_code == 0, r.output
    doc = json.loads((folder / "w.json").read_text())
    doc["normalization"] = {f"q{i:02}": [0.0, 1.0] for i in range(14)}
    (folder / "w.json").write_text(json.dumps(doc))
    r = run("show", "w.json")
    assert r.exit_code == 1
    text = " ".join(r.output.split())
    assert "it normalises q00, q01, q02, q03, q04, q05, q06, q07, ..., q12, q13 (14 in all) but the model's" in text
    assert "inputs are x0, x1, x2, x3, x4, x5, x6, x7, ..., x12, x13 (14 in all)" in text


def test_an_unknown_name_lists_the_names_in_scope_shortened(tmp_path: Path) -> None:
    """A spec of 64 inputs: the names in scope are listed as every list of names is (errors.listed)."""
    from treegrad.errors import SpecError
    from treegrad.spec.build import build_model
    from treegrad.spec.models import parse_spec

    inputs = ", ".join(f"x{i}" for i in range(64))
    text = f"inputs: [{inputs}]\noutput: {{add: [x0, xx1]}}\n"
    with pytest.raises(SpecError) as e:
        build_model(parse_spec(text, "wide.yaml"))
    assert "Names in scope: x0, x1, x2, x3, x4, x5, x6, x7, ..., x62, x63 (64 in all) (and param)" in str(e.value)
