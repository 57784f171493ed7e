"""The numerical gradient check (`treegrad check`): backward() against central differences,
at points where the model can be evaluated, from the data when it is given."""

from __future__ import annotations

import random

import pytest

from treegrad import Constant, Input, Linear, Log, ModelError, Multiply, Node, Parameter, Power, Softmax, Tanh
from treegrad.gradcheck import GradientCheck, gradient_check


def test_agrees_on_an_mlp_with_a_softmax() -> None:
    x, y = Input("x"), Input("y")
    rng = random.Random(1)
    model = Softmax([Linear([Linear([x, y], units=3, activation="tanh", rng=rng)], units=3, rng=rng)])
    model.compile()
    result = gradient_check(model)
    assert isinstance(result, GradientCheck)
    assert result.worst < 1e-4 and result.params == 9 + 12 and result.points == 3 and result.skipped == 0


def test_a_wrong_derivative_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    from treegrad import graph as graph_module

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
