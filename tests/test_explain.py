"""explain: gradients and contributions from the model's own backward pass, checked by hand
(y = 3a - 2b + 1), by finite differences, and by completeness (contributions add up to
f(x) - f(baseline)) on smooth and piecewise-linear networks."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from treegrad import Add, Input, Linear, Multiply, Parameter, ReLU, Tanh
from treegrad.cli import app
from treegrad.interpret.explain import _Scalar, additive_terms, explain_row, importance, integrated_gradients

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]

LINEAR_SPEC = """\
name: lin
inputs: [a, b]
output: {add: [{mul: [param, a]}, {mul: [param, b]}, param]}
data: lin.csv
target: y
training: {epochs: 300, learning_rate: 0.05, optimizer: adam}
"""


def write_law(path: Path, n: int = 100, seed: int = 1) -> None:
    """Rows of y = 3a - 2b + 1, a and b uniform in [-2, 2]."""
    rng = random.Random(seed)
    lines = ["a,b,y"]
    for _ in range(n):
        a, b = rng.uniform(-2, 2), rng.uniform(-2, 2)
        lines.append(f"{a!r},{b!r},{3 * a - 2 * b + 1!r}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture()
def linear_model(tmp_path: Path) -> Path:
    write_law(tmp_path / "lin.csv")
    (tmp_path / "lin.yaml").write_text(LINEAR_SPEC)
    out = tmp_path / "lin.model.json"
    result = runner.invoke(app, ["train", str(tmp_path / "lin.yaml"), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return out


def test_linear_law_with_baseline_zero_gives_3_and_minus_2(linear_model: Path) -> None:
    result = runner.invoke(app, ["explain", str(linear_model), "a=1", "b=1", "--baseline", "zero", "--json"])
    assert result.exit_code == 0, result.output
    e = json.loads(result.output)
    assert e["inputs"] == ["a", "b"]
    assert e["contributions"] == pytest.approx([3.0, -2.0], abs=1e-6)
    assert e["gradient"] == pytest.approx([3.0, -2.0], abs=1e-6)
    assert e["gradient_x_input"] == pytest.approx([3.0, -2.0], abs=1e-6)
    assert e["method"] == "additive terms (exact)"
    assert e["completeness_error"] <= 1e-12
    assert sum(e["contributions"]) == pytest.approx(e["output"] - e["baseline_output"], abs=1e-12)
    table = runner.invoke(app, ["explain", str(linear_model), "1", "1", "--baseline", "zero"])
    assert table.exit_code == 0, table.output
    assert "contribution" in table.output and "additive terms (exact)" in table.output


def test_mean_baseline_is_the_training_mean(linear_model: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["explain", str(linear_model), "1", "1", "--json"])
    assert result.exit_code == 0, result.output
    e = json.loads(result.output)
    rows = [line.split(",") for line in (tmp_path / "lin.csv").read_text().split()[1:]]
    mean_a = sum(float(r[0]) for r in rows) / len(rows)
    assert e["baseline"][0] == pytest.approx(mean_a, abs=1e-12)
    assert e["contributions"][0] == pytest.approx(3.0 * (1.0 - mean_a), abs=1e-5)


def test_data_ranks_inputs_by_mean_absolute_contribution(linear_model: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["explain", str(linear_model), "--data", str(tmp_path / "lin.csv"), "--json"])
    assert result.exit_code == 0, result.output
    r = json.loads(result.output)
    assert [x["input"] for x in r["ranked"]] == ["a", "b"]  # |3| over the same spread beats |-2|
    ratio = r["ranked"][0]["mean_abs_contribution"] / r["ranked"][1]["mean_abs_contribution"]
    assert 1.2 < ratio < 1.8  # 3/2 times the ratio of the mean deviations of a and b
    table = runner.invoke(app, ["explain", str(linear_model), "--data", str(tmp_path / "lin.csv")])
    assert table.exit_code == 0 and "mean |contribution|" in table.output


def test_data_draws_a_bar_chart(linear_model: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "rank.png"
    args = ["explain", str(linear_model), "--data", str(tmp_path / "lin.csv"), "--plot", str(png)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:4] == b"\x89PNG"


def _net(activation: type, seed: int, hidden: int = 6) -> tuple[object, list[float], list[float]]:
    rng = random.Random(seed)
    x = [Input("u"), Input("v"), Input("w")]
    h = Linear(x, units=hidden, activation="tanh" if activation is Tanh else "relu", rng=rng)
    out = Linear([h], rng=rng).compile()
    for p in out.compiled_graph.params:
        p.value = rng.uniform(-2, 2)
    return out, [rng.uniform(-2, 2) for _ in x], [rng.uniform(-2, 2) for _ in x]


@pytest.mark.parametrize("activation", [Tanh, ReLU])
@pytest.mark.parametrize("seed", range(5))
def test_integrated_gradients_add_up_within_1e_9(activation: type, seed: int) -> None:
    root, x, b = _net(activation, seed)
    e = explain_row(root, x, b)
    assert e.method == "integrated gradients"
    assert e.completeness_error <= 1e-9, (e.completeness_error, e.intervals)
    assert sum(e.contributions) == pytest.approx(e.output - e.baseline_output, abs=1e-9)


def test_relu_network_is_split_at_its_kinks() -> None:
    root, x, b = _net(ReLU, 3, hidden=12)
    e = explain_row(root, x, b)
    assert e.intervals > 1 and e.completeness_error <= 1e-9


@pytest.mark.parametrize("seed", range(3))
def test_gradient_agrees_with_finite_differences(seed: int) -> None:
    root, x, _ = _net(Tanh, seed)
    e = explain_row(root, x, [0.0, 0.0, 0.0])
    graph = root.compiled_graph  # type: ignore[attr-defined]
    h = 1e-6
    for i in range(3):
        up, down = list(x), list(x)
        up[i] += h
        down[i] -= h
        fd = (graph.predict(up) - graph.predict(down)) / (2 * h)
        assert e.gradient[i] == pytest.approx(fd, rel=1e-6, abs=1e-8)


def test_integrated_gradients_of_an_additive_formula_are_its_terms() -> None:
    # f = 2 tanh(u) + v^2-ish term via mul, + 1: additive, so exact terms and IG must agree.
    u, v = Input("u"), Input("v")
    root = Add([Multiply([Parameter(2.0), Tanh([u])]), Multiply([v, v]), Parameter(1.0)]).compile()
    assert additive_terms(root) is not None
    x, b = [0.7, -1.3], [0.1, 0.4]
    exact = explain_row(root, x, b).contributions
    ig, _ = integrated_gradients(_Scalar(root, None), x, b)
    import math

    assert exact == pytest.approx([2 * (math.tanh(0.7) - math.tanh(0.1)), 1.3**2 - 0.4**2], abs=1e-12)
    assert ig == pytest.approx(exact, abs=1e-9)


def test_a_product_of_inputs_is_not_additive() -> None:
    u, v = Input("u"), Input("v")
    root = Add([Multiply([u, v]), Parameter(1.0)]).compile()
    assert additive_terms(root) is None
    e = explain_row(root, [2.0, 3.0], [0.0, 0.0])
    assert e.contributions == pytest.approx([3.0, 3.0], abs=1e-12)  # IG splits uv evenly on this path


def test_importance_over_rows() -> None:
    u, v = Input("u"), Input("v")
    root = Add([Multiply([Parameter(3.0), u]), Multiply([Parameter(-1.0), v])]).compile()
    r = importance(root, [[1.0, 1.0], [-1.0, 2.0]], [0.0, 0.0])
    assert r.ranked == [("u", 3.0), ("v", 1.5)]


def test_softmax_classifier_explains_the_predicted_class(tmp_path: Path) -> None:
    spec = tmp_path / "iris.yaml"
    spec.write_text((ROOT / "models" / "iris.yaml").read_text().replace("../datasets/", str(ROOT / "datasets") + "/"))
    model = tmp_path / "iris.model.json"
    trained = runner.invoke(app, ["train", str(spec), "-o", str(model), "-q", "--epochs", "20"])
    assert trained.exit_code == 0, trained.output
    result = runner.invoke(app, ["explain", str(model), "6.3", "2.9", "5.6", "1.8", "--json"])
    assert result.exit_code == 0, result.output
    e = json.loads(result.output)
    assert e["explained"] == "probability of class 'virginica'"
    assert e["completeness_error"] <= 1e-9
    other = runner.invoke(app, ["explain", str(model), "6.3", "2.9", "5.6", "1.8", "--class", "setosa", "--json"])
    assert json.loads(other.output)["explained"] == "probability of class 'setosa'"


# ----------------------------------------------------------------- bad input


def test_no_training_data_and_no_data_is_a_clear_message(linear_model: Path, tmp_path: Path) -> None:
    (tmp_path / "lin.csv").rename(tmp_path / "moved.csv")
    result = runner.invoke(app, ["explain", str(linear_model), "1", "1"])
    assert result.exit_code == 1
    assert "mean baseline needs the training data" in result.output and "--data" in result.output
    assert "Traceback" not in result.output
    zero = runner.invoke(app, ["explain", str(linear_model), "1", "1", "--baseline", "zero"])
    assert zero.exit_code == 0, zero.output
    given = runner.invoke(app, ["explain", str(linear_model), "--data", str(tmp_path / "moved.csv")])
    assert given.exit_code == 0, given.output


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["1", "1", "--baseline", "median"], 1, "unknown baseline 'median'"),
        (["1"], 1, "takes 2 value(s)"),
        (["1", "x"], 1, "not a number"),
        (["1", "1", "--class", "setosa"], 1, "--class is for a softmax classifier"),
        (["1", "1", "--data", "lin.csv"], 2, "not both"),
        (["1", "1", "--plot", "x.png"], 2, "--plot draws the ranking of --data"),
        ([], 2, "give one value per input"),
    ],
)
def test_bad_input(linear_model: Path, args: list[str], code: int, words: str) -> None:
    result = runner.invoke(app, ["explain", str(linear_model), *args])
    assert result.exit_code == code, result.output
    assert words in re.sub(r"[│\s]+", " ", result.output)  # usage errors come in a box, wrapped
    assert "Traceback" not in result.output
