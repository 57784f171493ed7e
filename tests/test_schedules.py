"""Every entry of the schedule table (engine/schedules.py) taken through what reads it: the spec's
choices and messages, the JSON Schema, the rate of each epoch in treegrad's engine and in torch's,
and `--resume` (bit for bit, or refused with the schedule's own reason). A new schedule is one
class marked `@schedule`; these tests take it through with no edit."""

from __future__ import annotations

import importlib.util
import math
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import treegrad as tg
from treegrad.engine.schedules import SCHEDULES, Scheduler
from treegrad.errors import SpecError
from treegrad.spec.build import build_model
from treegrad.spec.models import parse_spec, spec_schema

NAMES = list(SCHEDULES)
SRC = Path(tg.__file__).parent

MLP = """
inputs: [x, y]
layers:
  - {linear: 3, activation: tanh}
  - {linear: 1, activation: none}
"""


def data(n: int = 16) -> tuple[list[list[float]], list[float]]:
    rng = random.Random(3)
    X = [[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(n)]
    return X, [x - 2 * y + 0.5 for x, y in X]


def spec_with(schedule: str) -> str:
    return MLP + f"training:\n  lr_schedule: {schedule}\n"


@pytest.mark.parametrize("name", NAMES)
def test_the_spec_takes_each_schedule_with_its_defaults(name: str) -> None:
    spec = parse_spec(spec_with(f"{{type: {name}}}"))
    assert spec.training.lr_schedule == SCHEDULES[name]()
    assert spec.training.lr_schedule is not None and spec.training.lr_schedule.model_dump()["type"] == name


@pytest.mark.parametrize("name", NAMES)
def test_an_unknown_key_names_the_schedules_own_keys(name: str) -> None:
    with pytest.raises(SpecError) as e:
        parse_spec(spec_with(f"{{type: {name}, nonesuch: 1}}"))
    allowed = ", ".join(SCHEDULES[name].model_fields)
    assert f"unknown key 'nonesuch' for a {name} schedule" in str(e.value) and allowed in str(e.value)


def test_an_unknown_type_lists_every_schedule() -> None:
    with pytest.raises(SpecError, match=r"\{type: " + "|".join(NAMES)):
        parse_spec(spec_with("{type: nonesuch}"))


def test_the_schema_offers_every_schedule() -> None:
    text = str(spec_schema())
    assert all(f"'{name}'" in text for name in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_a_schedule_starts_at_the_base_rate_and_stays_positive(name: str) -> None:
    s = Scheduler(SCHEDULES[name](), 0.3, 40)
    rates = []
    for epoch in range(1, 41):
        rates.append(s.rate(epoch))
        s.observe(1.0)  # a loss that never improves: a schedule that follows the loss moves
    assert rates[0] == 0.3
    assert all(math.isfinite(r) and 0 <= r <= 0.3 for r in rates)


def engines() -> list[Any]:
    """Treegrad's engine, and torch's (a case that skips, saying why, without torch)."""
    return ["treegrad", pytest.param("torch", marks=pytest.mark.skipif(not _has_torch(), reason="torch not installed"))]


def _has_torch() -> bool:
    return importlib.util.find_spec("torch") is not None


@pytest.mark.parametrize("engine", engines())
@pytest.mark.parametrize("name", NAMES)
def test_each_engine_trains_at_the_schedules_rates(name: str, engine: str) -> None:
    X, y = data()
    schedule = SCHEDULES[name]()
    s = Scheduler(schedule, 0.05, 6)
    model = build_model(parse_spec(MLP), seed=1)
    kw: dict[str, Any] = {"epochs": 6, "learning_rate": 0.05, "batch_size": 4, "lr_schedule": schedule}
    if engine == "treegrad":
        hist = tg.fit(model, X, y, **kw)
    else:
        from treegrad.torch.trainer import fit as torch_fit

        hist = torch_fit(model, X, y, loss="mse", **kw)
    expected = []
    for epoch, loss in enumerate(hist, start=1):
        expected.append(s.rate(epoch))
        s.observe(loss)
    assert hist.learning_rates == expected


@pytest.mark.parametrize("name", NAMES)
def test_a_run_resumes_bit_for_bit_or_is_refused_with_the_schedules_reason(name: str, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from treegrad.cli import app

    rng = random.Random(11)
    rows = "\n".join(
        f"{a!r},{b!r},{3 * a - b!r}" for a, b in ((rng.uniform(-2, 2), rng.uniform(0, 2)) for _ in range(20))
    )
    (tmp_path / "d.csv").write_text("a,b,y\n" + rows + "\n")
    spec = tmp_path / "m.yaml"
    spec.write_text(
        "inputs: [a, b]\nlayers:\n  - {linear: 3, activation: tanh}\n  - {linear: 1, activation: none}\n"
        f"data: d.csv\ntarget: y\ntraining:\n  epochs: 4\n  batch_size: 4\n  lr_schedule: {{type: {name}}}\n"
    )
    runner = CliRunner()

    def train(*args: str) -> Any:
        return runner.invoke(app, ["train", *args, "-q"])

    assert train(str(spec), "-o", str(tmp_path / "half.json")).exit_code == 0
    resumed = train("--resume", str(tmp_path / "half.json"), "--epochs", "4", "-o", str(tmp_path / "rest.json"))
    why = SCHEDULES[name]().why_not_resumable(4)
    if why is None:
        assert resumed.exit_code == 0, resumed.output
        assert train(str(spec), "--epochs", "8", "-o", str(tmp_path / "whole.json")).exit_code == 0
        from treegrad.run.modelfile import load

        assert load(tmp_path / "rest.json").record.parameters == load(tmp_path / "whole.json").record.parameters
    else:
        assert resumed.exit_code != 0
        assert " ".join(why.split()[:6]) in " ".join(resumed.output.split())


NEW = """

@schedule
class HalvingSchedule(_Schedule):
    \"\"\"Halve the learning rate every epoch.\"\"\"

    type: Literal["halving"] = "halving"

    def rate(self, lr: float, epoch: int, epochs: int, current: float) -> float:
        \"\"\"lr / 2 ** (epoch - 1).\"\"\"
        return lr / 2 ** (epoch - 1)

"""

CHECK = """
import treegrad as tg
from treegrad.spec.build import build_model
from treegrad.spec.models import parse_spec
text = "inputs: [x]\\noutput: {add: [{mul: [param, x]}, param]}\\n"
spec = parse_spec(text + "training: {lr_schedule: {type: halving}}\\n")
m = build_model(spec, seed=1)
h = tg.fit(m, [[1.0], [2.0]], [2.0, 4.0], epochs=3, learning_rate=0.1, lr_schedule=spec.training.lr_schedule)
assert h.learning_rates == [0.1, 0.05, 0.025], h.learning_rates
"""


def test_a_new_schedule_is_one_class(tmp_path: Path) -> None:
    """A schedule written into a copy of the package as one class is a spec choice and trains at its rates."""
    copy = tmp_path / "treegrad"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    module = copy / "engine" / "schedules.py"
    text = module.read_text(encoding="utf-8")
    at = text.index("\nif TYPE_CHECKING:")
    module.write_text(text[:at] + NEW + text[at:], encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
