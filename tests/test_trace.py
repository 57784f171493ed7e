"""trace: backpropagation laid out by hand, checked by hand and against the trainer.

The trace's numbers must be the reference engine's: each node's total gradient is the sum
of what arrived from its parents, the parameters after N traced steps are exactly those of
`fit(engine="reference")` after one epoch over the same N samples, and a one-step linear
regression is worked out here with pencil-and-paper arithmetic.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from treegrad import Add, Input, Linear, Multiply, Node, Parameter, Sigmoid, Softmax, TrainingError, fit
from treegrad.outputs.trace import trace
from treegrad.run.setups import trace_setup

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def linear() -> tuple[Node, Parameter, Parameter]:
    w, b = Parameter(0.5, name="w"), Parameter(0.25, name="b")
    return Add([Multiply([w, Input("x")]), b]).compile(), w, b


def test_one_step_of_linear_regression_by_hand() -> None:
    root, w, b = linear()
    (step,) = trace(root, [[2.0]], [3.0], loss="mse", learning_rate=0.1)
    # Forward: y = 0.5 * 2 + 0.25 = 1.25. Loss (y - t)^2 = (-1.75)^2 = 3.0625.
    assert step.output == 1.25 and step.loss == 3.0625
    # dL/dy = 2 (y - t) = -3.5; dL/dw = dL/dy * x = -7; dL/db = dL/dy = -3.5; dL/dx = dL/dy * w = -1.75.
    assert step.loss_grad == [-3.5]
    rows = {n.label: n for n in step.nodes}
    assert [n.label for n in step.nodes] == ["w", "x", "#2", "b", "#4"]
    assert rows["#2"].expr == "w * x" and rows["#4"].expr == "#2 + b"
    assert rows["#2"].value == 1.0 and rows["#4"].value == 1.25
    assert rows["#4"].arrivals == [] and rows["#4"].grad == -3.5
    assert rows["#2"].arrivals == [(4, -3.5)]
    assert rows["w"].arrivals == [(2, -7.0)] and rows["w"].grad == -7.0
    assert rows["x"].arrivals == [(2, -1.75)]
    assert rows["b"].grad == -3.5
    # SGD: w = 0.5 - 0.1 * (-7) = 1.2; b = 0.25 - 0.1 * (-3.5) = 0.6.
    assert [(u.name, u.old, u.grad) for u in step.params] == [("w", 0.5, -7.0), ("b", 0.25, -3.5)]
    assert step.params[0].new == pytest.approx(1.2, abs=1e-15) and step.params[1].new == pytest.approx(0.6, abs=1e-15)
    assert (w.value, b.value) == (step.params[0].new, step.params[1].new)  # the model was updated


def test_a_node_used_twice_sums_both_arrivals() -> None:
    x = Input("x")
    w = Parameter(3.0, name="w")
    h = Multiply([w, x])
    root = Add([h, Multiply([h, h])]).compile()  # y = h + h^2 with h = w x
    (step,) = trace(root, [[2.0]], [0.0], loss="mse", learning_rate=0.01)
    node = next(n for n in step.nodes if n.expr == "w * x")
    # y = 6 + 36 = 42, dL/dy = 84; h (#2) gets 84 from the add (#4), then 84 * h = 504 from
    # each argument slot of h * h (#3): parents in the order backward visits them.
    assert node.arrivals == [(4, 84.0), (3, 504.0), (3, 504.0)]
    assert node.grad == 84.0 + 504.0 + 504.0
    assert next(n for n in step.nodes if n.label == "w").grad == 1092.0 * 2.0


def mlp(seed: int) -> Node:
    rng = random.Random(seed)
    x = [Input("a"), Input("b")]
    return Sigmoid([Linear([Linear(x, units=4, activation="tanh", rng=rng)], rng=rng)]).compile()


def softmax_net(seed: int) -> Node:
    rng = random.Random(seed)
    x = [Input("a"), Input("b")]
    return Softmax([Linear([Linear(x, units=3, activation="relu", rng=rng)], units=3, rng=rng)]).compile()


def data(n: int, seed: int, kind: str) -> tuple[list[list[float]], list[Any]]:
    rng = random.Random(seed)
    X = [[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(n)]
    if kind == "binary":
        return X, [1.0 if a > b else 0.0 for a, b in X]
    if kind == "classes":
        return X, [int(a > 0) + int(b > 0) for a, b in X]
    return X, [a * 2 - b for a, b in X]


CASES: list[tuple[str, Callable[[int], Node], str, str]] = [
    ("mlp", mlp, "binary", "bce"),
    ("mlp-mse", mlp, "regression", "mse"),
    ("softmax", softmax_net, "classes", "cross_entropy"),
]


@pytest.mark.parametrize(("name", "build", "kind", "loss"), CASES)
def test_trace_steps_are_the_reference_trainers_steps(
    name: str, build: Callable[[int], Node], kind: str, loss: str
) -> None:
    X, y = data(7, seed=1, kind=kind)
    traced, trained, compiled = build(2), build(2), build(2)
    steps = trace(traced, X, y, loss=loss, learning_rate=0.3, steps=7)
    hist = fit(trained, X, y, loss=loss, epochs=1, learning_rate=0.3, shuffle=False, engine="reference")
    fit(compiled, X, y, loss=loss, epochs=1, learning_rate=0.3, shuffle=False)
    assert traced.graph is not None and trained.graph is not None and compiled.graph is not None
    assert [u.new for u in steps[-1].params] == trained.graph.param_values()  # exactly
    assert traced.graph.param_values() == trained.graph.param_values()
    assert sum(s.loss for s in steps) / len(steps) == hist[0]
    assert traced.graph.param_values() == pytest.approx(compiled.graph.param_values(), rel=1e-12, abs=1e-15)
    for before, after in zip(steps, steps[1:], strict=False):  # each step starts where the last one ended
        assert [u.old for u in after.params] == [u.new for u in before.params]


@pytest.mark.parametrize(("name", "build", "kind", "loss"), CASES)
def test_each_total_is_the_sum_of_its_arrivals(name: str, build: Callable[[int], Node], kind: str, loss: str) -> None:
    X, y = data(3, seed=2, kind=kind)
    for step in trace(build(3), X, y, loss=loss, learning_rate=0.1, steps=3):
        out = step.nodes[-1]
        assert out.arrivals == [] and (
            out.grad == step.loss_grad if isinstance(out.grad, list) else [out.grad] == step.loss_grad
        )
        for n in step.nodes[:-1]:
            total = 0.0
            for _, g in n.arrivals:
                total += g
            assert total == n.grad, n
            assert all(p > n.index for p, _ in n.arrivals)  # gradients come from parents, later in the order
        by_name = {n.label: n for n in step.nodes}
        for u in step.params:
            assert u.grad == by_name[u.name].grad


def test_parameter_gradients_agree_with_finite_differences() -> None:
    X, y = data(1, seed=3, kind="binary")
    root = mlp(5)
    assert root.graph is not None
    (step,) = trace(root, X, y, loss="bce", learning_rate=1e-300)  # a step too small to move anything
    from treegrad.engine.losses import LOSSES

    lossfn = LOSSES["bce"].fn(1)
    P = root.graph.param_values()
    h = 1e-6
    for k, u in enumerate(step.params):
        up, down = list(P), list(P)
        up[k] += h
        down[k] -= h
        root.graph.set_param_values(up)
        lu = lossfn([root.predict(X[0])], y[0])[0]
        root.graph.set_param_values(down)
        ld = lossfn([root.predict(X[0])], y[0])[0]
        assert u.grad == pytest.approx((lu - ld) / (2 * h), rel=1e-5, abs=1e-8)


def test_more_steps_than_rows_cycle_through_the_rows() -> None:
    root, _, _ = linear()
    steps = trace(root, [[1.0], [2.0]], [1.0, 2.0], learning_rate=0.01, steps=5)
    assert [s.sample for s in steps] == [0, 1, 0, 1, 0]
    assert steps[2].inputs == {"x": 1.0}


def test_bad_settings_are_user_errors() -> None:
    root, _, _ = linear()
    with pytest.raises(TrainingError, match="steps"):
        trace(root, [[1.0]], [1.0], steps=0)
    with pytest.raises(TrainingError, match="cross_entropy"):
        trace(root, [[1.0]], [1.0], loss="cross_entropy")


F2C = """\
name: f2c
inputs: [f]
output:
  add:
    - mul: [{param: 0.5}, f]
    - {param: 0.25}
