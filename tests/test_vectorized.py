"""The vectorized mini-batch trainer agrees with the scalar compiled trainer and the reference one.

Each model is trained three times from the same start: by fit's default path (NumPy arrays
when the graph has dense layers), by the scalar compiled code (the vectorized path switched
off), and by the node-by-node reference engine. Per-epoch losses and final parameters must
agree to 1e-12 relative: only the order of the additions inside a sum differs.
"""

from __future__ import annotations

import importlib
import math
import random
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

import treegrad as tg
from treegrad import (
    Abs,
    Add,
    Constant,
    Divide,
    Exp,
    Input,
    Linear,
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
)
from treegrad.core.ops import NAMESPACE, OPS, softmax_array_code, softmax_fns, softmax_grad_array_code
from treegrad.engine.losses import LOSSES
from treegrad.engine.optim import OPTIMIZERS
from treegrad.engine.vectorized import array_namespace, vectorized_epoch_fn

FIT = importlib.import_module("treegrad.engine.fit")  # the module: treegrad.fit is the function
REL = 1e-12


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=REL)


def points(n: int, dims: int = 2, seed: int = 0) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.uniform(-1, 1) for _ in range(dims)] for _ in range(n)]


def mlp(
    sizes: Sequence[int], hidden: type[Node], out: type[Node] | None, bias_first: bool = True, seed: int = 1
) -> Node:
    """An MLP from elementary nodes, one `Add` of weighted activations (and a bias) per neuron."""
    rng = random.Random(seed)
    acts: list[Node] = [Input(f"x{j}") for j in range(sizes[0])]
    for k, nout in enumerate(sizes[1:]):
        last = k == len(sizes) - 2
        neurons: list[Node] = []
        for _ in range(nout):
            terms: list[Node] = [Multiply([Parameter(rng.uniform(-1, 1)), a]) for a in acts]
            b = Parameter(rng.uniform(-0.1, 0.1))
            z = Add([b, *terms] if bias_first else [*terms, b])
            act = out if last else hidden
            neurons.append(act([z]) if act else z)
        acts = neurons
    return acts[0] if len(acts) == 1 else Output(acts)


class Run:
    """A model trained by one engine: its history and parameters."""

    def __init__(self, hist: tg.History, params: list[float], vectorized: bool) -> None:
        self.hist, self.params, self.vectorized = list(hist), params, vectorized


