"""Training cut in two and continued gives the parameters and history of one uninterrupted run,
bit for bit: in the library (`fit(start_epoch=, state=)`), for every optimizer, per sample and in
batches, and through the command line (`train --resume`), with what cannot continue so refused;
and a new run started from a model's parameters (`train SPEC --init-from`)."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import treegrad as tg
from treegrad.cli import app
from treegrad.engine.optim import OPTIMIZERS
from treegrad.engine.schedules import StepSchedule
from treegrad.errors import TrainingError
from treegrad.run.modelfile import load
from treegrad.spec.build import build_model
from treegrad.spec.models import parse_spec

MLP = """
inputs: [x, y]
layers:
  - {linear: 4, activation: tanh}
  - {linear: 1, activation: none}
"""


def data(n: int = 24) -> tuple[list[list[float]], list[float]]:
    rng = random.Random(5)
    X = [[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(n)]
    return X, [x * y + 0.5 * x for x, y in X]


def model() -> Any:
    return build_model(parse_spec(MLP), seed=1)


def params(m: Any) -> list[float]:
    return m.compiled_graph.param_values()


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("batch_size", [1, 5])  # per sample; mini-batches (the vectorized trainer)
def test_fifty_and_fifty_more_is_one_run_of_a_hundred(optimizer: str, batch_size: int) -> None:
    X, y = data()
    kw: dict[str, Any] = {"optimizer": optimizer, "batch_size": batch_size, "learning_rate": 0.02}
    kw |= {"shuffle": True, "seed": 7, "lr_schedule": StepSchedule(step_size=30, gamma=0.5)}
    whole = model()
    h100 = tg.fit(whole, X, y, epochs=100, **kw)
    cut = model()
    h50 = tg.fit(cut, X, y, epochs=50, **kw)
    assert params(cut) != params(whole)
    h_rest = tg.fit(cut, X, y, epochs=50, start_epoch=50, state=h50.state, **kw)
    assert params(cut) == params(whole)  # bit for bit
    assert [*h50, *h_rest] == list(h100) and len(h100) == 100
    assert [*h50.learning_rates, *h_rest.learning_rates] == h100.learning_rates
    assert h_rest.state == h100.state


def test_without_the_optimizer_state_adam_differs() -> None:
    """The state matters: continuing Adam from fresh moments is another run (the test can fail)."""
    X, y = data()
    kw: dict[str, Any] = {"optimizer": "adam", "learning_rate": 0.02, "shuffle": True, "seed": 7}
    whole, cut = model(), model()
    tg.fit(whole, X, y, epochs=20, **kw)
    tg.fit(cut, X, y, epochs=10, **kw)
    tg.fit(cut, X, y, epochs=10, start_epoch=10, **kw)
    assert params(cut) != params(whole)


def test_a_state_of_another_optimizer_is_refused() -> None:
    X, y = data()
    h = tg.fit(model(), X, y, epochs=2, optimizer="sgd")
    assert h.state is not None and h.state[0] == []
    with pytest.raises(TrainingError, match="optimizer state does not fit"):
        tg.fit(model(), X, y, epochs=2, optimizer="adam", start_epoch=2, state=h.state)


# ----------------------------------------------------------------- through the command line

runner = CliRunner()

SPEC = """\
name: wave
inputs: [a, b]
layers:
  - {linear: 5, activation: tanh}
  - {linear: 1, activation: none}
data: wave.csv
target: y
training:
  epochs: 100
  learning_rate: 0.01
  batch_size: 4
  validation_split: 0.25
  normalize: true
  seed: 3
"""


def cli(*args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def flat(output: str) -> str:
    """A message as one line: a usage error is drawn in a box, wrapped at the terminal's width."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", output).split())


def write_data(folder: Path, n: int = 40, change: float = 0.0) -> Path:
    rng = random.Random(11)
    rows = [(rng.uniform(-2, 2), rng.uniform(0, 5)) for _ in range(n)]
    lines = ["a,b,y"] + [f"{a!r},{b!r},{3 * a - b * b + 10 + change!r}" for a, b in rows]
    path = folder / "wave.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def setup(folder: Path, settings: str = "") -> Path:
    """The spec (with `settings` added under training:) and its data, in `folder`."""
    write_data(folder)
    spec = folder / "wave.yaml"
    spec.write_text(SPEC + "".join(f"  {line}\n" for line in settings.splitlines()))
    return spec


def trained(spec: Path, out: Path, *more: str) -> dict[str, Any]:
    result = cli("train", spec, "-o", out, "--quiet", *more)
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


RUNS = {
    "momentum": "optimizer: momentum",  # normalize: the target of this regression is standardised too
    "adam, step schedule, l2": "optimizer: adam\nlr_schedule: {type: step, step_size: 30, gamma: 0.5}\nl2: 0.001",
    # The file keeps the best epoch's parameters, and the last epoch's to go on from (issue 26).
    "adam, early stopping": "optimizer: adam\nearly_stopping: {patience: 60}",
}


