"""Big graphs: a chain of 100,000 nodes, a node with thousands of children or parents.

Times are never asserted. That the cost per node stays flat is checked by what makes it
so: every graph algorithm is iterative (they all run with the recursion limit at 200 on
a chain of 5,000 nodes), and the cache recomputes only what a change reaches.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from treegrad import Add, Constant, Input, Linear, Multiply, Node, Parameter, Tanh, fit
from treegrad import graph as graph_module
from treegrad.compiled import predict_many


@contextmanager
def recursion_limit(n: int) -> Iterator[None]:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(n)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def count_computations(monkeypatch: pytest.MonkeyPatch) -> list[Node]:
    """The nodes the reference evaluator recomputes from now on, in order."""
    computed: list[Node] = []
    real = graph_module._compute

    def counting(node: Node) -> None:
        computed.append(node)
        real(node)

    monkeypatch.setattr(graph_module, "_compute", counting)
    return computed


def chain(units: int) -> tuple[Input, Node, list[Parameter]]:
    """v = tanh(w * v + b), `units` times: 5 nodes per unit, 2 of them parameters."""
    x = Input("x")
    v: Node = x
    params: list[Parameter] = []
    for k in range(units):
        w, b = Parameter(0.9 + 0.1 * math.sin(k)), Parameter(0.01 * math.cos(k))
        params += [w, b]
        v = Tanh([Add([Multiply([w, v]), b])])
    return x, v, params


def chain_by_hand(x: float, params: list[Parameter]) -> float:
    v = x
    for k in range(0, len(params), 2):
        v = math.tanh(params[k].value * v + params[k + 1].value)
    return v


def test_a_chain_of_100000_nodes() -> None:
    x, top, params = chain(20_000)
    top.compile()
    g = top.graph
    assert g is not None and len(g.order) == 100_001
    assert g.params[0] is params[-2]  # first appearance, depth first from the top
    x.value = 0.3
    value = top.forward()
    assert value == pytest.approx(chain_by_hand(0.3, params), rel=1e-12)
    top.backward()
    # d top / d x by the chain rule, walking up
    dx, v = 1.0, 0.3
    for k in range(0, len(params), 2):
        v = math.tanh(params[k].value * v + params[k + 1].value)
        dx *= (1 - v * v) * params[k].value
    assert x.grad == pytest.approx(dx, rel=1e-9)
    assert top.predict([0.3]) == value
    assert predict_many(top, [[0.3], [-0.2]]) == pytest.approx([value, chain_by_hand(-0.2, params)], rel=1e-12)
    # one epoch of the generated trainer on one sample, lr 1, mse: p -= 2 (out - t) d out/d p
    grads = [p.grad for p in (params[0], params[1], params[-2], params[-1])]
    before = [p.value for p in (params[0], params[1], params[-2], params[-1])]
    hist = fit(top, [[0.3]], [value - 0.5], epochs=1, learning_rate=1.0)
    assert hist[0] == pytest.approx(0.25, rel=1e-9)
    after = [p.value for p in (params[0], params[1], params[-2], params[-1])]
    assert after == pytest.approx([b - 1.0 * gr for b, gr in zip(before, grads, strict=True)], rel=1e-9, abs=1e-15)
    # and a few samples in a row
    hist = fit(top, [[0.1], [0.2], [0.3]], [0.0, 0.1, 0.2], epochs=1, learning_rate=0.01)
    assert len(hist) == 1 and math.isfinite(hist[0])


def test_the_cache_recomputes_only_what_a_change_reaches_on_a_long_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    computed = count_computations(monkeypatch)
    x, top, params = chain(2_000)
    x.value = 0.5
    top.forward()
    assert len(computed) == 3 * 2_000
    computed.clear()
    params[-1].value = 0.2  # the top bias: its Add and Tanh
    top.forward()
    assert len(computed) == 2
    computed.clear()
    params[0].value = 0.5  # the bottom weight: everything above it
    top.forward()
    assert len(computed) == 3 * 2_000


def test_every_graph_algorithm_is_iterative(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the recursion limit at 200, recursion over a 5,000-node chain would fail."""
    computed = count_computations(monkeypatch)
    x, top, params = chain(1_000)
    deep_macro: Node = Input("y")
    for _ in range(1_000):
        deep_macro = Linear([deep_macro], activation="tanh")
    with recursion_limit(200):
        top.compile()
        assert top.graph is not None and len(top.graph.order) == 5_001
        x.value = 0.25
        value = top.forward()
        top.backward()
        computed.clear()
        params[0].value = params[0].value + 1e-3  # invalidation walks up 5,000 parents
        assert top.forward() == pytest.approx(value)  # the change fades out over 1,000 tanh
        assert len(computed) == 3_000
        assert top.predict([0.25]) == pytest.approx(predict_many(top, [[0.25]])[0], rel=1e-13)
        for engine in ("compiled", "reference"):
            fit(top, [[0.1], [0.2]], [0.0, 0.1], epochs=1, learning_rate=0.01, engine=engine)
            fit(
                top,
                [[0.1], [0.2]],
                [0.0, 0.1],
                epochs=1,
                learning_rate=0.01,
                engine=engine,
                batch_size=2,
                optimizer="adam",
            )
        for fmt in ("text", "latex", "python"):
            assert top.funcify(format=fmt).count("tanh") == 1_000
        deep_macro.compile()
        assert deep_macro.graph is not None and len(deep_macro.graph.params) == 2_000
        assert math.isfinite(deep_macro.predict([0.5]))
        deep_macro.backward()


def test_a_node_with_thousands_of_children_and_a_parameter_with_thousands_of_parents() -> None:
    """A sum over 5,000 terms that share one weight: a loss summed over a CSV, say."""
    n = 5_000
    x, w = Input("x"), Parameter(0.5)
    terms = [Multiply([w, x, Constant(float(i % 7))]) for i in range(n)]
    total = Add(terms)
    k = sum(i % 7 for i in range(n))
    with recursion_limit(200):
        total.compile()
        assert total.predict([2.0]) == 0.5 * 2.0 * k
        assert predict_many(total, [[2.0]]) == [0.5 * 2.0 * k]
        total.backward()
        assert w.grad == 2.0 * k and x.grad == 0.5 * k
        for engine in ("compiled", "reference"):
            w.value = 0.5
            fit(total, [[2.0]], [0.0], epochs=1, learning_rate=1e-9, engine=engine)
            # dL/dw = 2 (w 2 k) (2 k)
            assert w.value == pytest.approx(0.5 - 1e-9 * 2 * (0.5 * 2 * k) * (2 * k), rel=1e-12)
        assert total.funcify().count(" * x * ") == n