data: data.csv
target: c
training: {learning_rate: 0.1}
"""


def test_prepare_from_a_spec_and_from_a_model_file(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("f,c\n2,3\n1,1\n")
    spec = tmp_path / "f2c.yaml"
    spec.write_text(F2C)
    setup = trace_setup(spec)
    assert setup.inputs == [[2.0], [1.0]] and setup.targets == [3.0, 1.0]
    assert (setup.loss, setup.learning_rate) == ("mse", 0.1)
    (step,) = trace(setup.root, setup.inputs, setup.targets, loss=setup.loss, learning_rate=setup.learning_rate)
    assert [u.grad for u in step.params] == [-7.0, -3.5]  # the hand-checked example above
    from treegrad.run.train import train as train_spec

    model = tmp_path / "f2c.model.json"
    train_spec(spec, overrides={"epochs": 1, "shuffle": False}, out=model)
    again = trace_setup(model, learning_rate=0.5, rows=1)
    assert again.inputs == [[2.0]] and again.learning_rate == 0.5
    assert again.root.graph is not None and again.root.graph.param_values() != [0.5, 0.25]  # learned values


def test_trace_command_prints_the_tables(tmp_path: Path) -> None:
    from treegrad.cli import app

    (tmp_path / "data.csv").write_text("f,c\n2,3\n1,1\n")
    spec = tmp_path / "f2c.yaml"
    spec.write_text(F2C)
    result = runner.invoke(app, ["trace", str(spec), "--steps", "2"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "step 1" in out and "step 2" in out
    assert "w * x" not in out and "p0 * f" in out
    assert "from #2: -7" in out  # dL/dp0 arriving from the multiplication
    assert "loss (mse) = 3.062" in out
    assert "new = old - 0.1 * gradient" in out
    bad = runner.invoke(app, ["trace", str(spec), "--steps", "0"])
    assert bad.exit_code == 2


def test_trace_the_example_models(tmp_path: Path) -> None:
    from treegrad.cli import app

    for stem in ("line", "iris"):
        spec = ROOT / "models" / f"{stem}.yaml"
        if not spec.exists():
            continue
        result = runner.invoke(app, ["trace", str(spec)], env={"COLUMNS": "250"})
        assert result.exit_code == 0, result.output
        assert "update: new = old" in result.output