@pytest.mark.parametrize("settings", RUNS.values(), ids=RUNS.keys())
def test_cli_fifty_then_resume_fifty_is_one_run_of_a_hundred(tmp_path: Path, settings: str) -> None:
    spec = setup(tmp_path, settings)
    whole = trained(spec, tmp_path / "whole.json")
    half = trained(spec, tmp_path / "half.json", "--epochs", "50")
    assert half["parameters"] != whole["parameters"] and half["resume"]["epochs"] == 50
    result = cli("train", "--resume", tmp_path / "half.json", "--epochs", "50", "-o", tmp_path / "rest.json", "-q")
    assert result.exit_code == 0, result.output
    rest = json.loads((tmp_path / "rest.json").read_text())
    assert rest["parameters"] == whole["parameters"]  # bit for bit
    assert rest["history"] == whole["history"] and len(rest["history"]["train"]) == 100
    assert len(rest["history"]["validation"]) == 100
    assert rest["metrics"] == whole["metrics"] and rest["resume"] == whole["resume"]
    assert rest["training"]["epochs"] == 100 and rest["normalization"] == whole["normalization"]
    if "schedule" in settings:
        assert len(rest["history"]["learning_rates"]) == 100 and len(rest["history"]["penalty"]) == 100


def test_resume_twice_and_the_default_output(tmp_path: Path) -> None:
    """Without -o the run goes to MODEL.resumed.json and the model read stays as it was;
    a resumed run resumes again (20 + 10 + 10 == 40)."""
    spec = setup(tmp_path, "optimizer: adam")
    whole = trained(spec, tmp_path / "whole.json", "--epochs", "40")
    trained(spec, tmp_path / "m.json", "--epochs", "20")
    before = (tmp_path / "m.json").read_bytes()
    result = cli("train", "--resume", tmp_path / "m.json", "--epochs", "10", "-q")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m.json").read_bytes() == before
    assert (tmp_path / "m.resumed.json").exists()
    result = cli("train", "--resume", tmp_path / "m.resumed.json", "-q")  # default: as many again (30 + 30)
    assert result.exit_code == 0, result.output
    again = json.loads((tmp_path / "m.resumed.resumed.json").read_text())
    assert len(again["history"]["train"]) == 60
    result = cli("train", "--resume", tmp_path / "m.resumed.json", "--epochs", "10", "-o", tmp_path / "r.json", "-q")
    assert json.loads((tmp_path / "r.json").read_text())["parameters"] == whole["parameters"]


def test_resume_finds_moved_data_with_the_data_option(tmp_path: Path) -> None:
    """--data may say where the same rows are now; they are checked to be the same."""
    spec = setup(tmp_path, "optimizer: momentum")
    whole = trained(spec, tmp_path / "whole.json", "--epochs", "20")
    trained(spec, tmp_path / "m.json", "--epochs", "10")
    moved = tmp_path / "elsewhere.csv"
    (tmp_path / "wave.csv").rename(moved)
    result = cli("train", "--resume", tmp_path / "m.json", "--epochs", "10", "-o", tmp_path / "r.json", "-q")
    assert result.exit_code == 1 and "pass the data with --data" in flat(result.output)
    result = cli("train", "--resume", tmp_path / "m.json", "--epochs", "10", "--data", moved, "-o", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r.json").read_text())["parameters"] == whole["parameters"]


REFUSED_RUNS = {
    "cosine": ("lr_schedule: {type: cosine}", "cosine schedule spreads the learning rate over its 10 epochs"),
    "plateau": ("lr_schedule: {type: plateau}", "plateau schedule"),
}


@pytest.mark.parametrize(("settings", "reason"), REFUSED_RUNS.values(), ids=REFUSED_RUNS.keys())
def test_runs_that_cannot_go_on_bit_for_bit_are_refused(tmp_path: Path, settings: str, reason: str) -> None:
    spec = setup(tmp_path, settings)
    record = trained(spec, tmp_path / "m.json", "--epochs", "10")
    assert record["resume"] is None  # nothing kept that cannot be used
    result = cli("train", "--resume", tmp_path / "m.json", "--epochs", "10")
    assert result.exit_code == 1, result.output
    assert "cannot be resumed" in result.output and reason in flat(result.output)
    assert "--init-from" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "wave.csv", "wave.yaml"]


