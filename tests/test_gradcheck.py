"""The numerical gradient check (`treegrad check`): backward() against central differences,
at points where the model can be evaluated, from the data when it is given."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from treegrad import Constant, Input, Linear, Log, ModelError, Multiply, Node, Parameter, Power, Softmax, Tanh
from treegrad.engine.gradcheck import GradientCheck, gradient_check


def test_agrees_on_an_mlp_with_a_softmax() -> None:
    x, y = Input("x"), Input("y")
    rng = random.Random(1)
    model = Softmax([Linear([Linear([x, y], units=3, activation="tanh", rng=rng)], units=3, rng=rng)])
    model.compile()
    result = gradient_check(model)
    assert isinstance(result, GradientCheck)
    assert result.worst < 1e-4 and result.params == 9 + 12 and result.points == 3 and result.skipped == 0


def test_a_wrong_derivative_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    from treegrad.core import graph as graph_module

    real = graph_module.local_gradients

    def tanh_slope_doubled(node: Node) -> list[float]:
        grads = real(node)
        return [2.0 * g for g in grads] if isinstance(node, Tanh) else grads

    monkeypatch.setattr(graph_module, "local_gradients", tanh_slope_doubled)
    model = Tanh([Multiply([Parameter(0.7), Input("x")])]) + Parameter(0.1)
    model.compile()
    assert gradient_check(model).worst > 0.1


def test_a_log_of_an_input_is_checked_where_the_input_is_positive() -> None:
    # `{log: c}` failed with "cannot evaluate 'log' at [-0.1588]": the check drew one input
    # uniformly from (-1, 1) and gave up when the model could not be evaluated there.
    model = Multiply([Parameter(2.0), Log([Input("c")])]) + Parameter(0.5)
    model.compile()
    results = [gradient_check(model, seed=seed) for seed in range(5)]
    assert all(r.points == 3 and r.worst < 1e-6 and r.params == 2 for r in results)
    assert sum(r.skipped for r in results) > 0  # about half the random inputs are negative


def test_rows_of_the_data_are_used_and_bad_ones_skipped() -> None:
    model = Multiply([Parameter(2.0), Log([Input("c")])]) + Parameter(0.5)
    model.compile()
    result = gradient_check(model, rows=[[-1.0], [2.0], [0.0], [3.0]], seed=1)
    assert (result.points, result.skipped) == (2, 2)
    assert result.worst < 1e-6


def test_a_point_where_only_the_gradient_fails_is_skipped() -> None:
    # sqrt(x) is 0 at 0, but its slope there is not a number.
    model = Multiply([Parameter(1.5), Power([Input("x"), Constant(0.5)])])
    model.compile()
    result = gradient_check(model, rows=[[0.0], [4.0]])
    assert (result.points, result.skipped) == (1, 1) and result.worst < 1e-6


def test_no_point_where_the_model_can_be_evaluated_is_a_model_error() -> None:
    model = Multiply([Parameter(1.0), Log([Input("x") - 5.0])])
    model.compile()
    with pytest.raises(ModelError, match=r"could not be evaluated at any of the \d+ random inputs.*'log'"):
        gradient_check(model)
    with pytest.raises(ModelError, match="any of the 2 rows"):
        gradient_check(model, rows=[[1.0], [2.0]])


def test_parameters_are_left_as_they_were() -> None:
    w = Parameter(0.7)
    model = Tanh([Multiply([w, Input("x")])])
    model.compile()
    result = gradient_check(model, rows=[[0.3]])
    assert result.worst < 1e-6 and result.params == 1
    assert w.value == 0.7


def _wide_softmax(rng: random.Random) -> Node:
    xs = [Input(f"x{i}") for i in range(64)]
    model = Softmax([Linear(xs, units=10, rng=rng)])
    model.compile()
    return model


def test_a_correct_wide_softmax_is_not_a_mismatch() -> None:
    # Issue 10: a correct 64-input, 10-class softmax was reported as a MISMATCH (relative error
    # 1.4e-4): each tiny entry of the gradient was compared with itself, so rounding dominated.
    from treegrad.engine.gradcheck import TOLERANCE

    rng = random.Random(3)
    model = _wide_softmax(rng)
    rows = [[rng.gauss(0.0, 3.0) for _ in range(64)] for _ in range(20)]
    for seed in range(3):
        result = gradient_check(model, rows=rows, seed=seed)
        assert result.ok and result.worst < TOLERANCE / 100, result


def test_a_wrong_derivative_in_a_wide_model_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only one weight's gradient is wrong, among 650: the sample of parameters checked one by one
    # may miss it, the random direction over all of them must not.
    from treegrad.core import graph as graph_module

    model = _wide_softmax(random.Random(4))
    g = model.compiled_graph
    real = graph_module.local_gradients
    target = next(n for n in g.order if isinstance(n, Multiply))

    def one_slope_off(node: Node) -> list[float]:
        grads = real(node)
        return [1.5 * x for x in grads] if node is target else grads

    monkeypatch.setattr(graph_module, "local_gradients", one_slope_off)
    for seed in range(3):
        result = gradient_check(model, seed=seed)
        assert not result.ok and result.sampled and result.params < result.total == 650


def test_the_cost_is_bounded_by_the_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue 17: every parameter cost two evaluations of the whole model, so `linear: 3000` took
    # a minute. Now at most SAMPLE parameters one by one, plus one direction, per point.
    from treegrad.engine import compiled
    from treegrad.engine.gradcheck import POINTS, SAMPLE

    calls = 0
    real = compiled.Program.predict_fn

    def counted(self: compiled.Program) -> object:
        fn = real(self)

        def wrapper(*args: object) -> object:
            nonlocal calls
            calls += 1
            return fn(*args)

        return wrapper

    monkeypatch.setattr(compiled.Program, "predict_fn", counted)
    model = Linear([Input("x")], units=3000, rng=random.Random(0))
    model.compile()
    result = gradient_check(model)
    assert result.ok and (result.params, result.total, result.points) == (SAMPLE, 6000, POINTS)
    assert calls == POINTS * (2 * SAMPLE + 2)


def test_check_says_how_many_parameters_it_checked(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from treegrad.cli import app

    spec = tmp_path / "wide.yaml"
    spec.write_text("inputs: [x]\noutput:\n  linear: {inputs: x, units: 3000}\nloss: mse\n")
    result = CliRunner().invoke(app, ["check", str(spec)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.replace("│", " ").split())  # the table wraps its cells at any width
    assert "32 of 6000 parameter gradients (a seeded sample) and 1 random direction over all" in text
    assert "ok" in result.output
