"""Gradients checked by agreement: analytic backward() against central finite differences
on random DAGs of every op, the compiled trainer's gradient against the reference one,
and the losses' gradients by hand and by finite differences."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from treegrad import (
    LOSSES,
    Abs,
    Add,
    Constant,
    Divide,
    Exp,
    Input,
    Log,
    Multiply,
    Negate,
    Node,
    Output,
    Parameter,
    Power,
    ReLU,
    Sigmoid,
    Softmax,
    Subtract,
    Tanh,
    fit,
)
from treegrad.core.nodes import Leaf

REL_TOL = 1e-5


def close(analytic: float, numeric: float, tol: float = REL_TOL) -> bool:
    """Relative agreement, with a floor so that two tiny numbers near 0 count as equal."""
    return abs(analytic - numeric) <= tol * max(abs(analytic), abs(numeric), 1e-3)


def kinks(nodes: list[Node]) -> list[bool]:
    """Which side of 0 each relu/abs argument is on (a finite difference must not cross)."""
    return [n.children[0].value > 0 for n in nodes if isinstance(n, (ReLU, Abs))]


def central_difference(root: Node, leaf: Leaf, nodes: list[Node]) -> float | None:
    """d root / d leaf by central differences; None if the step crosses a relu/abs kink."""
    v = leaf.value
    h = 1e-6 * max(1.0, abs(v))
    base = kinks(nodes)
    leaf.value = v + h
    up = root.forward()
    up_side = kinks(nodes)
    leaf.value = v - h
    down = root.forward()
    down_side = kinks(nodes)
    leaf.value = v
    root.forward()
    if up_side != base or down_side != base:
        return None
    return (up - down) / (2 * h)


# ----------------------------------------------------------------- single ops by hand


@pytest.mark.parametrize(
    "make, x0, expected",
    [
        (lambda x: Add([x, x, Constant(3.0)]), 1.5, 2.0),
        (lambda x: Subtract([Constant(1.0), x]), 1.5, -1.0),
        (lambda x: Multiply([x, x, x]), 1.5, 3 * 1.5**2),
        (lambda x: Divide([Constant(1.0), x]), 2.0, -1 / 4),
        (lambda x: Divide([x, Constant(4.0)]), 2.0, 0.25),
        (lambda x: Power([x, Constant(3.0)]), 2.0, 12.0),
        (lambda x: Power([x, Constant(0.5)]), 4.0, 0.25),
        (lambda x: Negate([x]), 2.0, -1.0),
        (lambda x: ReLU([x]), 2.0, 1.0),
        (lambda x: ReLU([x]), -2.0, 0.0),
        (lambda x: Sigmoid([x]), 0.0, 0.25),
        (lambda x: Tanh([x]), 0.5, 1 - math.tanh(0.5) ** 2),
        (lambda x: Exp([x]), 1.0, math.e),
        (lambda x: Log([x]), 4.0, 0.25),
        (lambda x: Abs([x]), -3.0, -1.0),
        (lambda x: Abs([x]), 3.0, 1.0),
    ],
)
def test_each_op_derivative_by_hand(make: Callable[[Node], Node], x0: float, expected: float) -> None:
    x = Parameter(x0)
    y = make(x)
    y.backward()
    assert x.grad == pytest.approx(expected, rel=1e-12)


def test_sigmoid_far_left_is_finite_and_differentiable() -> None:
    x = Parameter(-800.0)
    y = Sigmoid([x])
    assert 0.0 <= y.forward() < 1e-300
    y.backward()
    assert math.isfinite(x.grad)
    x.value = 800.0
    assert y.forward() == 1.0


def test_shared_node_gradients_add_up_and_backward_twice_does_not_double_count() -> None:
    a = Parameter(3.0)
    b = a + a
    c = b + b
    c.backward()
    assert a.grad == 4.0 and b.grad == 2.0 and c.grad == 1.0
    c.backward()
    assert a.grad == 4.0
    # a*a: d/da is 2a, from the two edges of one Multiply
    sq = Multiply([a, a])
    sq.backward()
    assert a.grad == 6.0


def test_backward_seed_scales_gradients() -> None:
    a = Parameter(2.0)
    y = a * a
    y.backward(0.5)
    assert a.grad == 2.0


# ----------------------------------------------------------------- random DAGs


def dag_strategy_args(data: st.DataObject) -> tuple[Callable[[int], int], Callable[[float, float], float]]:
    def pick(n: int) -> int:
        return data.draw(st.integers(0, n - 1))

    def real(lo: float, hi: float) -> float:
        return data.draw(st.floats(lo, hi, allow_nan=False, allow_infinity=False))

    return pick, real


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n_ops=st.integers(1, 14))
def test_backward_matches_finite_differences_on_random_dags(dag_builder, data: st.DataObject, n_ops: int) -> None:
    dag = dag_builder(*dag_strategy_args(data), n_ops)
    dag.root.backward()
    checked = 0
    for leaf in [*dag.params, *dag.inputs]:
        analytic = leaf.grad
        numeric = central_difference(dag.root, leaf, dag.nodes)
        if numeric is None:
            continue
        checked += 1
        assert close(analytic, numeric), (leaf.label(), analytic, numeric, dag.root.funcify())
    assert checked > 0


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n_ops=st.integers(1, 12))
def test_compiled_trainer_gradient_matches_reference_backward(dag_builder, data: st.DataObject, n_ops: int) -> None:
    """One plain SGD step with lr=1 on mse: p_new = p - 2 (out - t) d out/d p, in both engines."""
    dag = dag_builder(*dag_strategy_args(data), n_ops)
    root = dag.root
    root.compile()
    g = root.graph
    assert g is not None
    row = [x.value for x in (n for name in g.input_names for n in g.inputs_by_name[name][:1])]
    out = root.predict(row)
    root.backward()
    target = out - 0.25
    expected = [p.value - 2 * (out - target) * p.grad for p in g.params]
    start = g.param_values()
    results = {}
    for engine in ("compiled", "reference"):
        g.set_param_values(start)
        hist = fit(root, [row], [target], loss="mse", epochs=1, learning_rate=1.0, engine=engine)
        results[engine] = (list(hist), g.param_values())
        assert hist[0] == pytest.approx((out - target) ** 2, rel=1e-12)
        for got, want in zip(g.param_values(), expected, strict=True):
            assert got == pytest.approx(want, rel=1e-12, abs=1e-12)
    (hc, pc), (hr, pr) = results["compiled"], results["reference"]
    assert hc == pytest.approx(hr, rel=1e-12)
    assert pc == pytest.approx(pr, rel=1e-12, abs=1e-12)


def test_gradient_through_list_output_with_shared_nodes() -> None:
    x = Parameter(0.7)
    y = Parameter(-0.4)
    h = Tanh([x * y + x])
    out = Output([h * h, Sigmoid([h]) + y])
    out.backward([1.0, 2.0])
    hv = math.tanh(0.7 * -0.4 + 0.7)
    dh = 1 - hv * hv
    s = 1 / (1 + math.exp(-hv))
    dout_dh = 2 * hv * 1.0 + s * (1 - s) * 2.0
    assert x.grad == pytest.approx(dout_dh * dh * (y.value + 1), rel=1e-12)
    assert y.grad == pytest.approx(dout_dh * dh * x.value + 2.0, rel=1e-12)


# ----------------------------------------------------------------- losses


@pytest.mark.parametrize(
    "name, p, t, loss, grad",
    [
        ("mse", [3.0], 1.0, 4.0, [4.0]),
        ("mse", [1.0, 4.0], (0.0, 2.0), (1.0 + 4.0) / 2, [2 * 1.0 / 2, 2 * 2.0 / 2]),
        ("mae", [3.0], 1.0, 2.0, [1.0]),
        ("mae", [0.0], 1.0, 1.0, [-1.0]),
        ("mae", [1.0], 1.0, 0.0, [0.0]),
        ("mae", [1.0, -1.0], (0.0, 0.0), 1.0, [0.5, -0.5]),
        ("bce", [0.8], 1.0, -math.log(0.8), [(0.8 - 1.0) / (0.8 * 0.2)]),
        ("bce", [0.25], 0.0, -math.log(0.75), [0.25 / (0.25 * 0.75)]),
        ("cross_entropy", [0.2, 0.3, 0.5], 2, -math.log(0.5), [0.0, 0.0, -2.0]),
        ("cross_entropy", [0.2, 0.3, 0.5], 0, -math.log(0.2), [-5.0, 0.0, 0.0]),
    ],
)
def test_loss_value_and_gradient_by_hand(name: str, p: list[float], t: object, loss: float, grad: list[float]) -> None:
    value, g = LOSSES[name].fn(len(p))(p, t)
    assert value == pytest.approx(loss, rel=1e-12)
    assert g == pytest.approx(grad, rel=1e-12)


def test_bce_clamps_instead_of_taking_log_of_zero() -> None:
    value, g = LOSSES["bce"].fn(1)([0.0], 1.0)
    assert math.isfinite(value) and value == pytest.approx(-math.log(1e-8))
    assert math.isfinite(g[0])
    value, g = LOSSES["bce"].fn(1)([1.0], 0.0)
    assert math.isfinite(value) and math.isfinite(g[0])


def test_bce_keeps_nan_as_nan() -> None:
    value, _ = LOSSES["bce"].fn(1)([math.nan], 1.0)
    assert math.isnan(value)


@pytest.mark.parametrize(
    "name, p, t",
    [
        ("mse", [0.3], 1.2),
        ("mse", [0.3, -0.7, 2.0], (1.0, 0.5, -1.0)),
        ("mae", [0.3], 1.2),
        ("mae", [0.3, -0.7], (1.0, 0.5)),
        ("bce", [0.3], 1.0),
        ("bce", [0.9], 0.0),
        ("bce", [0.6], 0.3),
        ("bce", [0.2, 0.7], (1.0, 0.0)),
        ("cross_entropy", [0.1, 0.6, 0.3], 1),
    ],
)
def test_loss_gradient_matches_finite_differences(name: str, p: list[float], t: object) -> None:
    fn = LOSSES[name].fn(len(p))
    _, grad = fn(p, t)
    h = 1e-6
    for i in range(len(p)):
        up, down = list(p), list(p)
        up[i] += h
        down[i] -= h
        numeric = (fn(up, t)[0] - fn(down, t)[0]) / (2 * h)
        assert close(grad[i], numeric), (i, grad[i], numeric)


def test_cross_entropy_through_softmax_gives_p_minus_onehot() -> None:
    z = [Parameter(0.3), Parameter(-1.2), Parameter(2.0), Parameter(0.0)]
    sm = Softmax(z)
    p = sm.forward()
    for k in range(4):
        _, g = LOSSES["cross_entropy"].fn(4)(p, k)
        sm.backward(g)
        onehot = [1.0 if i == k else 0.0 for i in range(4)]
        assert [zi.grad for zi in z] == pytest.approx([pi - oi for pi, oi in zip(p, onehot, strict=True)], abs=1e-12)


@pytest.mark.parametrize("engine", ["compiled", "reference"])
def test_trainer_step_through_softmax_is_p_minus_onehot(engine: str) -> None:
    x = Input("x")
    w = [Parameter(0.5), Parameter(-0.25), Parameter(1.0)]
    sm = Softmax([Multiply([wi, x]) for wi in w])
    sm.compile()
    p = sm.predict([2.0])
    fit(sm, [[2.0]], [1], loss="cross_entropy", epochs=1, learning_rate=1.0, engine=engine)
    # dL/dw_i = (p_i - onehot_i) * x
    start = [0.5, -0.25, 1.0]
    want = [wi0 - (pi - (1.0 if i == 1 else 0.0)) * 2.0 for i, (wi0, pi) in enumerate(zip(start, p, strict=True))]
    assert [wi.value for wi in w] == pytest.approx(want, rel=1e-12)


def test_softmax_gradient_matches_finite_differences() -> None:
    z = [Parameter(0.1), Parameter(1.5), Parameter(-0.7)]
    sm = Softmax([z[0] * z[1], Exp([z[1]]), z[2] + z[0]])
    weights = [0.3, -1.0, 2.0]
    sm.backward(weights)
    for zi in z:
        v = zi.value
        h = 1e-6
        zi.value = v + h
        up = sum(w * q for w, q in zip(weights, sm.forward(), strict=True))
        zi.value = v - h
        down = sum(w * q for w, q in zip(weights, sm.forward(), strict=True))
        zi.value = v
        assert close(zi.grad, (up - down) / (2 * h))