def test_a_run_that_stopped_early_is_not_resumed(tmp_path: Path) -> None:
    """A longer run would stop at the same epoch: there is no run to go on with."""
    spec = setup(tmp_path, "optimizer: adam\nearly_stopping: {patience: 1}")
    record = trained(spec, tmp_path / "m.json", "--learning-rate", "0.5")
    assert record["history"]["stopped_early"] and record["resume"] is None
    stopped = len(record["history"]["train"])
    result = cli("train", "--resume", tmp_path / "m.json", "--epochs", "10")
    assert result.exit_code == 1 and f"it stopped early after {stopped} epochs" in flat(result.output)
    assert "--init-from" in result.output


def test_an_interrupted_run_is_not_resumable() -> None:
    from treegrad.engine.settings import Training
    from treegrad.run.resume import why_not_resumable

    assert why_not_resumable(Training(epochs=10), 10, False) is None
    assert why_not_resumable(Training(epochs=10), 7, False) == "it stopped after 7 of its 10 epochs (interrupted)"
    step = Training.model_validate({"lr_schedule": {"type": "exponential", "gamma": 0.9}})
    assert why_not_resumable(step, 100, False) is None


OPTIONS_THAT_CHANGE_THE_RUN = {
    "a spec": (["SPEC"], "SPEC"),
    "optimizer": (["--optimizer", "adam"], "--optimizer"),
    "seed": (["--seed", "4"], "--seed"),
    "set": (["--set", "training.learning_rate=0.5"], "--set"),
    "validation split": (["--validation-split", "0.5"], "--validation-split"),
    "target": (["--target", "a"], "--target"),
    "init-from": (["--init-from", "MODEL"], "--init-from"),
}


@pytest.mark.parametrize(("extra", "named"), OPTIONS_THAT_CHANGE_THE_RUN.values(), ids=OPTIONS_THAT_CHANGE_THE_RUN)
def test_resume_with_options_that_change_the_run_is_a_usage_error(tmp_path: Path, extra: list[str], named: str) -> None:
    spec = setup(tmp_path)
    model = tmp_path / "m.json"
    trained(spec, model, "--epochs", "3")
    extra = [str(spec) if e == "SPEC" else str(model) if e == "MODEL" else e for e in extra]
    result = cli("train", "--resume", model, *extra, "-o", tmp_path / "out.json")
    assert result.exit_code == 2, result.output
    assert f"{named} would make it another run" in flat(result.output)
    assert not (tmp_path / "out.json").exists()


def test_train_needs_a_spec_or_resume() -> None:
    result = cli("train")
    assert result.exit_code == 2 and "--resume MODEL.json" in flat(result.output)


def test_resume_refuses_other_data_and_its_own_file(tmp_path: Path) -> None:
    spec = setup(tmp_path, "optimizer: adam")
    model = tmp_path / "m.json"
    trained(spec, model, "--epochs", "5")
    before = model.read_bytes()
    result = cli("train", "--resume", model, "-o", model)  # the file being read
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert model.read_bytes() == before
    result = cli("train", "--resume", model, "--epochs", "0")
    assert result.exit_code == 1 and "the number of epochs to add, from 1" in flat(result.output)
    write_data(tmp_path, change=1e-9)  # the same rows, one value changed a little
    result = cli("train", "--resume", model, "-o", tmp_path / "r.json")
    assert result.exit_code == 1, result.output
    assert "not the same: it has as many rows, but not the same values" in flat(result.output)
    write_data(tmp_path, n=44)
    result = cli("train", "--resume", model, "-o", tmp_path / "r.json")
    assert result.exit_code == 1, result.output
    assert "40 rows (30 training, 10 validation)" in flat(result.output) and "it has 44 rows" in flat(result.output)
    assert "--init-from" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "wave.csv", "wave.yaml"]


def test_a_model_file_without_the_resume_state_loads_and_says_it_cannot_be_resumed(tmp_path: Path) -> None:
    """Files written before the field existed (no `resume` key at all) are version 1 files."""
    spec = setup(tmp_path)
    record = trained(spec, tmp_path / "m.json", "--epochs", "3")
    del record["resume"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(record))
    loaded = load(old)
    assert loaded.record.resume is None and loaded.record.parameters == record["parameters"]
    result = cli("predict", old, "a=1", "b=2")
    assert result.exit_code == 0, result.output
    result = cli("train", "--resume", old)
    assert result.exit_code == 1, result.output
    assert "records no optimizer state" in flat(result.output) and f"--init-from {old}" in flat(result.output)
    assert not (tmp_path / "old.resumed.json").exists()