def train(build: Callable[[], Node], X: Any, T: Any, how: str, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> Run:
    """Train a fresh model: how = "vectorized", "scalar" (compiled, arrays off) or "reference"."""
    used: list[bool] = []

    def spy(graph: Any, loss: Any, opt: Any, batch_size: int, *rules: Any) -> Any:
        # the vectorized path for every graph it can take, however small (no cost estimate)
        fn = None if how == "scalar" else vectorized_epoch_fn(graph, loss, opt, None, *rules)
        used.append(fn is not None)
        return fn

    with monkeypatch.context() as mp:
        mp.setattr(FIT, "vectorized_epoch_fn", spy)
        m = build()
        if m.graph is None:
            m.compile()
        hist = tg.fit(m, X, T, engine="reference" if how == "reference" else "compiled", **kw)
    assert m.graph is not None
    return Run(hist, m.graph.param_values(), any(used))


def assert_agree(
    build: Callable[[], Node], X: Any, T: Any, monkeypatch: pytest.MonkeyPatch, reference: bool = True, **kw: Any
) -> Run:
    kw.setdefault("batch_size", 8)
    kw.setdefault("epochs", 4)
    vec = train(build, X, T, "vectorized", monkeypatch, **kw)
    assert vec.vectorized, "the vectorized trainer did not take this graph"
    others = [train(build, X, T, "scalar", monkeypatch, **kw)]
    if reference:
        others.append(train(build, X, T, "reference", monkeypatch, **kw))
    for other in others:
        assert not other.vectorized
        assert len(vec.hist) == len(other.hist) == kw["epochs"]
        for a, b in zip(vec.hist, other.hist, strict=True):
            assert close(a, b), (vec.hist, other.hist)
        for a, b in zip(vec.params, other.params, strict=True):
            assert close(a, b), (a, b)
    # training moved the parameters, so the agreement is not that of untouched values
    untouched = build()
    untouched.compile()
    assert untouched.graph is not None
    assert max(abs(a - b) for a, b in zip(vec.params, untouched.graph.param_values(), strict=True)) > 1e-4
    return vec


def labels(X: list[list[float]]) -> list[float]:
    return [1.0 if x[1] > x[0] else 0.0 for x in X]


# ---------------------------------------------------------------- MLPs


@pytest.mark.parametrize("hidden", [ReLU, Sigmoid, Tanh])
@pytest.mark.parametrize("bias_first", [True, False])
def test_mlp_bce_agrees(hidden: type[Node], bias_first: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    X = points(37)  # 37 = 4 batches of 8 and a ragged one of 5
    assert_agree(
        lambda: mlp((2, 5, 4, 1), hidden, Sigmoid, bias_first), X, labels(X), monkeypatch, loss="bce", learning_rate=0.5
    )


def test_w2b_shape_many_epochs_agrees_with_scalar(monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmark's MLP 2-16-16-1 in batches of 32 over 20 epochs: rounding does not drift apart."""
    X = points(200)
    assert_agree(
        lambda: mlp((2, 16, 16, 1), ReLU, Sigmoid),
        X,
        labels(X),
        monkeypatch,
        reference=False,
        loss="bce",
        epochs=20,
        batch_size=32,
        learning_rate=0.1,
    )


def test_linear_macros_with_units(monkeypatch: pytest.MonkeyPatch) -> None:
    def build() -> Node:
        tg.seed(3)
        x = [Input("a"), Input("b"), Input("c")]
        return Linear([Linear(x, units=6, activation="tanh")], units=1, activation="sigmoid")

    X = points(30, 3)
    assert_agree(build, X, [1.0 if a + b > c else 0.0 for a, b, c in X], monkeypatch, loss="bce", learning_rate=0.3)


def test_softmax_cross_entropy(monkeypatch: pytest.MonkeyPatch) -> None:
    def build() -> Node:
        tg.seed(4)
        return Softmax([Linear([Linear([Input("u"), Input("v")], units=5, activation="relu")], units=3)])

    X = points(29)
    T = [0 if u > 0.3 else 1 if v > 0 else 2 for u, v in X]
    assert_agree(build, X, T, monkeypatch, loss="cross_entropy", learning_rate=0.5)


@pytest.mark.parametrize("loss", ["mse", "mae"])
def test_list_output(loss: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def build() -> Node:
        tg.seed(5)
        return Linear([Linear([Input("u"), Input("v")], units=4, activation="tanh")], units=2)

    X = points(26)
    T = [[u + v, u * v] for u, v in X]
    assert_agree(build, X, T, monkeypatch, loss=loss, learning_rate=0.2)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_every_optimizer(optimizer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    X = points(33)
    assert_agree(
        lambda: mlp((2, 4, 3, 1), Tanh, Sigmoid),
        X,
        labels(X),
        monkeypatch,
        loss="bce",
        optimizer=optimizer,
        learning_rate=0.05,
    )


def test_shuffle_and_ragged_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    X = points(41)
    assert_agree(
        lambda: mlp((2, 6, 1), ReLU, None),
        X,
        [x[0] - 2 * x[1] for x in X],
        monkeypatch,
        loss="mse",
        shuffle=True,
        seed=7,
        batch_size=6,
        learning_rate=0.1,
    )


# ---------------------------------------------------------------- graphs that are only partly layers


def test_mixed_graph_elementwise_parts_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dense layers next to elementwise nodes: activations in another order, from mixed sources,
    a map over inputs, constants, a shared parameter, every op."""

    def build() -> Node:
        x, y = Input("x"), Input("y")
        shared = Parameter(0.3)
        r = random.Random(9)

        def w() -> Parameter:
            return Parameter(r.uniform(-1, 1))

        tx = Tanh([x])  # a map over an input column
        e = Exp([Multiply([shared, y])])  # elementwise, a parameter used twice
        # a layer over [y, x] (columns gathered in another order)
        h1 = [ReLU([Add([Multiply([w(), y]), Multiply([x, w()]), w()])]) for _ in range(3)]
        # a layer over a mix of sources (stacked column by column), bias in the middle
        mix = [h1[2], tx, e, h1[0]]
        h2 = [Sigmoid([Add([Multiply([w(), mix[0]]), w(), *[Multiply([w(), a]) for a in mix[1:]]])]) for _ in range(2)]
        side = Divide(
            [
                Subtract([Power([h2[0], Constant(2.0)]), Negate([h1[1]])]),
                Add([Log([Add([Multiply([h2[1], h2[1]]), Constant(0.5)])]), Constant(3.0)]),
            ]
        )
        out = Add([Multiply([w(), side]), Multiply([shared, h2[1]]), Multiply([w(), Abs([tx])]), w()])
        return Sigmoid([out])

    X = points(23)
    assert_agree(build, X, labels(X), monkeypatch, loss="bce", learning_rate=0.3)


def random_features(seed: int, n: int = 8) -> list[Node]:
    """Nodes built at random over two inputs and two parameters, each op kept on its smooth part."""
    r = random.Random(seed)
    pool: list[Node] = [Input("x"), Input("y"), Parameter(r.uniform(0.2, 1)), Parameter(r.uniform(-1, -0.2))]
    for _ in range(n):
        a, b = r.choice(pool), r.choice(pool)
        safe = Add([Multiply([b, b]), Constant(0.5)])  # > 0: for log, division and powers
        kind = r.randrange(10)
        node = [
            Add([a, b]),
            Subtract([a, b]),
            Multiply([a, b]),
            Divide([a, safe]),
            Tanh([Negate([a])]),
            Power([safe, Constant(-1.5)]),
            Log([safe]),
            Exp([Tanh([a])]),
            Abs([Add([a, Constant(3.0)])]),
            ReLU([Add([a, Constant(2.0)])]),
        ][kind]
        pool.append(Tanh([node]))  # bounded, so that training stays tame
    return pool[4:]


@pytest.mark.parametrize("seed", range(4))
def test_dense_layers_over_random_features(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A layer whose activations are the last nodes of a random graph over every op."""

    def build() -> Node:
        acts = random_features(seed)[-4:]
        r = random.Random(seed)
        hidden = [
            Tanh([Add([Parameter(0.0), *[Multiply([Parameter(r.uniform(-1, 1)), a]) for a in acts]])]) for _ in range(3)
        ]
        m = Add([Parameter(0.1), *[Multiply([Parameter(r.uniform(-1, 1)), h]) for h in hidden]])
        return m.compile(inputs=["x", "y"])

    X = points(20, seed=seed)
    T = [math.sin(x + 2 * y) for x, y in X]
    assert_agree(build, X, T, monkeypatch, loss="mse", learning_rate=0.05, epochs=3)


def test_declared_input_the_model_ignores(monkeypatch: pytest.MonkeyPatch) -> None:
    def build() -> Node:
        m = mlp((2, 3, 1), ReLU, None)
        m.compile(inputs=["x0", "unused", "x1"])
        return m

    X = points(18, 3)
    vec = train(build, X, [a - c for a, _, c in X], "vectorized", monkeypatch, loss="mse", batch_size=4, epochs=3)
    ref = train(build, X, [a - c for a, _, c in X], "reference", monkeypatch, loss="mse", batch_size=4, epochs=3)
    assert vec.vectorized
    assert all(close(a, b) for a, b in zip(vec.params + vec.hist, ref.params + ref.hist, strict=True))


# ---------------------------------------------------------------- fallback, errors, safety


def test_graph_without_layers_falls_back_and_trains(monkeypatch: pytest.MonkeyPatch) -> None:
    def build() -> Node:
        # a * x * x + b: products of three factors, no weighted sum of activations
        x = Input("x")
        return Add([Multiply([Parameter(0.5), x, x]), Parameter(0.0)])

    m = build()
    m.compile()
    assert m.graph is not None
    assert vectorized_epoch_fn(m.graph, LOSSES["mse"], OPTIMIZERS["sgd"]) is None
    X = points(20, 1)
    T = [3 * x * x - 1 for (x,) in X]
    default = train(build, X, T, "vectorized", monkeypatch, loss="mse", batch_size=5, epochs=30, learning_rate=0.2)
    ref = train(build, X, T, "reference", monkeypatch, loss="mse", batch_size=5, epochs=30, learning_rate=0.2)
    assert not default.vectorized
    assert default.hist[-1] < default.hist[0] / 2
    assert default.hist == ref.hist and default.params == ref.params


def test_divergence_is_a_training_error() -> None:
    m = mlp((2, 8, 1), ReLU, None)
    X = points(64)
    with pytest.raises(tg.TrainingError, match="diverged"):
        tg.fit(m, X, [1e200 * x[0] for x in X], loss="mse", batch_size=16, epochs=5, learning_rate=10.0)


def test_a_bug_in_the_vectorized_epoch_is_not_reported_as_divergence(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ValueError from NumPy (arrays of mismatched shapes) is a defect of the generated code,
    not values that grew too large: it must not reach the user as "diverged ... try a smaller
    learning rate"."""
    real = FIT.vectorized_epoch_fn

    def broken(*args: Any, **kwargs: Any) -> Any:
        epoch = real(*args, **kwargs)
        assert epoch is not None

        def core(*_: Any) -> float:
            np.zeros((50, 8)) + np.zeros((49, 8))  # raises: shapes that cannot be broadcast
            return 0.0

        epoch.core = core
        return epoch

    monkeypatch.setattr(FIT, "vectorized_epoch_fn", broken)
    m = mlp((2, 8, 1), ReLU, None)
    X = points(64)
    with pytest.raises(ValueError, match="could not be broadcast"):
        tg.fit(m, X, [x[0] for x in X], loss="mse", batch_size=16, epochs=2, learning_rate=0.01)


def test_a_log_of_a_negative_input_in_numpy_batches_is_named_not_called_divergence() -> None:
    # NumPy gives NaN, not an exception: the epoch is run again by the scalar code to find
    # the sample and the op, instead of reporting "diverged ... smaller learning rate".
    rng = random.Random(3)
    x, y = Input("x"), Input("y")
    model = Linear([Linear([Log([x]), y], units=8, activation="tanh", rng=rng)], rng=rng)
    model.compile()
    assert model.graph is not None
    assert vectorized_epoch_fn(model.graph, LOSSES["mse"], OPTIMIZERS["sgd"], 50) is not None
    X = [[0.5 + 0.01 * i, 0.1] for i in range(200)]
    X[57] = [-2.0, 0.1]
    with pytest.raises(tg.TrainingError) as info:
        tg.fit(model, X, [0.0] * 200, batch_size=50, epochs=2, learning_rate=0.01)
    assert str(info.value).startswith(
        "epoch 1, sample 57: cannot evaluate 'log' at [-2.0]: math domain error — the model takes the log of "
        "a negative number"
    )
    # A node of parameters alone is a plain number there, and raises as Python does.
    model = Add([Linear([Linear([x, y], units=8, activation="tanh", rng=rng)], rng=rng), Divide([1.0, Parameter(0.0)])])
    model.compile()
    assert model.graph is not None
    assert vectorized_epoch_fn(model.graph, LOSSES["mse"], OPTIMIZERS["sgd"], 50) is not None
    X[57] = [0.5, 0.1]
    with pytest.raises(tg.TrainingError, match="^epoch 1, sample 0: cannot evaluate 'div' at \\[1.0, 0.0\\]"):
        tg.fit(model, X, [0.0] * 200, batch_size=50, epochs=2, learning_rate=0.01)


def test_generated_code_holds_no_values() -> None:
    m = mlp((2, 3, 1), ReLU, Sigmoid)
    m.compile()
    assert m.graph is not None
    values = m.graph.param_values()
    fn = vectorized_epoch_fn(m.graph, LOSSES["bce"], OPTIMIZERS["adam"])
    assert fn is not None
    for v in values:
        assert repr(v) not in fn.source and repr(v)[:8] not in fn.source
    assert "x0" not in fn.source  # input names from a spec never become code
    assert "@" in fn.source  # the layers are matmuls


def test_numpy_is_not_imported_with_treegrad() -> None:
    import subprocess

    code = "import sys, treegrad; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- the array forms of the tables


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_array_forms_match_scalar_forms(name: str) -> None:
    """Each op's array value and derivatives, elementwise, equal its scalar ones."""
    op = OPS[name]
    n = 2 if op.arity is None else op.arity
    rng = random.Random(0)
    rows = [[rng.uniform(0.2, 2.0) * rng.choice([-1, 1]) for _ in range(n)] for _ in range(50)]
    if name in ("log", "pow"):
        rows = [[abs(r[0])] + r[1:] for r in rows]
    if name not in ("log", "pow"):  # the sigmoid's floor, the kinks of relu and abs
        rows += [[-800.0] + [1.0] * (n - 1), [0.0] + [1.0] * (n - 1)]
    if name == "pow":
        rows = [[r[0], 1.5] for r in rows]
    args = [f"a{i}" for i in range(n)]
    ns = array_namespace()
    cols = {a: np.array([r[i] for r in rows]) for i, a in enumerate(args)}
    with np.errstate(all="ignore"):
        out = eval(op.array_value(args), ns, dict(cols))  # noqa: S307 - the table's own text
        derivs = [
            None
            if i in op.constant_args
            else np.broadcast_to(eval(op.array_deriv(args, "out", i), ns, {**cols, "out": out}), out.shape)  # noqa: S307
            for i in range(n)
        ]
    for k, r in enumerate(rows):
        v = op.value_fn(n)(*r)
        assert out[k] == pytest.approx(v, rel=1e-15, abs=1e-300), (r, out[k], v)
        for i, d in enumerate(op.deriv_fns(n)):
            if d is not None:
                assert derivs[i] is not None
                # NumPy's tanh may round differently in the last bit; 1 - tanh^2 then differs more
                assert derivs[i][k] == pytest.approx(d(v, *r), rel=1e-13, abs=1e-300)


@pytest.mark.parametrize("name", ["mse", "mae", "bce"])
@pytest.mark.parametrize("k", [1, 3])
def test_loss_array_forms_match_scalar_forms(name: str, k: int) -> None:
    loss = LOSSES[name]
    rng = random.Random(1)
    P = [[rng.choice([0.0, 1.0, 1e-12, rng.random()]) for _ in range(k)] for _ in range(40)]
    T = [[rng.choice([0.0, 1.0, rng.random()]) for _ in range(k)] for _ in range(40)]
    p, g = [f"p{i}" for i in range(k)], [f"g{i}" for i in range(k)]
    ns: dict[str, Any] = {f"p{i}": np.array([row[i] for row in P]) for i in range(k)}
    ns["t"] = np.array(T).T if k > 1 else np.array([row[0] for row in T])
    exec("\n".join(loss.code(p, "t", "L", g, "_", vectorized=True)), array_namespace(), ns)  # noqa: S102
    for s in range(40):
        L, grads = loss.fn(k)(P[s], T[s] if k > 1 else T[s][0])
        assert ns["L"][s] == pytest.approx(L, rel=1e-15)
        for i in range(k):
            assert ns[f"g{i}"][s] == pytest.approx(grads[i], rel=1e-15)


def test_softmax_and_cross_entropy_array_forms() -> None:
    rng = random.Random(2)
    Z = np.array([[rng.uniform(-5, 5) for _ in range(4)] for _ in range(30)])
    T = np.array([rng.randrange(4) for _ in range(30)])
    ns: dict[str, Any] = {"Z": Z, "t": T}
    code = softmax_array_code("Z", "Pm", "_s") + [f"p{i} = Pm[:, {i}]" for i in range(4)]
    code += LOSSES["cross_entropy"].code(
        [f"p{i}" for i in range(4)], "t", "L", [f"g{i}" for i in range(4)], "_", vectorized=True
    )
    code += ["G = stack((g0, g1, g2, g3), 1)"] + softmax_grad_array_code("Pm", "G", "GZ", "_s")
    exec("\n".join(code), array_namespace(), ns)  # noqa: S102
    value, vjp = softmax_fns(4)
    for s in range(30):
        probs = value(*Z[s])
        L, grads = LOSSES["cross_entropy"].fn(4)(probs, int(T[s]))
        assert ns["L"][s] == pytest.approx(L, rel=1e-14)
        assert list(ns["GZ"][s]) == pytest.approx(vjp(*probs, *grads), rel=1e-12, abs=1e-15)


def test_every_scalar_name_has_an_array_binding() -> None:
    assert set(NAMESPACE) <= set(array_namespace())


def test_arrays_are_used_only_where_they_pay() -> None:
    """Given the batch size, a graph of a few scalar nodes keeps the scalar code; the MLP does not."""
    small = Sigmoid([Add([Multiply([Parameter(0.5), Input("x")]), Parameter(0.1)])])
    small.compile()
    big = mlp((2, 16, 16, 1), ReLU, Sigmoid)
    big.compile()
    assert small.graph is not None and big.graph is not None
    bce, sgd = LOSSES["bce"], OPTIMIZERS["sgd"]
    assert vectorized_epoch_fn(small.graph, bce, sgd) is not None  # it fits the lowering ...
    assert vectorized_epoch_fn(small.graph, bce, sgd, batch_size=32) is None  # ... but would be slower
    assert vectorized_epoch_fn(small.graph, bce, sgd, batch_size=100_000) is not None
    assert vectorized_epoch_fn(big.graph, bce, sgd, batch_size=8) is not None
    # per sample: the 2-16-16-1 MLP keeps the scalar code, the wide digits-shaped one does not
    assert vectorized_epoch_fn(big.graph, bce, sgd, batch_size=1) is None
    wide = Softmax([Linear([Linear([Input(f"x{j}") for j in range(64)], units=32, activation="relu")], units=10)])
    wide.compile()
    assert wide.graph is not None
    assert vectorized_epoch_fn(wide.graph, LOSSES["cross_entropy"], sgd, batch_size=1) is not None


def test_per_sample_training_of_a_wide_layer_runs_on_arrays_and_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    """batch_size 1 on the vectorized path (batches of one, by fit's cost model) trains as the scalar code does."""

    def build() -> Node:
        tg.seed(6)
        return Softmax([Linear([Linear([Input(f"x{j}") for j in range(32)], units=32, activation="relu")], units=5)])

    r = random.Random(2)
    X = [[r.uniform(0, 1) for _ in range(32)] for _ in range(30)]
    T = [int(5 * x[0]) % 5 for x in X]
    m = build()
    m.compile()
    assert m.graph is not None
    assert vectorized_epoch_fn(m.graph, LOSSES["cross_entropy"], OPTIMIZERS["sgd"], batch_size=1) is not None
    assert_agree(build, X, T, monkeypatch, reference=False, loss="cross_entropy", batch_size=1, shuffle=True, epochs=3)


def test_a_node_with_thousands_of_parents() -> None:
    """Gradient sums over 3000 parents are written without nesting 3000 deep (Python's compiler
    would give up). One full-batch step, checked against the gradient worked out by hand:
    model sigmoid(b + sum_i w_i * e), e = exp(p * x), bce, so dL/dz = s - t."""
    x = Input("x")
    p, b = Parameter(0.2), Parameter(0.1)
    e = Exp([Multiply([p, x])])  # elementwise, read by every term below
    r = random.Random(3)
    ws = [Parameter(r.uniform(-0.01, 0.01)) for _ in range(3000)]
    model = Sigmoid([Add([b, *[Multiply([w, e]) for w in ws]])])
    model.compile()
    assert model.graph is not None
    fn = vectorized_epoch_fn(model.graph, LOSSES["bce"], OPTIMIZERS["sgd"])
    assert fn is not None and "sum((" in fn.source

    X = np.array([x for (x,) in points(12, 1)])
    T = (X > 0).astype(float)
    w0 = np.array([w.value for w in ws])
    ev = np.exp(0.2 * X)
    s = 1.0 / (1.0 + np.exp(-(0.1 + w0.sum() * ev)))
    loss = float(np.mean(-T * np.log(s) - (1 - T) * np.log(1 - s)))
    dz, lr = s - T, 0.5
    hist = tg.fit(model, [[v] for v in X], list(T), loss="bce", batch_size=12, epochs=1, learning_rate=lr)
    assert hist[0] == pytest.approx(loss, rel=1e-12)
    assert b.value == pytest.approx(0.1 - lr * dz.mean(), rel=1e-12)
    assert p.value == pytest.approx(0.2 - lr * np.mean(dz * w0.sum() * ev * X), rel=1e-12)
    assert [w.value for w in ws] == pytest.approx(list(w0 - lr * np.mean(dz * ev)), rel=1e-12)


# ---------------------------------------------------------------- generated code is written once


@pytest.mark.parametrize("batch_size", [1, 16])
def test_a_second_fit_writes_no_code(batch_size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Code depends on the graph's structure, the loss, the optimizer and the batch mode only:
    a second fit of the same model (even on other data) reuses it and trains on from where it was."""
    written: list[str] = []
    compiled, vectorized = sys.modules["treegrad.engine.compiled"], sys.modules["treegrad.engine.vectorized"]
    for mod, name in [
        (compiled.Program, "_epoch_fn"),
        (vectorized, "lower"),
        (vectorized, "write_epoch"),
        (vectorized, "_build"),
    ]:
        original = getattr(mod, name)

        def spy(*args: Any, _original: Any = original, _name: str = name) -> Any:
            written.append(_name)
            return _original(*args)

        monkeypatch.setattr(mod, name, spy)
    m = mlp((2, 16, 16, 1), ReLU, Sigmoid)
    X = points(64)
    h1 = tg.fit(m, X, labels(X), loss="bce", epochs=2, batch_size=batch_size, learning_rate=0.1)
    first = list(written)
    assert first, "the first fit writes code"
    Y = points(40, seed=3)
    h2 = tg.fit(m, Y, labels(Y), loss="bce", epochs=2, batch_size=batch_size, learning_rate=0.1)
    assert written == first
    assert h1[-1] != h2[0]
    tg.fit(m, X, labels(X), loss="mse", epochs=1, batch_size=batch_size)  # another loss: new code
    assert len(written) > len(first)


def test_softmax_cross_entropy_gradient_is_p_minus_onehot() -> None:
    """The fused form: one batch of one sample, plain SGD, learning rate 1: the last layer's bias
    moves by exactly -(p - onehot(t)), p the softmax of the starting logits."""
    tg.seed(2)
    m = Softmax([Linear([Input("u"), Input("v")], units=3)])
    m.compile()
    assert m.graph is not None
    fn = vectorized_epoch_fn(m.graph, LOSSES["cross_entropy"], OPTIMIZERS["sgd"])
    assert fn is not None and "_smg" not in fn.source  # no Jacobian product in the generated code
    x, t = [0.3, -0.7], 2
    start = m.graph.param_values()
    z = np.array(m.predict(x))  # the probabilities
    P, S, STEP = list(start), [], [0]
    fn(P, [], S, STEP, [x], [t], [[0]], 1.0)
    moved = np.array(P) - np.array(start)
    onehot = np.eye(3)[t]
    # the three biases moved by -(p - onehot) (the weights by that times an input, -0.7 or 0.3)
    assert sorted(m for m in moved if any(abs(m + d) < 1e-15 for d in z - onehot)) == sorted(onehot - z)


def test_blas_runs_on_one_thread_while_training_on_arrays_and_is_restored() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas() -> list[int]:
        return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]

    before = blas()
    seen: list[list[int]] = []
    X = points(64)
    m = mlp((2, 16, 16, 1), ReLU, Sigmoid)
    tg.fit(m, X, labels(X), loss="bce", epochs=2, batch_size=32, callback=lambda *_: seen.append(blas()) and None)
    assert seen and all(n == [1] * len(before) for n in seen)
    assert blas() == before
