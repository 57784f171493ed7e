"""Bounded and safe under misuse, round three (issue 24, the bounds part): whatever a user sets
is read back from the model file; sweeps, workers, classes and simplify's epochs are bounded
before any work; a wide layer costs work in proportion to its size."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from treegrad.errors import SpecError
from treegrad.spec.models import parse_spec
from treegrad.spec.settings import load

MODELS = Path(__file__).resolve().parent.parent / "models"
runner = CliRunner()


def run(*args: str) -> Any:
    from treegrad.cli.commands import app

    return runner.invoke(app, list(args))


@pytest.fixture
def xor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "xor.yaml"
    shutil.copy(MODELS / "xor.yaml", spec)
    return spec


# Every character YAML reads as a line break, and those that start a comment or a key.
BREAKS = ["\n", "\r", "\x85", "\u2028", "\u2029", "#", ":", " ", "'", '"']


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(alphabet=st.characters(blacklist_categories=["Cs"]) | st.sampled_from(BREAKS)))
@example(value="a\nname: x")
@example(value="a\rname: x")
@example(value="a\u2028name: x")
@example(value="a\x85name: x")
@example(value="1e5")  # YAML 1.1 (PyYAML's writer) writes it bare; the spec reader (1.2) reads a number
@example(value="nan")
def test_any_text_set_reads_back_from_the_spec_text_written(xor: Path, value: str) -> None:
    try:
        spec, text = load(xor, [(("description",), value)])
    except SpecError:
        return  # refused with a message: nothing is written
    again = parse_spec(text, "model file")
    assert again.description == value and again.name == spec.name == "xor"


@pytest.mark.parametrize("value", ['"a\\nname: x"', '"a\\u2028name: x"', '"a\\rb"'])
def test_a_model_trained_with_a_line_break_set_opens_again(xor: Path, value: str) -> None:
    r = run("train", str(xor), "--set", f"description={value}", "--epochs", "2", "-q", "-o", "a.model.json")
    assert r.exit_code == 0, r.output
    for command in (["show", "a.model.json"], ["predict", "a.model.json", "0", "1"]):
        shown = run(*command)
        assert shown.exit_code == 0, shown.output
    resumed = run("train", "--resume", "a.model.json", "--epochs", "1", "-q", "-o", "b.model.json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(Path("b.model.json").read_text())["name"] == "xor"


def test_the_resolved_spec_of_a_run_reads_back_as_the_spec_trained(xor: Path) -> None:
    # `yes` is text to a spec (YAML 1.2); the run folder's spec.yaml read it as YAML 1.1's true.
    text = xor.read_text()
    xor.write_text(text.replace("description: a small MLP (8 tanh units) for the XOR pattern", "description: yes"))
    r = run("train", str(xor), "--epochs", "1", "-q", "--log-dir", "run")
    assert r.exit_code == 0, r.output
    again = parse_spec(Path("run/spec.yaml").read_text(), "run/spec.yaml")
    assert again.description == "yes" and again.inputs == ["x", "y"]


# ----------------------------------------------------------------- classes (item 10)


def test_a_softmax_over_3000_outputs_compiles_flat() -> None:
    # The softmax's sum and its gradient's dot product were one `a + b + ...` expression, which
    # Python's compiler nests as deep as it is long: RecursionError at about 3,000 classes.
    import random

    from treegrad import Input, Linear, Output, Softmax, fit
    from treegrad.engine.compiled import predict_many

    x = Input("x")
    model = Softmax([Linear([x], units=3000, rng=random.Random(0))])
    out = predict_many(model, [[0.5], [-1.0]])
    assert len(out[0]) == 3000 and abs(sum(out[0]) - 1) < 1e-9
    history = fit(model, [[0.5], [-1.0]], [0, 2999], loss="cross_entropy", epochs=1, engine="compiled")
    assert len(history) == 1
    wide = Output([x * float(k) for k in range(3000)])  # a list output's mean loss over 3,000 elements
    fit(wide, [[0.5]], [[0.0] * 3000], epochs=1, engine="compiled")


def test_more_classes_than_the_limit_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from treegrad.limits import MAX_CLASSES

    monkeypatch.chdir(tmp_path)
    n = MAX_CLASSES + 1
    Path("many.csv").write_text("x,label\n" + "".join(f"{i},c{i}\n" for i in range(n)))
    Path("m.yaml").write_text("inputs: [x]\nlayers: [{linear: 3}, {softmax: true}]\ntarget: label\n")
    r = run("train", "m.yaml", "--data", "many.csv", "-q")  # the data's count, before the width's mismatch
    assert r.exit_code == 1 and f"{n:,} classes" in r.output and f"{MAX_CLASSES:,}" in r.output, r.output
    assert "internal error" not in r.output and not Path("m.model.json").exists()
    Path("w.yaml").write_text(f"inputs: [x]\nlayers: [{{linear: {n}}}, {{softmax: true}}]\ntarget: label\n")
    r = run("check", "w.yaml", "--data", "many.csv")  # the spec's width, before the data is read
    assert r.exit_code == 1 and "w.yaml:2:19: layers[0].linear" in r.output and f"{n:,} outputs" in r.output, r.output