def test_simplified_models_do_not_keep_the_runs_state(tmp_path: Path) -> None:
    """A simplified model is another model: the run's optimizer state is not its own (the
    full model, row 0 of the front, is the trained one and keeps it)."""
    (tmp_path / "lin.yaml").write_text(
        "inputs: [a, b]\noutput: {add: [{mul: [param, a]}, {mul: [param, b]}, param]}\n"
        "data: wave.csv\ntarget: y\ntraining: {epochs: 5, optimizer: adam}\n"
    )
    write_data(tmp_path)
    trained(tmp_path / "lin.yaml", tmp_path / "m.json")
    (tmp_path / "front").mkdir()
    result = cli(
        "simplify", tmp_path / "m.json", "-o", tmp_path / "s.json", "--epochs", "1", "--front", tmp_path / "front"
    )
    assert result.exit_code == 0, result.output
    front = sorted((tmp_path / "front").iterdir(), key=lambda p: int(p.name.split(".")[1]))
    assert len(front) > 1
    states = [json.loads(p.read_text())["resume"] for p in front]
    assert states[0] is not None and all(s is None for s in states[1:])


# ----------------------------------------------------------------- warm start: --init-from


def test_init_from_starts_at_the_models_parameters_and_statistics(tmp_path: Path) -> None:
    spec = setup(tmp_path, "optimizer: adam")
    model = trained(spec, tmp_path / "m.json", "--epochs", "20")
    write_data(tmp_path, n=30, change=5.0)  # new data: other statistics
    start = trained(spec, tmp_path / "w0.json", "--init-from", str(tmp_path / "m.json"), "--epochs", "0")
    assert start["parameters"] == model["parameters"]
    assert start["normalization"] == model["normalization"]  # the model's function, exactly
    assert start["target_normalization"] == model["target_normalization"]
    tuned = trained(spec, tmp_path / "w.json", "--init-from", str(tmp_path / "m.json"), "--epochs", "5")
    assert tuned["parameters"] != model["parameters"] and len(tuned["history"]["train"]) == 5
    assert tuned["resume"]["epochs"] == 5  # a new run: its own optimizer state from step 0
    assert tuned["resume"]["steps"] == 5 * 6  # 23 training rows in batches of 4: 6 steps an epoch


def test_init_from_a_model_of_other_parameters_names_them(tmp_path: Path) -> None:
    spec = setup(tmp_path)
    trained(spec, tmp_path / "m.json", "--epochs", "2")
    wider = tmp_path / "wider.yaml"
    wider.write_text(SPEC.replace("linear: 5", "linear: 7"))
    result = cli("train", wider, "--init-from", tmp_path / "m.json", "-o", tmp_path / "w.json")
    assert result.exit_code == 1, result.output
    text = flat(result.output)
    assert "its parameters are not the spec's: the spec has" in text and "the model file lacks" in text
    assert not (tmp_path / "w.json").exists()
    result = cli("train", spec, "--init-from", tmp_path / "m.json", "--no-normalize", "-o", tmp_path / "w.json")
    assert result.exit_code == 1, result.output
    assert "trained with standardised inputs and target" in flat(result.output)
    assert "normalize: true" in flat(result.output)
    result = cli("train", spec, "--init-from", tmp_path / "nothere.json", "-o", tmp_path / "w.json")
    assert result.exit_code == 1 and "no such model file" in result.output
    assert not (tmp_path / "w.json").exists()


def test_resume_in_a_real_process(tmp_path: Path) -> None:
    spec = setup(tmp_path, "optimizer: adam")
    whole = trained(spec, tmp_path / "whole.json", "--epochs", "12")
    trained(spec, tmp_path / "m.json", "--epochs", "6")
    proc = subprocess.run(
        [sys.executable, "-m", "treegrad", "train", "--resume", "m.json", "--epochs", "6", "--quiet"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "m.resumed.json"
    assert json.loads((tmp_path / "m.resumed.json").read_text())["parameters"] == whole["parameters"]


def test_a_tampered_optimizer_state_is_named_not_blamed_on_the_data(tmp_path: Path) -> None:
    """Issue 24: Adam's mean of squares set below 0 in a model file was resumed, and the first step's
    square root failed as 'math domain error' at a line of the CSV. A step from the recorded state is
    tried before the run goes on: the state is refused as the file's damage."""
    spec = tmp_path / "m.yaml"
    spec.write_text(MLP + "data: f2c:30\ntarget: c\ntraining: {epochs: 3, optimizer: adam}\n")
    spec.write_text(spec.read_text().replace("inputs: [x, y]", "inputs: [f]"))
    first = CliRunner().invoke(app, ["train", str(spec), "-o", str(tmp_path / "a.json"), "-q"])
    assert first.exit_code == 0, first.output
    record = json.loads((tmp_path / "a.json").read_text())
    v = record["resume"]["moments"]["v"]
    v[next(iter(v))] = -1.0
    (tmp_path / "b.json").write_text(json.dumps(record))
    result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "b.json"), "-o", str(tmp_path / "c.json")])
    assert result.exit_code == 1, result.output
    assert "its optimizer state is none a run can reach" in result.output and "math domain error" in result.output
    assert "line" not in result.output.split("math domain error")[0] and "edited or damaged" in result.output
